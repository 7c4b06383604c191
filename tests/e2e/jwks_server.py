"""A JWKS server for the end-to-end tests (stdlib only), run in a thread of the test process.

It serves `GET /jwks.json` on a free loopback port and counts every fetch. A test switches what
it answers at any time: the current key set (`set_keys`, e.g. to rotate), `500`, `hang` (hold the
connection until released or the server stops), `garbage` (not JSON), `oversize` (a valid-looking
but larger-than-`max_bytes` body), and an optional `delay` before a good answer.

Keys are Ed25519 (`OKP`) JWKs built from `cryptography` private keys, public parts only.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import harness
import tpsign

JWKS_DEFAULTS = {"cache_seconds": 60, "timeout_ms": 1500, "min_refetch_seconds": 3,
                 "max_stale_seconds": 60}


def okp_jwk(kid: str, key: Ed25519PrivateKey, **extra: Any) -> dict[str, Any]:
    return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
            "x": tpsign.public_key_b64url(key), **extra}


class JwksServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._jwks: dict[str, Any] = {"keys": []}
        self.mode = "ok"
        self.delay = 0.0
        self.oversize_bytes = 300_000
        self.fetches: list[float] = []  # monotonic time each response was sent (or the hang began)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
                if self.path.split("?")[0] != "/jwks.json":
                    self._reply(404, b"not found", "text/plain")
                    return
                with server._lock:
                    mode, delay, body = server.mode, server.delay, json.dumps(server._jwks).encode()
                if mode == "hang":
                    server._count()
                    server._release.wait(60)
                    return
                if delay:
                    time.sleep(delay)
                server._count()
                if mode == "500":
                    self._reply(500, b'{"error":"boom"}')
                elif mode == "garbage":
                    self._reply(200, b"<html>this is not a JWKS</html>", "text/html")
                elif mode == "oversize":
                    self._reply(200, b'{"keys":[],"pad":"' + b"x" * server.oversize_bytes + b'"}')
                else:
                    self._reply(200, body)

            def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                # One connection per fetch: a stopped server must look dead, not keep serving
                # Envoy's pooled keep-alive connection.
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _count(self) -> None:
        with self._lock:
            self.fetches.append(time.monotonic())

    # -- control ----------------------------------------------------------------------------
    def start(self) -> "JwksServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    def set_keys(self, *jwks: dict[str, Any]) -> None:
        with self._lock:
            self._jwks = {"keys": list(jwks)}

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        assert mode in ("ok", "500", "hang", "garbage", "oversize"), mode
        with self._lock:
            self.mode, self.delay = mode, delay
        if mode != "hang":
            self._release.set()
            self._release = threading.Event()

    def count(self) -> int:
        with self._lock:
            return len(self.fetches)

    def cluster(self, name: str = "jwks") -> dict[str, Any]:
        """An Envoy STATIC cluster pointing at this server."""
        return {
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{
                "endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                             "port_value": self.port}}},
            }]}]},
        }


def jwks_config(server: "JwksServer", **jwks: Any) -> dict[str, Any]:
    """The demo plugin config with its passport issuer's keys fetched from `server` (cluster `jwks`)."""
    config = harness.base_plugin_config()
    issuer = config["trust_material"]["issuers"][0]
    del issuer["keys"]
    issuer["jwks"] = {"cluster": "jwks", "uri": server.uri, **JWKS_DEFAULTS, **jwks}
    return config

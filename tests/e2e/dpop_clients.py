"""DPoP clients for the end-to-end tests, made by libraries that share no code with proofgate:
npm `jose` makes client keys and signs access tokens, npm `dpop` makes RFC 9449 proofs
(tests/e2e/node/dpop_tool.mjs).

One node process serves the whole test session (JSON lines on its stdin and stdout), so a test
pays a few milliseconds per batch of operations instead of a node start-up per operation.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from typing import Any

import pytest

from harness import REPO_ROOT

NODE_DIR = REPO_ROOT / "tests" / "e2e" / "node"
AUDIENCE = "orders-api"
ISSUER_KID = "issuer-key-1"
# The token issuer's key: RFC 8037 appendix A.1's Ed25519 test key (TEST-ONLY, published).
ISSUER_PUBLIC = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
ISSUER_PRIVATE = dict(ISSUER_PUBLIC, d="nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
# Generous: the machine running the suite may be saturated.
ANSWER_TIMEOUT = 120.0


class NodeClients:
    """The node helper process: one line of operations in, one line of results out."""

    def __init__(self) -> None:
        if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "dpop").exists():
            pytest.fail("npm clients missing: run `make node` (npm ci in tests/e2e/node)")
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(["node", str(NODE_DIR / "dpop_tool.mjs")], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, cwd=NODE_DIR)
        self._buffer = b""
        self._lock = threading.Lock()

    def run(self, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self._lock:
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(ops).encode() + b"\n")
            self._proc.stdin.flush()
            answer = json.loads(self._read_line())
        assert "error" not in answer, answer["error"]
        results: list[dict[str, Any]] = answer["results"]
        assert len(results) == len(ops)
        return results

    def _read_line(self) -> bytes:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"no answer from the node clients in {ANSWER_TIMEOUT:.0f} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self._stderr.seek(0)
                raise RuntimeError(f"node clients exited: {self._stderr.read().decode(errors='replace')}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()


_clients: NodeClients | None = None
_clients_lock = threading.Lock()


def node(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs a batch of operations through the npm clients (one process for the session)."""
    global _clients
    with _clients_lock:
        if _clients is None:
            _clients = NodeClients()
            atexit.register(_clients.close)
        clients = _clients
    return clients.run(ops)


class Key:
    """A key pair made by jose: `alg` is the WebCrypto/JOSE name the dpop package takes."""

    def __init__(self, alg: str) -> None:
        self.alg = alg
        made = node([{"op": "keypair", "alg": alg}])[0]
        self.private, self.public, self.jkt = made["private"], made["public"], made["jkt"]

    def proof_op(self, htm: str, htu: str, token: str | None, **extra: Any) -> dict[str, Any]:
        return {"op": "proof", "alg": self.alg, "key": self.private, "public": self.public,
                "htm": htm, "htu": htu, "token": token, **extra}

    def proof(self, htm: str, htu: str, token: str | None, **extra: Any) -> str:
        return node([self.proof_op(htm, htu, token, **extra)])[0]["proof"]

    def proofs(self, ops: list[dict[str, Any]]) -> list[str]:
        """Proofs for several `proof_op`s in one round trip."""
        return [r["proof"] for r in node(ops)]


def token_op(issuer: str, jkt: str | None = None, **claims: Any) -> dict[str, Any]:
    """An access token for `issuer`'s provider, signed by jose with the issuer key; bound to `jkt`
    (`cnf.jkt`) when given."""
    now = int(time.time())
    body: dict[str, Any] = {"iss": issuer, "sub": "svc-orders", "aud": AUDIENCE, "iat": now,
                            "exp": now + 600, "jti": str(uuid.uuid4()), "scope": "read:orders"}
    if jkt is not None:
        body["cnf"] = {"jkt": jkt}
    body.update(claims)
    return {"op": "token", "alg": "EdDSA", "key": ISSUER_PRIVATE, "kid": ISSUER_KID, "claims": body}


def token(issuer: str, jkt: str | None = None, **claims: Any) -> str:
    return node([token_op(issuer, jkt, **claims)])[0]["token"]


def provider(name: str, issuer: str, dpop: str, **extra: Any) -> dict[str, Any]:
    """A `jwt_providers` entry trusting the issuer key inline."""
    jwk = dict(ISSUER_PUBLIC, kid=ISSUER_KID, alg="EdDSA", use="sig")
    return {"name": name, "issuer": issuer, "audiences": [AUDIENCE], "keys": [jwk],
            "dpop": dpop, **extra}


def b64url_json(segment: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))

#!/usr/bin/env python3
"""A tiny HTTP/1.1 echo upstream for proofgate demos and end-to-end tests (stdlib only).

Every request, whatever its method, gets 200 application/json:

    {"method": ..., "path": ..., "headers": [[name, value], ...], "body": "..."}

`headers` keeps every header in arrival order (duplicates included) with lowercased names;
`path` is the raw request target (path and query, as received); `body` is the body as UTF-8 text
(invalid bytes replaced). With `--record FILE` the same object is appended to FILE as one JSON
line before the response is sent, so a client that got its response can read the record.

    python3 examples/upstream.py --port 8080 --record /tmp/upstream.jsonl
    python3 examples/upstream.py --port 0     # picks a free port and prints it
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Envoy's connection pool expects
    server_version = "proofgate-upstream/1"
    record_path: str | None = None
    record_lock = threading.Lock()

    def __getattr__(self, name: str) -> Callable[[], None]:
        # BaseHTTPRequestHandler dispatches to do_<METHOD>; answer every method the same way.
        if name.startswith("do_"):
            return self._echo
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _echo(self) -> None:
        body = self._read_body()
        record: dict[str, Any] = {
            "method": self.command,
            "path": self.path,
            "headers": [[name.lower(), value] for name, value in self.headers.items()],
            "body": body.decode("utf-8", errors="replace"),
        }
        payload = json.dumps(record).encode("utf-8")
        if self.record_path:
            with self.record_lock, open(self.record_path, "ab") as out:
                out.write(payload + b"\n")
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: the record file is the log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (0 = pick a free one)")
    parser.add_argument("--record", metavar="FILE", help="append one JSON line per request to FILE")
    args = parser.parse_args(argv)

    EchoHandler.record_path = args.record
    server = ThreadingHTTPServer(("127.0.0.1", args.port), EchoHandler)
    server.daemon_threads = True
    print(f"upstream listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

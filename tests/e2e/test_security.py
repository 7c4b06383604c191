"""Security regressions of issue 7 against the real Envoy: the request proof is checked on the
headers (item 8), time is decided again when a slow body completes (item 1), and unverified
claims never reach logs or filter state (item 3)."""

from __future__ import annotations

import http.client
import socket
import time
from typing import Any

import harness
import tpsign
from harness import Gateway, Response, expect_allow, expect_deny

SKEW = 1
TTL = 6
PLUGIN_CONFIG = harness.base_plugin_config(clock_skew_seconds=SKEW)


def _open(gateway: Gateway, req: dict[str, Any], extra: list[tuple[str, str]]) -> socket.socket:
    """Send `req`'s request line and headers (plus `extra`) on a raw socket, no body yet."""
    lines = [f"{req['method']} {req['target']} HTTP/1.1", f"Host: {gateway.authority}"]
    lines += [f"{n}: {v}" for n, v in req["headers"].items()]
    lines += [f"{n}: {v}" for n, v in extra]
    sock = socket.create_connection((gateway.host, gateway.port), timeout=10)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _nothing_answered(sock: socket.socket, seconds: float) -> bool:
    """True if the gateway sends nothing (and keeps the connection) for `seconds`."""
    sock.settimeout(seconds)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return False
    except socket.timeout:
        return True
    finally:
        sock.settimeout(10)


def _read_response(sock: socket.socket) -> Response:
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    body = resp.read()
    return Response(resp.status, [(n.lower(), v) for n, v in resp.getheaders()], body)


def test_stolen_passport_with_a_bad_proof_is_refused_before_the_body(gateway: Gateway) -> None:
    # issue 7 item 8: the proof needs only headers. A passport without the caller's key, on a
    # POST that announces a body and never sends it, is answered at once.
    req = tpsign.sign("POST", gateway.url("/v1/orders"), b'{"n":1}', {"Content-Type": "application/json"})
    other = tpsign.sign("POST", gateway.url("/v1/orders"), b'{"n":2}', {"Content-Type": "application/json"})
    req["headers"]["X-TrustPlane-Proof"] = other["headers"]["X-TrustPlane-Proof"]
    sock = _open(gateway, req, [("Content-Length", "4000")])
    try:
        resp = _read_response(sock)  # no body byte sent: a deny on the headers alone
    finally:
        sock.close()
    expect_deny(resp, 401, "invalid_request_proof", presented=True)


def test_a_transcript_mismatch_is_refused_before_the_body(gateway: Gateway) -> None:
    req = tpsign.sign("POST", gateway.url("/v1/orders"), b'{"n":1}', {"Content-Type": "application/json"})
    req["target"] = "/v1/orders?extra=1"
    sock = _open(gateway, req, [("Content-Length", "7")])
    try:
        resp = _read_response(sock)
    finally:
        sock.close()
    expect_deny(resp, 401, "request_binding_mismatch", presented=True)


def test_body_hash_still_decided_on_the_body(gateway: Gateway) -> None:
    req = tpsign.sign("POST", gateway.url("/v1/orders"), b'{"n":1}', {"Content-Type": "application/json"})
    expect_deny(gateway.send_signed(req, body=b'{"n":9}'), 401, "request_binding_mismatch",
                presented=True, gateway=gateway)


def test_replayed_get_finished_after_expiry_is_passport_expired(gateway: Gateway) -> None:
    # issue 7 item 1: a captured GET, replayed with `Transfer-Encoding: chunked` whose last
    # chunk arrives after the passport (and so its replay entry) expired, was allowed again.
    req = tpsign.sign("GET", gateway.url("/v1/orders/5"), ttl=TTL)
    _, claims = tpsign.token_parts(req["passport"])
    expect_allow(gateway.send_signed(req), jti=req["jti"], route_id="orders.get")

    sock = _open(gateway, req, [("Transfer-Encoding", "chunked")])
    try:
        # The headers were accepted (nothing answered), the filter waits for the body ...
        assert _nothing_answered(sock, 1.0), "the replayed headers were answered before the body"
        assert time.time() < claims["exp"] + SKEW, "machine too slow: headers sent after expiry"
        # ... which completes once the passport and the first use's replay entry have expired.
        while time.time() < claims["exp"] + SKEW + 1.2:
            time.sleep(0.1)
        sock.sendall(b"0\r\n\r\n")
        resp = _read_response(sock)
    finally:
        sock.close()
    event_id = expect_deny(resp, 401, "passport_expired", presented=True)
    event = gateway.audit_event(event_id)
    assert (event["reason_code"], event["jti"]) == ("passport_expired", req["jti"]), event

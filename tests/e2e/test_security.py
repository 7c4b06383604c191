"""Security regressions of issue 7 against the real Envoy: the request proof is checked on the
headers (item 8), time is decided again when a slow body completes (item 1), and unverified
claims never reach logs or filter state (item 3)."""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any

import pytest

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


FORGED_SUB = "admin\nINJECTED 200 allow subject=root"
FORGED_SUB_ESCAPED = "admin\\x0aINJECTED\\x20200\\x20allow\\x20subject=root"


def _token(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    def seg(obj: dict[str, Any]) -> str:
        return tpsign.b64url(json.dumps(obj, separators=(",", ":")).encode())
    return f"{seg(header)}.{seg(claims)}.{tpsign.b64url(signature)}"


def _access_line(gateway: Gateway, event_id: str) -> str:
    lines = gateway.wait_for(lambda: [l for l in gateway.access_log_lines() if f"event={event_id}" in l],
                             what=f"access log line of {event_id}")
    assert len(lines) == 1, lines
    return lines[0]


def _no_forged_lines(gateway: Gateway) -> None:
    for line in gateway.access_log_lines():
        assert "INJECTED" not in line, f"forged text in the access log: {line!r}"
    for line in gateway.log_text().splitlines():
        if "INJECTED" in line:
            assert harness.AUDIT_PREFIX in line, f"forged line in envoy.log: {line!r}"


@pytest.mark.parametrize("case", ["zero_signature", "unknown_kid"])
def test_unverified_claims_never_reach_facts_or_logs(gateway: Gateway, case: str) -> None:
    # issue 7 item 3: a zero signature (or an unknown key) with a subject that carries a line
    # break wrote a forged line into the access log and that subject into the audit event.
    req = tpsign.sign("GET", gateway.url("/v1/orders/3"))
    header, claims = tpsign.token_parts(req["passport"])
    claims["sub"] = FORGED_SUB
    if case == "unknown_kid":
        header["kid"] = "nobody"
    token = _token(header, claims, bytes(64))
    resp = gateway.send_signed(req, replace={"Authorization": f"Bearer {token}"})
    reason = "invalid_passport_signature" if case == "zero_signature" else "unknown_signing_key"
    event_id = expect_deny(resp, 401, reason, presented=True, gateway=gateway)

    event = gateway.audit_event(event_id)
    for field in ("issuer", "subject", "jti"):
        assert field not in event, f"unverified {field} in the audit event: {event}"
    assert event["unverified_subject"] == FORGED_SUB_ESCAPED, event
    assert event["unverified_jti"] == req["jti"], event
    line = _access_line(gateway, event_id)
    assert f" {reason} " in line and " subject=- issuer=- " in line, line
    _no_forged_lines(gateway)


def test_a_signed_subject_with_a_line_break_is_refused_and_not_logged(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/4"), extra_claims={"sub": FORGED_SUB})
    event_id = expect_deny(gateway.send_signed(req), 401, "invalid_passport_claims", presented=True,
                           gateway=gateway)
    event = gateway.audit_event(event_id)
    assert "subject" not in event and "unverified_subject" not in event, event
    assert event["issuer"] == harness.ISSUER and event["jti"] == req["jti"], event
    assert " subject=- " in _access_line(gateway, event_id)
    _no_forged_lines(gateway)


def test_verified_values_are_escaped_in_filter_state(gateway: Gateway) -> None:
    # A verified subject the policy refuses: a fact, but printed PLAIN in the access log, so a
    # space or a quote must not read as another field.
    sub = 'mallory issuer="x'
    req = tpsign.sign("GET", gateway.url("/v1/orders/6"), subject=sub)
    event_id = expect_deny(gateway.send_signed(req), 403, "source_subject_mismatch", presented=True,
                           gateway=gateway)
    assert gateway.audit_event(event_id)["subject"] == sub
    line = _access_line(gateway, event_id)
    assert " subject=mallory\\x20issuer=\\x22x issuer=https://issuer.example/external-jwks " in line, line

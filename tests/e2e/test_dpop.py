"""DPoP (RFC 9449) for bearer JWT providers, against a real Envoy with two workers.

Tokens are signed by npm `jose` and proofs made by npm `dpop` (tests/e2e/dpop_clients.py, one
node process for the session), with Ed25519 and P-256 client keys: libraries that share no code
with proofgate.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import dpop_clients
from dpop_clients import Key, b64url_json, node, provider
from harness import EVENT_ID_RE, Gateway, Response, describe, validate_config

BOUND_ISS = "https://auth.bound.example"      # dpop: required
MIXED_ISS = "https://auth.mixed.example"      # dpop: allowed
NONCED_ISS = "https://auth.nonced.example"    # dpop: required, server nonces
FORWARD_ISS = "https://auth.forward.example"  # dpop: required, forward: true
BRIEF_ISS = "https://auth.brief.example"      # dpop: required, no clock skew
COPIES = 40


# ---------------------------------------------------------------------------------------------
# Configuration and gateway

PLUGIN_CONFIG: dict[str, Any] = {
    "jwt_providers": [
        provider("bound", BOUND_ISS, "required"),
        provider("mixed", MIXED_ISS, "allowed"),
        provider("nonced", NONCED_ISS, "required", dpop_nonce={"rotate_seconds": 300}),
        provider("forwarding", FORWARD_ISS, "required", forward=True,
                 dpop_algorithms=["ES256", "EdDSA"]),
        provider("brief", BRIEF_ISS, "required", clock_skew_seconds=0),
    ],
    "rules": [
        {"match": {"prefix": "/healthz"}, "requires": "allow"},
        {"match": {"prefix": "/mixed"}, "requires": {"provider": "mixed"}},
        {"match": {"prefix": "/nonced"}, "requires": {"provider": "nonced"}},
        {"match": {"prefix": "/forward"}, "requires": {"provider": "forwarding"}},
        {"match": {"prefix": "/brief"}, "requires": {"provider": "brief"}},
        {"match": {"prefix": "/"}, "requires": {"provider": "bound"}},
    ],
}


def token(issuer: str = BOUND_ISS, jkt: str | None = None, **claims: Any) -> str:
    return dpop_clients.token(issuer, jkt, **claims)


@pytest.fixture(scope="module", params=["Ed25519", "ES256"])
def client(request: pytest.FixtureRequest) -> Key:
    return Key(request.param)


# ---------------------------------------------------------------------------------------------
# The contract of a DPoP answer

ALGS = 'algs="EdDSA ES256"'


def send(gateway: Gateway, method: str, path: str, tok: str | None, proof: str | None = None, *,
         scheme: str = "DPoP", body: bytes | None = None,
         extra: list[tuple[str, str]] | None = None, **kwargs: Any) -> Response:
    headers: list[tuple[str, str]] = []
    if tok is not None:
        headers.append(("Authorization", f"{scheme} {tok}"))
    if proof is not None:
        headers.append(("DPoP", proof))
    headers += extra or []
    if body is not None:
        headers.append(("Content-Type", "application/json"))
    return gateway.send(method, path, headers, body, **kwargs)


def expect_dpop_deny(gateway: Gateway, resp: Response, reason: str, challenges: list[str], *,
                     nonce: bool = False) -> str:
    """The exact deny contract of a DPoP provider's 401; returns the event id."""
    info = describe(resp)
    assert (resp.status, resp.header("x-trustplane-reason")) == (401, reason), info
    assert resp.headers_named("content-type") == ["application/json"], info
    assert resp.headers_named("x-trustplane-decision") == ["deny"], info
    event_ids = resp.headers_named("x-trustplane-event-id")
    assert len(event_ids) == 1 and EVENT_ID_RE.match(event_ids[0]), info
    assert resp.json() == {"allowed": False, "reason": reason, "event_id": event_ids[0]}, info
    assert resp.headers_named("www-authenticate") == challenges, info
    assert len(resp.headers_named("dpop-nonce")) == (1 if nonce else 0), info
    if resp.upstream_before is not None:
        assert len(gateway.upstream_requests()) == resp.upstream_before, "denied request reached upstream"
    return event_ids[0]


def invalid_proof(resp: Response, gateway: Gateway, reason: str) -> str:
    return expect_dpop_deny(gateway, resp, reason, [f'DPoP error="invalid_dpop_proof", {ALGS}'])


def expect_allow(resp: Response, *, forwarded: bool = False) -> dict[str, Any]:
    info = describe(resp)
    assert resp.status == 200, info
    seen = resp.json()
    names = [n for n, _ in seen["headers"]]
    assert ("x-auth-client-id", "svc-orders") in [tuple(h) for h in seen["headers"]], seen
    if forwarded:
        assert names.count("dpop") == 1 and names.count("authorization") == 1, seen
    else:
        assert "dpop" not in names and "authorization" not in names, seen
    return seen


# ---------------------------------------------------------------------------------------------
# Valid requests

def test_valid_get_and_post(gateway: Gateway, client: Key) -> None:
    tok = token(jkt=client.jkt)
    url = gateway.url("/v1/orders")
    get, post = node([client.proof_op("GET", url, tok), client.proof_op("POST", url, tok)])
    seen = expect_allow(send(gateway, "GET", "/v1/orders?page=2", tok, get["proof"]))
    assert seen["method"] == "GET" and seen["path"] == "/v1/orders?page=2", seen
    seen = expect_allow(send(gateway, "POST", "/v1/orders", tok, post["proof"], body=b'{"n":1}'))
    assert seen["method"] == "POST", seen


def test_npm_dpop_sends_the_fully_specified_ed25519_name(client: Key) -> None:
    header = b64url_json(client.proof("GET", "http://x/", "t").split(".")[0])
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == {"Ed25519": "Ed25519", "ES256": "ES256"}[client.alg]


def test_forward_keeps_the_proof_and_token(gateway: Gateway, client: Key) -> None:
    tok = token(FORWARD_ISS, jkt=client.jkt)
    proof = client.proof("GET", gateway.url("/forward/x"), tok)
    expect_allow(send(gateway, "GET", "/forward/x", tok, proof), forwarded=True)


# ---------------------------------------------------------------------------------------------
# Tampering

def test_tampered_method(gateway: Gateway, client: Key) -> None:
    tok = token(jkt=client.jkt)
    proof = client.proof("GET", gateway.url("/v1/orders"), tok)
    invalid_proof(send(gateway, "POST", "/v1/orders", tok, proof, body=b"{}"), gateway,
                  "dpop_binding_mismatch")


def test_tampered_path(gateway: Gateway, client: Key) -> None:
    tok = token(jkt=client.jkt)
    proof = client.proof("GET", gateway.url("/v1/orders/1"), tok)
    invalid_proof(send(gateway, "GET", "/v1/orders/2", tok, proof), gateway, "dpop_binding_mismatch")


def test_tampered_host(gateway: Gateway, client: Key) -> None:
    tok = token(jkt=client.jkt)
    proof = client.proof("GET", f"http://api.example:{gateway.port}/v1/orders", tok)
    invalid_proof(send(gateway, "GET", "/v1/orders", tok, proof), gateway, "dpop_binding_mismatch")
    # The same proof at the host it names (Host header) is fine: host matching is the point.
    proof = client.proof("GET", f"http://API.Example:{gateway.port}/v1/orders", tok)
    expect_allow(send(gateway, "GET", "/v1/orders", tok, proof,
                      authority=f"api.example:{gateway.port}"))


def test_token_swapped_under_a_proof(gateway: Gateway, client: Key) -> None:
    first, second = token(jkt=client.jkt), token(jkt=client.jkt)
    proof = client.proof("GET", gateway.url("/v1/orders"), first)
    invalid_proof(send(gateway, "GET", "/v1/orders", second, proof), gateway, "dpop_binding_mismatch")


def test_proof_by_another_key_than_the_token_is_bound_to(gateway: Gateway, client: Key) -> None:
    other = Key(client.alg)
    tok = token(jkt=client.jkt)
    proof = other.proof("GET", gateway.url("/v1/orders"), tok)
    event_id = invalid_proof(send(gateway, "GET", "/v1/orders", tok, proof), gateway,
                             "dpop_binding_mismatch")
    # The audit event names the (verified) proof key's thumbprint, never the proof.
    assert gateway.audit_event(event_id)["dpop_jkt"] == other.jkt


def test_forged_signature(gateway: Gateway, client: Key) -> None:
    tok = token(jkt=client.jkt)
    head, claims, sig = client.proof("GET", gateway.url("/v1/orders"), tok).split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    raw[3] ^= 1
    forged = ".".join([head, claims, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])
    invalid_proof(send(gateway, "GET", "/v1/orders", tok, forged), gateway, "invalid_dpop_proof")


def test_missing_and_repeated_proof(gateway: Gateway, client: Key) -> None:
    tok = token(jkt=client.jkt)
    invalid_proof(send(gateway, "GET", "/v1/orders", tok, None), gateway, "missing_dpop_proof")
    a = client.proof("GET", gateway.url("/v1/orders"), tok)
    b = client.proof("GET", gateway.url("/v1/orders"), tok)
    invalid_proof(send(gateway, "GET", "/v1/orders", tok, a, extra=[("DPoP", b)]), gateway,
                  "invalid_dpop_proof")


# ---------------------------------------------------------------------------------------------
# Time and replay

def test_expired_and_future_proofs(gateway: Gateway, client: Key) -> None:
    tok = token(jkt=client.jkt)
    url = gateway.url("/v1/orders")
    now = int(time.time())
    old, future = node([client.proof_op("GET", url, tok, iat=now - 120),
                        client.proof_op("GET", url, tok, iat=now + 120)])
    invalid_proof(send(gateway, "GET", "/v1/orders", tok, old["proof"]), gateway, "invalid_dpop_proof")
    invalid_proof(send(gateway, "GET", "/v1/orders", tok, future["proof"]), gateway,
                  "invalid_dpop_proof")


def test_replayed_proof(gateway: Gateway, client: Key) -> None:
    tok = token(jkt=client.jkt)
    proof = client.proof("GET", gateway.url("/v1/orders"), tok)
    expect_allow(send(gateway, "GET", "/v1/orders", tok, proof))
    invalid_proof(send(gateway, "GET", "/v1/orders", tok, proof), gateway, "dpop_replay")


def _worker_connections(gateway: Gateway) -> dict[str, int]:
    return {name: value for name, value in gateway.stats().items()
            if name.startswith("listener.") and ".worker_" in name
            and name.endswith(".downstream_cx_total")}


def test_same_proof_concurrently_over_both_workers(gateway: Gateway, client: Key) -> None:
    tok = token(jkt=client.jkt)
    proof = client.proof("GET", gateway.url("/v1/orders"), tok)
    before = _worker_connections(gateway)
    barrier = threading.Barrier(COPIES)

    def fire(_: int) -> Response:
        barrier.wait(timeout=20)
        return send(gateway, "GET", "/v1/orders", tok, proof, timeout=20)

    with ThreadPoolExecutor(COPIES) as pool:
        responses = list(pool.map(fire, range(COPIES)))
    outcome = Counter((r.status, r.header("x-trustplane-reason")) for r in responses)
    assert outcome == Counter({(200, None): 1, (401, "dpop_replay"): COPIES - 1}), outcome
    after = _worker_connections(gateway)
    busy = [name for name in after if after[name] - before.get(name, 0) > 0]
    assert len(busy) == 2, f"both workers must take connections: {before} -> {after}"


def test_a_token_that_expires_while_its_body_is_awaited_gets_the_dpop_challenge(
        gateway: Gateway, client: Key) -> None:
    # Decided again at the decision: token_expired, in the DPoP scheme it came with (the headers
    # would have answered the same), not the default Bearer challenge.
    exp = int(time.time()) + 3
    tok = token(BRIEF_ISS, jkt=client.jkt, exp=exp)
    proof = client.proof("POST", gateway.url("/brief/orders"), tok)
    body = b'{"n":1}'
    head = ["POST /brief/orders HTTP/1.1", f"Host: {gateway.authority}",
            f"Authorization: DPoP {tok}", f"DPoP: {proof}", "Content-Type: application/json",
            f"Content-Length: {len(body)}"]
    sock = socket.create_connection((gateway.host, gateway.port), timeout=10)
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.settimeout(1.0)
        try:
            early = sock.recv(1, socket.MSG_PEEK)
        except socket.timeout:
            early = b""
        assert early == b"", "the headers were answered before the body"
        assert time.time() < exp, "machine too slow: headers sent after the token expired"
        while time.time() < exp + 1.2:
            time.sleep(0.1)
        sock.settimeout(10)
        sock.sendall(body)
        raw = http.client.HTTPResponse(sock)
        raw.begin()
        resp = Response(raw.status, [(n.lower(), v) for n, v in raw.getheaders()], raw.read())
    finally:
        sock.close()
    expect_dpop_deny(gateway, resp, "token_expired", [f'DPoP error="invalid_token", {ALGS}'])


# ---------------------------------------------------------------------------------------------
# Server nonces

def test_missing_nonce_then_retry_with_the_issued_one(gateway: Gateway, client: Key) -> None:
    tok = token(NONCED_ISS, jkt=client.jkt)
    url = gateway.url("/nonced/orders")
    resp = send(gateway, "GET", "/nonced/orders", tok, client.proof("GET", url, tok))
    expect_dpop_deny(gateway, resp, "use_dpop_nonce", [f'DPoP error="use_dpop_nonce", {ALGS}'],
                     nonce=True)
    nonce = resp.header("dpop-nonce")
    assert nonce is not None
    # A made-up nonce is refused with a fresh one (the same, within one rotation).
    resp = send(gateway, "GET", "/nonced/orders", tok, client.proof("GET", url, tok, nonce="x" * 43))
    expect_dpop_deny(gateway, resp, "use_dpop_nonce", [f'DPoP error="use_dpop_nonce", {ALGS}'],
                     nonce=True)
    assert resp.header("dpop-nonce") == nonce
    # The issued nonce works, on whichever worker takes the connection.
    proofs = node([client.proof_op("GET", url, tok, nonce=nonce) for _ in range(8)])
    for p in proofs:
        expect_allow(send(gateway, "GET", "/nonced/orders", tok, p["proof"]))


# ---------------------------------------------------------------------------------------------
# Downgrades and the `allowed` mode

def test_bound_token_as_bearer_is_a_downgrade(gateway: Gateway, client: Key) -> None:
    for path, iss in (("/v1/orders", BOUND_ISS), ("/mixed/orders", MIXED_ISS)):
        tok = token(iss, jkt=client.jkt)
        proof = client.proof("GET", gateway.url(path), tok)
        for with_proof in (None, proof):
            resp = send(gateway, "GET", path, tok, with_proof, scheme="Bearer")
            expect_dpop_deny(gateway, resp, "dpop_downgrade", [f'DPoP error="invalid_token", {ALGS}'])


def test_unbound_token_where_dpop_is_required_is_a_downgrade(gateway: Gateway, client: Key) -> None:
    tok = token()
    proof = client.proof("GET", gateway.url("/v1/orders"), tok)
    for scheme in ("DPoP", "Bearer"):
        for with_proof in (None, proof):
            resp = send(gateway, "GET", "/v1/orders", tok, with_proof, scheme=scheme)
            expect_dpop_deny(gateway, resp, "dpop_downgrade", [f'DPoP error="invalid_token", {ALGS}'])


def test_allowed_takes_plain_bearer_tokens_without_cnf(gateway: Gateway) -> None:
    tok = token(MIXED_ISS)
    expect_allow(send(gateway, "GET", "/mixed/orders", tok, scheme="Bearer"))
    # And says both schemes are possible when nothing is presented.
    resp = send(gateway, "GET", "/mixed/orders", None)
    expect_dpop_deny(gateway, resp, "missing_token", ['Bearer realm="proofgate"', f"DPoP {ALGS}"])


def test_allowed_still_checks_dpop_tokens_fully(gateway: Gateway, client: Key) -> None:
    tok = token(MIXED_ISS, jkt=client.jkt)
    proof = client.proof("GET", gateway.url("/mixed/orders"), tok)
    expect_allow(send(gateway, "GET", "/mixed/orders", tok, proof))
    invalid_proof(send(gateway, "GET", "/mixed/orders", tok, proof), gateway, "dpop_replay")


def test_no_credential_on_a_required_provider(gateway: Gateway) -> None:
    resp = send(gateway, "GET", "/v1/orders", None)
    expect_dpop_deny(gateway, resp, "missing_token", [f"DPoP {ALGS}"])


# ---------------------------------------------------------------------------------------------
# What is logged

def test_no_proof_or_token_in_any_log(gateway: Gateway, client: Key) -> None:
    tok = token(jkt=client.jkt)
    proof = client.proof("GET", gateway.url("/v1/orders"), tok)
    resp = send(gateway, "GET", "/v1/orders", tok, proof)
    expect_allow(resp)
    event = gateway.wait_for(lambda: [e for e in gateway.audit_events()
                                      if e.get("dpop_jkt") == client.jkt
                                      and e.get("outcome") == "allow"], what="allow event")[-1]
    assert event["reason_code"] == "allowed"
    text = gateway.log_text() + "\n".join(gateway.access_log_lines())
    for secret in (proof, proof.split(".")[2], tok, tok.split(".")[2]):
        assert secret not in text


# ---------------------------------------------------------------------------------------------
# Configuration

@pytest.mark.parametrize("bad, path", [
    ({"dpop": "sometimes"}, "$.jwt_providers[0].dpop"),
    ({"dpop": "required", "dpop_algorithms": ["HS256"]}, "$.jwt_providers[0].dpop_algorithms[0]"),
    ({"dpop": "required", "dpop_algorithms": []}, "$.jwt_providers[0].dpop_algorithms"),
    ({"dpop": "required", "dpop_max_age_seconds": 0}, "$.jwt_providers[0].dpop_max_age_seconds"),
    ({"dpop": "required", "dpop_nonce": {}}, "$.jwt_providers[0].dpop_nonce.rotate_seconds"),
    ({"dpop_nonce": {"rotate_seconds": 60}}, "$.jwt_providers[0].dpop_nonce"),
])
def test_bad_dpop_settings_fail_validation(bad: dict[str, Any], path: str, tmp_path: Path,
                                           wasm: Path) -> None:
    cfg = json.loads(json.dumps(PLUGIN_CONFIG))
    cfg["jwt_providers"] = [dict(provider("bound", BOUND_ISS, "disabled"), **bad)]
    cfg["rules"] = [{"match": {"prefix": "/"}, "requires": {"provider": "bound"}}]
    if "dpop" not in bad:
        del cfg["jwt_providers"][0]["dpop"]
    ok, output = validate_config(cfg, tmp_path)
    assert not ok, output
    assert path in output, output

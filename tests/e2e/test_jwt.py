"""Bearer-JWT providers and per-route rules (DESIGN.md sections 11 and 13) in a real Envoy
(`--concurrency 2`) with INLINE keys. Tokens are minted by libraries independent of proofgate:
PyPI `PyJWT` (EdDSA, ES256, RS256, HS256) and npm `jose` (EdDSA, ES256, through
tests/e2e/dpop_clients.py, one node process for the session). Every tampering and claim failure gets its exact reason; the
rules route passport, provider, allow, any and all requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import harness
import tpsign
from dpop_clients import node
from harness import EVENT_ID_RE, describe, expect_allow, expect_deny, header_values

PYJWT_ISS = "https://pyjwt.example"
JOSE_ISS = "https://jose.example"
SHARED_ISS = "https://shared.example"
AUDIENCE = "inventory-service"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Keys made fresh for this module: PyJWT's through `cryptography`, jose's by jose itself.
ED = ed25519.Ed25519PrivateKey.generate()
EC = ec.generate_private_key(ec.SECP256R1())
RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SHARED_SECRET = secrets.token_bytes(32)
JOSE_ED, JOSE_EC = node([{"op": "keypair", "alg": "Ed25519"}, {"op": "keypair", "alg": "ES256"}])


def jwk_of(key: Any, kid: str) -> dict[str, Any]:
    """The public JWK of a PyJWT signing key, as PyJWT itself exports it."""
    algorithm = {ed25519.Ed25519PrivateKey: pyjwt.algorithms.OKPAlgorithm,
                 ec.EllipticCurvePrivateKey: pyjwt.algorithms.ECAlgorithm,
                 rsa.RSAPrivateKey: pyjwt.algorithms.RSAAlgorithm}
    kind = next(t for t in algorithm if isinstance(key, t))
    jwk = json.loads(algorithm[kind].to_jwk(key.public_key()))
    jwk["kid"] = kid
    return jwk


def public_jwk(private: dict[str, Any], kid: str) -> dict[str, Any]:
    pub = {k: v for k, v in private.items() if k not in ("d",)}
    pub["kid"] = kid
    return pub


PROVIDERS = [
    {"name": "pyjwt", "issuer": PYJWT_ISS, "audiences": [AUDIENCE],
     "keys": [jwk_of(ED, "py-ed"), jwk_of(EC, "py-ec"), jwk_of(RSA, "py-rsa")],
     "required_scopes": ["read:inventory"], "env": "production"},
    {"name": "jose", "issuer": JOSE_ISS, "audiences": [AUDIENCE],
     "keys": [public_jwk(JOSE_ED["private"], "jose-ed"), public_jwk(JOSE_EC["private"], "jose-ec")],
     "algorithms": ["EdDSA", "ES256"], "forward": True},
    {"name": "shared", "issuer": SHARED_ISS, "algorithms": ["HS256"],
     "keys": [{"kty": "oct", "kid": "hs", "k": b64(SHARED_SECRET)}],
     "from_headers": [{"name": "x-service-token"}],
     "claim_to_headers": [{"claim": "sub", "header": "x-shared-client"}]},
]

RULES = [
    {"match": {"prefix": "/healthz"}, "requires": "allow"},
    {"match": {"path": "/inventory-admin"}, "requires": {"provider": "pyjwt", "scopes": ["admin"]}},
    {"match": {"prefix": "/inventory"}, "requires": {"provider": "pyjwt"}},
    {"match": {"prefix": "/jose"}, "requires": {"provider": "jose"}},
    {"match": {"path_template": "/v1/orders/{order_id}", "methods": ["GET"]},
     "requires": {"all": ["passport", {"provider": "shared"}]}},
    {"match": {"prefix": "/"}, "requires": {"any": ["passport", {"provider": "pyjwt"}]}},
]

PLUGIN_CONFIG = harness.base_plugin_config(jwt_providers=PROVIDERS, rules=RULES)


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    c = {"iss": PYJWT_ISS, "sub": "svc-orders", "aud": AUDIENCE, "name": "Orders Service",
         "scope": "read:inventory write:inventory", "env": "production",
         "jti": secrets.token_hex(8), "iat": now - 5, "exp": now + 300}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def py(alg: str = "EdDSA", **over: Any) -> str:
    key, kid = {"EdDSA": (ED, "py-ed"), "ES256": (EC, "py-ec"), "RS256": (RSA, "py-rsa")}[alg]
    return pyjwt.encode(claims(**over), key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


def jose(alg: str = "EdDSA", **over: Any) -> str:
    key, kid = {"EdDSA": (JOSE_ED, "jose-ed"), "ES256": (JOSE_EC, "jose-ec")}[alg]
    c = claims(iss=JOSE_ISS, **over)
    return node([{"op": "token", "alg": alg, "key": key["private"], "kid": kid, "claims": c}])[0]["token"]


def raw_token(header: dict[str, Any] | str, payload: dict[str, Any] | str, sign) -> str:
    h = header if isinstance(header, str) else json.dumps(header)
    p = payload if isinstance(payload, str) else json.dumps(payload)
    signing_input = f"{b64(h.encode())}.{b64(p.encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def ed_sign(data: bytes) -> bytes:
    return ED.sign(data)


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def expect_token_allow(gw: harness.Gateway, resp: harness.Response, *, provider: str,
                       sub: str = "svc-orders", forwarded: bool = False) -> dict[str, Any]:
    info = describe(resp)
    assert resp.status == 200, info
    seen = resp.json()
    event_ids = header_values(seen, "x-trustplane-event-id")
    assert len(event_ids) == 1 and EVENT_ID_RE.match(event_ids[0]), seen["headers"]
    assert header_values(seen, "x-trustplane-decision") == []
    assert len(header_values(seen, "authorization")) == (1 if forwarded else 0), seen["headers"]
    event = gw.audit_event(event_ids[0])
    assert event["outcome"] == "allow" and event["provider"] == provider, event
    assert event["subject"] == sub, event
    return seen


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_pyjwt_tokens_verify(gateway: harness.Gateway, alg: str) -> None:
    token = py(alg)
    resp = gateway.send("GET", "/inventory/42", bearer(token) + [("x-auth-client-id", "forged")])
    seen = expect_token_allow(gateway, resp, provider="pyjwt")
    assert header_values(seen, "x-auth-client-id") == ["svc-orders"]
    assert header_values(seen, "x-auth-client-name") == ["Orders Service"]
    assert header_values(seen, "x-auth-scopes") == ["read:inventory write:inventory"]
    assert header_values(seen, "x-auth-env") == ["production"]
    event = gateway.audit_event(header_values(seen, "x-trustplane-event-id")[0])
    payload = pyjwt.decode(token, options={"verify_signature": False})
    assert (event["issuer"], event["jti"], event["scopes"]) == (
        PYJWT_ISS, payload["jti"], "read:inventory write:inventory")
    assert token not in gateway.log_text(), "a token reached the log"


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_jose_tokens_verify_and_are_forwarded(gateway: harness.Gateway, alg: str) -> None:
    token = jose(alg)
    resp = gateway.send("POST", "/jose/items", bearer(token) + [("content-type", "text/plain")],
                        b"body bytes")
    seen = expect_token_allow(gateway, resp, provider="jose", forwarded=True)
    assert header_values(seen, "authorization") == [f"Bearer {token}"]
    # jose's provider keeps the default claim_to_headers; its tokens carry no env claim check.
    assert header_values(seen, "x-auth-client-id") == ["svc-orders"]


def test_jose_tampering(gateway: harness.Gateway) -> None:
    token = jose("ES256")
    h, p, s = token.split(".")
    forged = b64(json.dumps(claims(iss=JOSE_ISS, sub="admin")).encode())
    expect_deny(gateway.send("GET", "/jose/x", bearer(f"{h}.{forged}.{s}")), 401,
                "invalid_token_signature", presented=True, gateway=gateway)
    expect_deny(gateway.send("GET", "/jose/x", bearer(jose("EdDSA", aud="other"))), 403,
                "audience_mismatch", presented=True, gateway=gateway)
    expect_deny(gateway.send("GET", "/jose/x", bearer(jose("EdDSA", exp=int(time.time()) - 120))),
                401, "token_expired", presented=True, gateway=gateway)


def test_tampering_and_claims_each_get_their_reason(gateway: harness.Gateway) -> None:
    now = int(time.time())
    good = py("EdDSA")
    h, p, s = good.split(".")
    hdr = {"alg": "EdDSA", "kid": "py-ed", "typ": "JWT"}
    rsa_pem = RSA.public_key().public_bytes(encoding=serialization.Encoding.PEM,
                                            format=serialization.PublicFormat.SubjectPublicKeyInfo)
    cases: list[tuple[str, str, int, str]] = [
        ("payload changed after signing",
         f"{h}.{b64(json.dumps(claims(sub='admin')).encode())}.{s}", 401, "invalid_token_signature"),
        ("signature of another key", py("EdDSA").rsplit(".", 1)[0] + "." + b64(ED.sign(b"x")), 401,
         "invalid_token_signature"),
        ("alg none", f"{b64(json.dumps({'alg': 'none', 'kid': 'py-ed'}).encode())}.{p}.", 401,
         "malformed_token"),
        ("HS256 keyed with the RSA public key",
         raw_token({"alg": "HS256", "kid": "py-rsa"}, claims(),
                   lambda d: hmac.new(rsa_pem, d, hashlib.sha256).digest()), 401, "malformed_token"),
        ("alg outside the provider's list", raw_token({"alg": "HS256", "kid": "hs"}, claims(),
                                                      lambda d: hmac.new(SHARED_SECRET, d, hashlib.sha256).digest()),
         401, "malformed_token"),
        ("crit header", raw_token({**hdr, "crit": ["exp"]}, claims(), ed_sign), 401, "malformed_token"),
        ("truncated", good[: len(good) // 2], 401, "malformed_token"),
        ("huge", good + "A" * 20_000, 401, "malformed_token"),
        ("JSON bomb", raw_token(hdr, '{"a":' * 5000 + "1" + "}" * 5000, ed_sign), 401, "malformed_token"),
        ("duplicate claim", raw_token(hdr, '{"sub":"a","sub":"b",' + json.dumps(claims())[1:], ed_sign),
         401, "malformed_token"),
        ("exp out of range", raw_token(hdr, json.dumps(claims(exp=None))[:-1] + ', "exp": 1e400}', ed_sign),
         401, "malformed_token"),
        ("exp beyond i64", raw_token(hdr, json.dumps(claims(exp=2**64 - 1)), ed_sign), 401, "malformed_token"),
        ("exp a float", raw_token(hdr, claims(exp=now + 300.5), ed_sign), 401, "malformed_token"),
        ("no exp", py(exp=None), 401, "malformed_token"),
        ("unknown kid", raw_token({**hdr, "kid": "nope"}, claims(), ed_sign), 401, "unknown_signing_key"),
        ("other issuer", py(iss="https://evil.example"), 401, "issuer_mismatch"),
        ("expired", py(exp=now - 120), 401, "token_expired"),
        ("lifetime too long", py(iat=now - 10, exp=now + 90_000), 401, "token_expired"),
        ("not yet valid (nbf)", py(nbf=now + 300), 401, "token_not_yet_valid"),
        ("not yet valid (iat)", py(iat=now + 300, exp=now + 600), 401, "token_not_yet_valid"),
        ("audience", py(aud="other-service"), 403, "audience_mismatch"),
        ("env", py(env="staging"), 403, "env_mismatch"),
    ]
    for what, token, status, reason in cases:
        resp = gateway.send("GET", "/inventory/1", bearer(token))
        try:
            expect_deny(resp, status, reason, presented=True, gateway=gateway)
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from None
    expect_deny(gateway.send("GET", "/inventory/1"), 401, "missing_token", presented=False,
                gateway=gateway)
    expect_deny(gateway.send("GET", "/inventory/1", [("authorization", f"Basic {good}")]), 401,
                "malformed_token", presented=True, gateway=gateway)
    expect_deny(gateway.send("GET", "/inventory/1", bearer(good) + bearer(good)), 401,
                "malformed_token", presented=True, gateway=gateway)
    assert gateway.alive() and not gateway.wasm_errors()


def test_insufficient_scope_names_the_scopes(gateway: harness.Gateway) -> None:
    for target, token, want in [
        ("/inventory/1", py(scope="write:inventory"), "read:inventory"),
        ("/inventory-admin", py(), "read:inventory admin"),
    ]:
        resp = gateway.send("GET", target, bearer(token))
        info = describe(resp)
        assert (resp.status, resp.header("x-trustplane-reason")) == (403, "insufficient_scope"), info
        assert resp.headers_named("www-authenticate") == [
            f'Bearer realm="proofgate", error="insufficient_scope", scope="{want}"'], info
    seen = gateway.send("GET", "/inventory-admin", bearer(py(scope="read:inventory admin"))).json()
    assert header_values(seen, "x-auth-scopes") == ["read:inventory admin"]


def test_allow_rule_and_inbound_claim_headers_stripped(gateway: harness.Gateway) -> None:
    resp = gateway.send("GET", "/healthz", [("x-auth-client-id", "forged"), ("x-shared-client", "x"),
                                            ("x-trustplane-subject", "root")])
    assert resp.status == 200, describe(resp)
    seen = resp.json()
    for name in ("x-auth-client-id", "x-shared-client", "x-trustplane-subject"):
        assert header_values(seen, name) == [], seen["headers"]


def test_any_picks_the_alternative_by_issuer(gateway: harness.Gateway) -> None:
    # A passport (trust-material issuer) takes the passport path, proof and replay included.
    req = tpsign.sign("POST", gateway.url("/v1/orders"), b'{"item":"x"}',
                      {"content-type": "application/json"})
    expect_allow(gateway.send_signed(req), jti=req["jti"], route_id="orders.create")
    expect_deny(gateway.send_signed(req), 401, "jti_replay", presented=True, gateway=gateway)
    # A PyJWT token on the same route takes the provider path.
    resp = gateway.send("POST", "/v1/orders", bearer(py()) + [("content-type", "application/json")],
                        b"{}")
    expect_token_allow(gateway, resp, provider="pyjwt")
    # An issuer that selects nothing; no credential at all is the first alternative's reason.
    expect_deny(gateway.send("POST", "/v1/orders", bearer(py(iss="https://nobody.example")), b"{}"),
                401, "issuer_mismatch", presented=True, gateway=gateway)
    expect_deny(gateway.send("POST", "/v1/orders", body=b"{}"), 401, "missing_passport",
                presented=False, gateway=gateway)
    # A passport-looking token with a forged issuer claim is checked by the provider and fails.
    forged = raw_token({"alg": "EdDSA", "kid": "py-ed"}, claims(iss=harness.ISSUER), lambda d: b"\0" * 64)
    expect_deny(gateway.send("POST", "/v1/orders", bearer(forged), b"{}"), 401,
                "unknown_signing_key", presented=True, gateway=gateway)


def test_all_needs_every_credential(gateway: harness.Gateway) -> None:
    shared = pyjwt.encode({"iss": SHARED_ISS, "sub": "svc-shared", "exp": int(time.time()) + 60},
                          SHARED_SECRET, algorithm="HS256", headers={"kid": "hs"})
    req = tpsign.sign("GET", gateway.url("/v1/orders/7"))
    expect_deny(gateway.send_signed(req), 401, "missing_token", presented=True, gateway=gateway)
    req = tpsign.sign("GET", gateway.url("/v1/orders/7"))
    resp = gateway.send_signed(req, extra=[("x-service-token", shared), ("x-shared-client", "forged")])
    seen = expect_allow(resp, jti=req["jti"], route_id="orders.get")
    assert header_values(seen, "x-shared-client") == ["svc-shared"]
    assert header_values(seen, "x-service-token") == [], "the shared token was not stripped"
    # A bad shared token fails the request although the passport is fine.
    bad = shared[:-3] + ("AAA" if not shared.endswith("AAA") else "BBB")
    req = tpsign.sign("GET", gateway.url("/v1/orders/7"))
    expect_deny(gateway.send_signed(req, extra=[("x-service-token", bad)]), 401,
                "invalid_token_signature", presented=True, gateway=gateway)
    # Without the passport: the passport alternative fails first.
    expect_deny(gateway.send("GET", "/v1/orders/7", [("x-service-token", shared)]), 401,
                "missing_passport", presented=True, gateway=gateway)


def test_config_errors_fail_validation(tmp_path: Path) -> None:
    bad = harness.base_plugin_config(jwt_providers=PROVIDERS, rules=RULES[:-1])
    ok, out = harness.validate_config(bad, tmp_path)
    assert not ok and "$.rules[4].match" in out, out[-2000:]
    bad = harness.base_plugin_config(jwt_providers=PROVIDERS, rules=[
        {"match": {"prefix": "/"}, "requires": {"provider": "nobody"}}])
    ok, out = harness.validate_config(bad, tmp_path)
    assert not ok and "$.rules[0].requires.provider" in out, out[-2000:]


def test_metrics_per_provider_and_the_verified_token_cache(gateway: harness.Gateway) -> None:
    def counts() -> tuple[int, int, int]:
        stats = gateway.stats()
        return tuple(stats.get(f"wasmcustom.proofgate.provider.pyjwt.{k}", 0)
                     for k in ("allow", "deny", "cache_hit"))  # type: ignore[return-value]

    before = counts()
    token = py("ES256")
    for _ in range(6):
        expect_token_allow(gateway, gateway.send("GET", "/inventory/9", bearer(token)), provider="pyjwt")
    expect_deny(gateway.send("GET", "/inventory/9", bearer(py(env="staging"))), 403, "env_mismatch",
                presented=True, gateway=gateway)
    # Two worker VMs, one cache each: each misses at most once, so at least 4 of 6 are hits.
    after = gateway.wait_for(lambda: (lambda c: c if c[0] - before[0] >= 6 else None)(counts()),
                             what="provider counters")
    assert after[0] - before[0] == 6 and after[1] - before[1] == 1, (before, after)
    assert 4 <= after[2] - before[2] <= 6, (before, after)

"""JWT providers with remote keys (`jwt_providers[].jwks`, DESIGN.md sections 12 and 13) in a
real Envoy with two workers.

Two JWKS servers (tests/e2e/jwks_server.py: count fetches, rotate keys, answer 500, send garbage
or an oversized body, stop) publish the public keys of two token issuers whose libraries share no
code with proofgate: PyPI `PyJWT` (EdDSA, ES256, RS256 keys made by `cryptography`) and npm
`jose` (EdDSA, ES256; tests/e2e/dpop_clients.py), the second a DPoP provider (`dpop: allowed`)
whose DPoP-bound tokens carry npm `dpop` proofs.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import harness
from dpop_clients import Key, node
from harness import EVENT_ID_RE, Gateway, Response, describe, expect_deny, header_values
from jwks_server import JwksServer

PY_ISS = "https://pyjwt.jwks.example"
JOSE_ISS = "https://jose.jwks.example"
AUDIENCE = "inventory-service"
MIN_REFETCH = 3
JWKS_SETTINGS = {"cache_seconds": 60, "timeout_ms": 1500, "min_refetch_seconds": MIN_REFETCH,
                 "max_stale_seconds": 60}

PY_ED = ed25519.Ed25519PrivateKey.generate()
PY_EC = ec.generate_private_key(ec.SECP256R1())
PY_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PY_ED_NEXT = ed25519.Ed25519PrivateKey.generate()
PY_KEYS = {"EdDSA": (PY_ED, "py-ed"), "ES256": (PY_EC, "py-ec"), "RS256": (PY_RSA, "py-rsa")}


def jwk_of(key: Any, kid: str) -> dict[str, Any]:
    """The public JWK of a PyJWT signing key, as PyJWT itself exports it."""
    algorithm = {ed25519.Ed25519PrivateKey: pyjwt.algorithms.OKPAlgorithm,
                 ec.EllipticCurvePrivateKey: pyjwt.algorithms.ECAlgorithm,
                 rsa.RSAPrivateKey: pyjwt.algorithms.RSAAlgorithm}
    kind = next(t for t in algorithm if isinstance(key, t))
    jwk = json.loads(algorithm[kind].to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig")
    return jwk


PY_JWKS = [jwk_of(PY_ED, "py-ed"), jwk_of(PY_EC, "py-ec"), jwk_of(PY_RSA, "py-rsa")]


def claims(iss: str = PY_ISS, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    c = {"iss": iss, "sub": "svc-orders", "aud": AUDIENCE, "scope": "read:inventory",
         "jti": secrets.token_hex(8), "iat": now - 5, "exp": now + 300}
    c.update(over)
    return c


def py_token(alg: str = "EdDSA", key: Any = None, kid: str | None = None, **over: Any) -> str:
    default_key, default_kid = PY_KEYS[alg]
    return pyjwt.encode(claims(**over), key or default_key, algorithm=alg,
                        headers={"kid": kid or default_kid, "typ": "JWT"})


@pytest.fixture(scope="module")
def jose_keys(wasm: Path) -> dict[str, Key]:
    # The issuer's signing keys and one DPoP client key, all made by jose.
    return {"EdDSA": Key("Ed25519"), "ES256": Key("ES256"), "client": Key("ES256")}


def jose_jwks(keys: dict[str, Key]) -> list[dict[str, Any]]:
    return [dict(keys["EdDSA"].public, kid="jose-ed", use="sig"),
            dict(keys["ES256"].public, kid="jose-ec", use="sig")]


def jose_token(keys: dict[str, Key], alg: str = "EdDSA", **over: Any) -> str:
    kid = {"EdDSA": "jose-ed", "ES256": "jose-ec"}[alg]
    op = {"op": "token", "alg": alg, "key": keys[alg].private, "kid": kid,
          "claims": claims(JOSE_ISS, **over)}
    return node([op])[0]["token"]


def plugin_config(py: JwksServer, jose: JwksServer, **py_jwks: Any) -> dict[str, Any]:
    return {
        "jwt_providers": [
            {"name": "pyjwt", "issuer": PY_ISS, "audiences": [AUDIENCE],
             "jwks": {"cluster": "jwks_py", "uri": py.uri, **JWKS_SETTINGS, **py_jwks}},
            {"name": "jose", "issuer": JOSE_ISS, "audiences": [AUDIENCE],
             "algorithms": ["EdDSA", "ES256"], "dpop": "allowed",
             "jwks": {"cluster": "jwks_jose", "uri": jose.uri, **JWKS_SETTINGS}},
        ],
        "rules": [
            {"match": {"prefix": "/jose"}, "requires": {"provider": "jose"}},
            {"match": {"prefix": "/"}, "requires": {"provider": "pyjwt"}},
        ],
    }


@pytest.fixture
def servers(jose_keys: dict[str, Key]) -> Iterator[tuple[JwksServer, JwksServer]]:
    py, jose = JwksServer().start(), JwksServer().start()
    py.set_keys(*PY_JWKS)
    jose.set_keys(*jose_jwks(jose_keys))
    try:
        yield py, jose
    finally:
        py.stop()
        jose.stop()


@contextmanager
def gateway_for(servers: tuple[JwksServer, JwksServer], workdir: Path,
                **py_jwks: Any) -> Iterator[Gateway]:
    py, jose = servers
    gw = harness.start_gateway(plugin_config(py, jose, **py_jwks), workdir,
                               extra_clusters=[py.cluster("jwks_py"), jose.cluster("jwks_jose")])
    try:
        yield gw
    finally:
        harness.stop_checked(gw)


def stat(gw: Gateway, name: str) -> int:
    return gw.stats().get(f"wasmcustom.proofgate.jwks.{name}", 0)


def send(gw: Gateway, path: str, token: str, scheme: str = "Bearer",
         proof: str | None = None, timeout: float = 5.0) -> Response:
    headers = [("Authorization", f"{scheme} {token}")]
    if proof is not None:
        headers.append(("DPoP", proof))
    return gw.send("GET", path, headers, timeout=timeout)


def expect_token_allowed(resp: Response) -> None:
    info = describe(resp)
    assert resp.status == 200, info
    seen = resp.json()
    assert header_values(seen, "x-auth-client-id") == ["svc-orders"], seen["headers"]
    assert header_values(seen, "authorization") == [], "token forwarded without forward: true"
    assert header_values(seen, "dpop") == [], "proof forwarded without forward: true"
    ids = header_values(seen, "x-trustplane-event-id")
    assert len(ids) == 1 and EVENT_ID_RE.match(ids[0]), seen["headers"]


def expect_keys_unavailable(gw: Gateway, resp: Response) -> None:
    expect_deny(resp, 503, "keys_unavailable", presented=True, gateway=gw)
    retry = resp.headers_named("retry-after")
    assert len(retry) == 1 and retry[0].isdigit() and int(retry[0]) >= 1, describe(resp)


def wait_until_refetch_allowed(server: JwksServer) -> None:
    """Past min_refetch_seconds since the server's last answer. The pipeline's clock is whole
    seconds (a request's `now`), so one more second of margin."""
    time.sleep(max(0.0, server.fetches[-1] + MIN_REFETCH + 1.2 - time.monotonic()))


def test_tokens_from_pyjwt_and_jose_verify_against_prefetched_keys_one_fetch_per_provider(
        servers: tuple[JwksServer, JwksServer], jose_keys: dict[str, Key], tmp_path: Path) -> None:
    py, jose = servers
    with gateway_for(servers, tmp_path) as gw:
        # Fetched before any request, once per provider for both workers.
        gw.wait_for(lambda: stat(gw, "fetch.ok") == 2, 10, "both providers' keys fetched")
        time.sleep(1.0)  # both workers tick every 100 ms: a second fetch would show by now
        assert (py.count(), jose.count()) == (1, 1)
        # Each request on its own connection: both workers answer, none fetches.
        for alg in ("EdDSA", "ES256", "RS256"):
            expect_token_allowed(send(gw, "/inventory", py_token(alg)))
        for alg in ("EdDSA", "ES256"):
            expect_token_allowed(send(gw, "/jose/items", jose_token(jose_keys, alg)))
        # The DPoP provider's tokens come from the fetched keys too: a jose token bound to the
        # client's key, with an npm dpop proof.
        client = jose_keys["client"]
        bound = jose_token(jose_keys, "ES256", cnf={"jkt": client.jkt})
        proof = client.proof("GET", gw.url("/jose/items"), bound)
        expect_token_allowed(send(gw, "/jose/items", bound, "DPoP", proof))
        resp = send(gw, "/jose/items", bound)  # the same token as Bearer: a downgrade
        assert (resp.status, resp.header("x-trustplane-reason")) == (401, "dpop_downgrade"), describe(resp)
        assert (py.count(), jose.count()) == (1, 1)
        assert stat(gw, "fetch.failed") == 0
        # Tampering is refused with its exact reason; HS256 over the RSA public key is not an
        # algorithm the provider accepts.
        head, body, sig = py_token("ES256").split(".")
        forged = ".".join([head, body, sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB")])
        expect_deny(send(gw, "/inventory", forged), 401, "invalid_token_signature",
                    presented=True, gateway=gw)
        hs = pyjwt.api_jws.PyJWS().encode(json.dumps(claims()).encode(), b"s" * 32, algorithm="HS256",
                                          headers={"kid": "py-rsa"})
        expect_deny(send(gw, "/inventory", hs), 401, "malformed_token", presented=True, gateway=gw)
        resp = send(gw, "/inventory", py_token(aud="someone-else"))
        expect_deny(resp, 403, "audience_mismatch", presented=True, gateway=gw)


def test_a_request_arriving_during_the_first_fetch_is_held_then_allowed(
        servers: tuple[JwksServer, JwksServer], tmp_path: Path) -> None:
    py, _ = servers
    py.set_mode("ok", delay=3.0)
    with gateway_for(servers, tmp_path, timeout_ms=8000) as gw:
        sent = time.monotonic()
        resp = send(gw, "/inventory", py_token("RS256"), timeout=15)
        expect_token_allowed(resp)
        assert py.count() == 1
        assert py.fetches[0] > sent, "the keys were there before the request"
        time.sleep(0.5)
        assert py.count() == 1


def test_rotation_unknown_kid_storm_and_a_dead_server(
        servers: tuple[JwksServer, JwksServer], tmp_path: Path) -> None:
    py, _ = servers
    with gateway_for(servers, tmp_path) as gw:
        gw.wait_for(lambda: py.count() == 1 and stat(gw, "fetch.ok") == 2, 10, "first fetches")
        expect_token_allowed(send(gw, "/inventory", py_token()))
        # Rotation: a token of a new key is held for exactly one refetch, then allowed.
        py.set_keys(*PY_JWKS, jwk_of(PY_ED_NEXT, "py-ed-2"))
        expect_token_allowed(send(gw, "/inventory", py_token(key=PY_ED_NEXT, kid="py-ed-2")))
        assert py.count() == 2
        assert stat(gw, "refetch.unknown_kid") == 1
        for _ in range(6):  # both workers use the one shared copy
            expect_token_allowed(send(gw, "/inventory", py_token(key=PY_ED_NEXT, kid="py-ed-2")))
            expect_token_allowed(send(gw, "/inventory", py_token()))
        assert py.count() == 2

        # A storm of made-up kids, once the rate limit allows a refetch again.
        wait_until_refetch_allowed(py)
        before, start = py.count(), time.monotonic()
        barrier = threading.Barrier(30)

        def unknown(_: int) -> Response:
            barrier.wait(timeout=10)
            return send(gw, "/inventory", py_token(kid=f"made-up-{secrets.token_hex(4)}"), timeout=10)

        with ThreadPoolExecutor(30) as pool:
            responses = list(pool.map(unknown, range(30)))
        elapsed = time.monotonic() - start
        outcome = Counter((r.status, r.header("x-trustplane-reason")) for r in responses)
        assert outcome == Counter({(401, "unknown_signing_key"): 30}), outcome
        for r in responses:
            expect_deny(r, 401, "unknown_signing_key", presented=True)
        refetches = py.count() - before
        assert 1 <= refetches <= 1 + math.floor(elapsed / MIN_REFETCH), (refetches, elapsed)
        assert stat(gw, "refetch.unknown_kid") == 1 + refetches

        # The server answers 500, then is gone: each refetch fails, the last good keys stay.
        for mode, says in [("500", "status 500"), ("stopped", "status 503")]:
            if mode == "stopped":
                py.stop()
            else:
                py.set_mode(mode)
            failed = stat(gw, "fetch.failed")
            wait_until_refetch_allowed(py)
            resp = send(gw, "/inventory", py_token(kid="made-up-again"), timeout=10)
            expect_deny(resp, 401, "unknown_signing_key", presented=True, gateway=gw)
            # (>=: a failed fetch also schedules retries with backoff, which fail too.)
            gw.wait_for(lambda: stat(gw, "fetch.failed") >= failed + 1, 10, f"a failed fetch ({mode})")
            gw.wait_for(lambda: says in gw.log_text(), 10, f"the log line for {mode}")
            for alg in ("EdDSA", "ES256", "RS256"):
                expect_token_allowed(send(gw, "/inventory", py_token(alg)))
            expect_token_allowed(send(gw, "/inventory", py_token(key=PY_ED_NEXT, kid="py-ed-2")))
        # Failure lines name the provider and why, never a key.
        assert PY_JWKS[0]["x"] not in gw.log_text()


def test_no_keys_is_a_prompt_503_then_garbage_and_oversize_then_recovery(
        servers: tuple[JwksServer, JwksServer], tmp_path: Path) -> None:
    py, _ = servers
    py.set_mode("garbage")
    with gateway_for(servers, tmp_path, timeout_ms=1000, max_bytes=4096) as gw:
        gw.wait_for(lambda: stat(gw, "fetch.failed") >= 1, 10, "the garbage fetch failed")
        # Held at most timeout_ms, never a hang and never a 401 for the gateway's own keys.
        resp = send(gw, "/inventory", py_token(), timeout=10)
        expect_keys_unavailable(gw, resp)
        event = gw.audit_event(resp.header("x-trustplane-event-id"))
        assert (event["reason_code"], event["provider"]) == ("keys_unavailable", "pyjwt")
        assert "unusable document: not strict JSON" in gw.log_text()
        # A body over max_bytes.
        py.oversize_bytes = 5000
        py.set_mode("oversize")
        failed = stat(gw, "fetch.failed")
        gw.wait_for(lambda: stat(gw, "fetch.failed") > failed, 10, "the oversized fetch failed")
        gw.wait_for(lambda: "over max_bytes" in gw.log_text(), 5, "the oversize log line")
        expect_keys_unavailable(gw, send(gw, "/inventory", py_token(), timeout=10))
        # Keys come back on the next retry (exponential backoff from 1 s).
        py.set_mode("ok")
        gw.wait_for(lambda: stat(gw, "fetch.ok") == 2, 20, "the keys after the failures")
        expect_token_allowed(send(gw, "/inventory", py_token("RS256")))


@pytest.mark.parametrize("edit, path, says", [
    ({"algorithms": ["EdDSA", "HS256"]}, "jwt_providers[0].algorithms[1]",
     "HS256 is not allowed with jwks"),
    ({"algorithms": ["HS256"], "dpop": "allowed"}, "jwt_providers[0].algorithms[0]",
     "HS256 is not allowed with jwks"),
    ({"jwks": {"uri": "https://a.example/jwks.json"}}, "jwt_providers[0].jwks.cluster", "is required"),
    ({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]},
     "jwt_providers[0].jwks", "not both"),
])
def test_bad_provider_jwks_settings_fail_validation_with_their_json_path(
        edit: dict[str, Any], path: str, says: str, tmp_path: Path, wasm: Path) -> None:
    provider = {"name": "p", "issuer": PY_ISS, "jwks": {"cluster": "jwks_py"}, **edit}
    config = {"jwt_providers": [provider],
              "rules": [{"match": {"prefix": "/"}, "requires": {"provider": "p"}}]}
    ok, output = harness.validate_config(config, tmp_path)
    assert not ok, output
    assert f"$.{path}: " in output and says in output, output

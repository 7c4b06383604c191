"""Passport checks (401s), identity and source policy (403s), each with its exact reason.

Every request here carries a valid request proof for the passport it presents, so the passport
step is what fails.
"""

from __future__ import annotations

import time

import pytest

import tpsign
from harness import Gateway, expect_deny

NOW = time.time


def _get(gateway: Gateway, **kwargs: object) -> dict:
    return tpsign.sign("GET", gateway.url("/v1/orders/7"), **kwargs)


def _with_token(gateway: Gateway, token: str, key: object = None) -> dict:
    """A request whose proof is made with the SDK for the given (possibly bad) token."""
    return _get(gateway, passport=token, key=key)


def _deny(gateway: Gateway, req: dict, status: int, reason: str, **tamper: object) -> None:
    expect_deny(gateway.send_signed(req, **tamper), status, reason, presented=True, gateway=gateway)


def test_no_authorization(gateway: Gateway) -> None:
    req = _get(gateway)
    resp = gateway.send_signed(req, drop=["Authorization"])
    expect_deny(resp, 401, "missing_passport", presented=False, gateway=gateway)


def test_no_credentials_at_all(gateway: Gateway) -> None:
    expect_deny(gateway.send("GET", "/v1/orders/7"), 401, "missing_passport", presented=False, gateway=gateway)


def test_passport_payload_changed(gateway: Gateway) -> None:
    token = tpsign.issue().token
    _, claims = tpsign.token_parts(token)
    claims["sub"] = "external:jwks:someone-else"
    _deny(gateway, _with_token(gateway, tpsign.reencode_token(token, claims=claims)), 401, "invalid_passport_signature")


def test_alg_none(gateway: Gateway) -> None:
    token = tpsign.issue().token
    header, _ = tpsign.token_parts(token)
    _deny(gateway, _with_token(gateway, tpsign.reencode_token(token, header={**header, "alg": "none"})),
          401, "malformed_passport")


def test_alg_none_empty_signature(gateway: Gateway) -> None:
    token = tpsign.issue().token
    header, _ = tpsign.token_parts(token)
    bad = tpsign.reencode_token(token, header={**header, "alg": "none"}, signature="")
    _deny(gateway, _with_token(gateway, bad), 401, "malformed_passport")


def test_unknown_kid(gateway: Gateway) -> None:
    _deny(gateway, _get(gateway, kid="demo-caller-2"), 401, "unknown_signing_key")


def test_unknown_issuer(gateway: Gateway) -> None:
    _deny(gateway, _get(gateway, issuer="https://issuer.example/other"), 401, "unknown_signing_key")


def test_forged_signature_other_key(gateway: Gateway) -> None:
    other = tpsign.key_from_seed(bytes(range(1, 33)))
    _deny(gateway, _get(gateway, key=other), 401, "invalid_passport_signature")


def test_expired(gateway: Gateway) -> None:
    # ttl 600, skew 30: issued 700 s ago expired 100 s ago, beyond the skew.
    _deny(gateway, _get(gateway, now=NOW() - 700), 401, "passport_expired")


def test_not_yet_valid(gateway: Gateway) -> None:
    _deny(gateway, _get(gateway, now=NOW() + 600), 401, "passport_not_yet_valid")


def test_lifetime_exceeded(gateway: Gateway) -> None:
    _deny(gateway, _get(gateway, ttl=3600), 401, "passport_lifetime_exceeded")


def test_missing_claim(gateway: Gateway) -> None:
    token = tpsign.issue().token
    _, claims = tpsign.token_parts(token)
    del claims["trust_domain"]
    unsigned = tpsign.reencode_token(token, claims=claims).rsplit(".", 1)[0]
    signature = tpsign.b64url(tpsign.key_from_seed().sign(unsigned.encode()))
    _deny(gateway, _with_token(gateway, f"{unsigned}.{signature}"), 401, "invalid_passport_claims")


def test_wrong_audience(gateway: Gateway) -> None:
    _deny(gateway, _get(gateway, audience="billing-api"), 403, "audience_mismatch")


def test_wrong_trust_domain(gateway: Gateway) -> None:
    _deny(gateway, _get(gateway, trust_domain="example.other"), 403, "trust_domain_mismatch")


def test_subject_not_allowed_by_route(gateway: Gateway) -> None:
    _deny(gateway, _get(gateway, subject="external:jwks:intruder"), 403, "source_subject_mismatch")


@pytest.mark.parametrize("authorization", [
    "Bearer {h}.{p}.{s}==",               # base64 padding
    "Bearer {h}.{p}.+{s}",                # non-base64url byte (standard alphabet '+')
    "Bearer {h}.{p}!.{s}",                # invalid base64
    "Bearer {h}.{p}",                     # two segments
    "Bearer {h}.{p}.{s}.{s}",             # four segments
    "Bearer  {h}.{p}.{s}",                # two spaces
    "Basic {h}.{p}.{s}",                  # other scheme
    "bearer {h}.{p}.{s}",                 # the scheme is exactly "Bearer"
    "Bearer " + "A" * 32 * 1024,          # 32 KiB: reaches the filter (Envoy's own limit is 60 KiB)
])
def test_malformed_authorization(gateway: Gateway, authorization: str) -> None:
    req = _get(gateway)
    h, p, s = req["passport"].split(".")
    value = authorization.replace("{h}", h).replace("{p}", p).replace("{s}", s)
    _deny(gateway, req, 401, "malformed_passport", replace={"Authorization": value})


def test_header_beyond_envoy_limit_is_envoys_431(gateway: Gateway) -> None:
    req = _get(gateway)
    resp = gateway.send_signed(req, replace={"Authorization": "Bearer " + "A" * 64 * 1024})
    assert resp.status == 431 and resp.header("x-trustplane-reason") is None, resp.headers


def test_duplicate_authorization(gateway: Gateway) -> None:
    # Envoy folds the two into "Bearer A,Bearer B" (see test_harness), which is not a compact JWS.
    req, other = _get(gateway), _get(gateway)
    for first, second in ((req["passport"], other["passport"]), (other["passport"], req["passport"])):
        resp = gateway.send_signed(req, drop=["Authorization"],
                                   extra=[("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")])
        expect_deny(resp, 401, "malformed_passport", presented=True, gateway=gateway)

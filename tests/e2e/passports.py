"""Helpers for the policy end-to-end tests: bundle routes, hand-made passports of any signer
class, and an allow check for callers other than the default demo caller.

The SDK (and so `tpsign.sign`) only signs `cnf.key_binding: software` passports. A passport of
another class is issued here with `tpsign.issue(extra_claims={"cnf": ...})` (same key, same JWS
shape), and its request proof is made over the SDK's own transcript-v1 builder with that class on
the `key_binding` line, exactly as a hardware-backed TrustPlane signer would.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from trustplane_auth import Header, RequestInput, build_request

import harness
import tpsign
from harness import EVENT_ID_RE, Response, describe, header_values


def route(route_id: str, method: str, path_template: str, *,
          sources: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    """A bundle route like the harness's (demo caller, software, offline-ok). A field given as
    None is removed (e.g. `freshness_class=None` for a route without a class)."""
    r: dict[str, Any] = {
        "route_id": route_id,
        "method": method,
        "path_template": path_template,
        "required_key_binding": "software",
        "allowed_sources": copy.deepcopy(sources) if sources is not None else [source()],
        "freshness_class": "offline-ok",
    }
    for key, value in fields.items():
        if value is None:
            r.pop(key, None)
        else:
            r[key] = copy.deepcopy(value)
    return r


def source(issuer: str = harness.ISSUER, trust_domain: str = harness.TRUST_DOMAIN, *,
           subject_exact: str | None = harness.SUBJECT, subject_prefix: str | None = None,
           **fields: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"source_type": "software_jwks", "issuer": issuer, "trust_domain": trust_domain}
    if subject_prefix is not None:
        s["subject_prefix"] = subject_prefix
    elif subject_exact is not None:
        s["subject_exact"] = subject_exact
    s.update(copy.deepcopy(fields))
    return s


def bundle(routes: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A trustplane-bundle-v1 with one API (orders-api) and one route group. Bundle-level
    defaults are absent unless given."""
    b: dict[str, Any] = {
        "version": "trustplane-bundle-v1",
        "kind": "policy_runtime_bundle",
        "trust_domain": harness.TRUST_DOMAIN,
        "apis": [{"api_id": "orders-api", "audience": "orders-api"}],
        "route_groups": [{"route_group_id": "main", "api_id": "orders-api", "routes": routes}],
        "revocations": [],
    }
    b.update(copy.deepcopy(fields))
    return b


def sign_bound(method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None,
               route_id: str | None = None, *, key_binding: str, key: Ed25519PrivateKey | None = None,
               extra_claims: Mapping[str, Any] | None = None, proof_key_binding: str | None = None,
               **passport_overrides: Any) -> dict[str, Any]:
    """Like `tpsign.sign`, for a passport whose `cnf.key_binding` is `key_binding` (any class).
    Returns the same dict shape, so `Gateway.send_signed` sends it. `proof_key_binding` puts
    another class on the transcript's `key_binding` line (a negative test)."""
    key = key or tpsign.key_from_seed()
    public = tpsign.public_key_b64url(key)
    cnf = {"kid": public, "public_key_b64url": public, "key_binding": key_binding}
    issued = tpsign.issue(key=key, extra_claims={"cnf": cnf, **(extra_claims or {})}, **passport_overrides)
    _, claims = tpsign.token_parts(issued.token)

    parts = urlsplit(url)
    path = parts.path or "/"
    route_id = route_id or tpsign.default_route_id(method, path)
    out: dict[str, str] = dict(headers or {})
    out["X-TrustPlane-Nonce"] = secrets.token_bytes(16).hex()
    material = build_request(RequestInput(
        method=method.upper(), scheme=parts.scheme, authority=parts.netloc, path=path,
        raw_query=parts.query, audience=claims["aud"], route_id=route_id, content_encoding="identity",
        body=body, headers=tuple(Header(name=n.lower(), value=v) for n, v in out.items()),
        header_allow_list=tuple(sorted(n.lower() for n in out)), nonce=out["X-TrustPlane-Nonce"],
        issued_at_unix=claims["iat"], passport_jti=claims["jti"], key_binding=proof_key_binding or key_binding,
    ))
    assert material.canonical_lines[-1] == f"key_binding={proof_key_binding or key_binding}"
    out["Authorization"] = f"Bearer {issued.token}"
    out["X-TrustPlane-Transcript-SHA256"] = material.transcript_sha256
    out["X-TrustPlane-Proof"] = tpsign.b64url(key.sign(bytes.fromhex(material.transcript_sha256)))
    out["X-TrustPlane-Body-SHA256"] = material.body_sha256
    return {
        "method": method.upper(), "url": url, "target": path + (f"?{parts.query}" if parts.query else ""),
        "headers": out, "body": body, "passport": issued.token, "jti": claims["jti"],
        "transcript_sha256": material.transcript_sha256, "canonical_lines": list(material.canonical_lines),
    }


def expect_allowed_as(resp: Response, req: dict[str, Any], route_id: str, *,
                      subject: str = harness.SUBJECT, issuer: str = harness.ISSUER,
                      trust_domain: str = harness.TRUST_DOMAIN, key_binding: str = "software") -> dict[str, Any]:
    """`harness.expect_allow` for any caller: status 200 and the identity the upstream saw."""
    info = describe(resp)
    assert resp.status == 200 and resp.header("x-trustplane-decision") is None, info
    seen = resp.json()
    expected = {
        "x-trustplane-subject": subject,
        "x-trustplane-issuer": issuer,
        "x-trustplane-trust-domain": trust_domain,
        "x-trustplane-jti": req["jti"],
        "x-trustplane-route-id": route_id,
        "x-trustplane-key-binding": key_binding,
    }
    for name, value in expected.items():
        assert header_values(seen, name) == [value], f"upstream {name}: {seen['headers']}"
    event_ids = header_values(seen, "x-trustplane-event-id")
    assert len(event_ids) == 1 and EVENT_ID_RE.match(event_ids[0]), seen["headers"]
    for name in harness.CREDENTIAL_HEADERS:
        assert header_values(seen, name) == [], f"upstream got credential {name}: {seen['headers']}"
    return seen

"""Sign HTTP requests the way a TrustPlane caller does, using only `trustplane-auth-sdk`.

A passport (`issue_passport`) plus a transcript-v1 request proof (`sign_request`), exactly as the
SDK's `ProtectedClient` builds them: the headers you pass, plus `X-TrustPlane-Nonce`, are sent and
are the signed header allow-list. Used by `examples/sign_request.py` and the end-to-end tests.

The default key is a TEST-ONLY key (seed = bytes 0x00..0x1f, public key
A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg). Never trust it anywhere real.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from trustplane_auth import (
    HEADER_NONCE,
    Header,
    IssuedPassport,
    PassportOptions,
    RequestInput,
    issue_passport,
    raw_public_key,
    sign_request,
)

RESERVED_HEADERS = frozenset(
    ("authorization", "x-trustplane-nonce", "x-trustplane-proof",
     "x-trustplane-transcript-sha256", "x-trustplane-body-sha256")
)
TEST_KEY_SEED = bytes(range(32))
TEST_PUBLIC_KEY_B64URL = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"

DEFAULTS: dict[str, Any] = {
    "issuer": "https://issuer.example/external-jwks",
    "subject": "external:jwks:demo-caller",
    "audience": "orders-api",
    "trust_domain": "example.external",
    "kid": "demo-caller-1",
    "ttl": 600,
}


def key_from_seed(seed: bytes = TEST_KEY_SEED) -> Ed25519PrivateKey:
    if len(seed) != 32:
        raise ValueError("an Ed25519 seed is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_b64url(key: Ed25519PrivateKey) -> str:
    return b64url(raw_public_key(key))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def default_route_id(method: str, path: str) -> str:
    """The demo bundle's route for a request: orders.create / orders.search / orders.get."""
    method = method.upper()
    segments = path.strip("/").split("/")
    if method == "POST" and path == "/v1/orders":
        return "orders.create"
    if method == "GET" and path == "/v1/orders/search":
        return "orders.search"
    if method == "GET" and len(segments) == 3 and segments[:2] == ["v1", "orders"] and segments[2]:
        return "orders.get"
    raise ValueError(f"no default route id for {method} {path}; pass route_id")


def _as_datetime(now: datetime | float | int | None) -> datetime | None:
    if now is None or isinstance(now, datetime):
        return now
    return datetime.fromtimestamp(now, tz=timezone.utc)


def issue(
    *,
    key: Ed25519PrivateKey | None = None,
    issuer: str = DEFAULTS["issuer"],
    subject: str = DEFAULTS["subject"],
    audience: str = DEFAULTS["audience"],
    trust_domain: str = DEFAULTS["trust_domain"],
    kid: str = DEFAULTS["kid"],
    ttl: float = DEFAULTS["ttl"],
    now: datetime | float | None = None,
    jti: str = "",
    extra_claims: Mapping[str, Any] | None = None,
) -> IssuedPassport:
    """Issue a passport with the SDK (cnf binds the same key that signs it).

    `extra_claims` (e.g. `{"ctx": {...}, "provenance": {...}}`) are added to the SDK's claims, or
    replace one of them, and the token is re-signed with the same key in the SDK's JWS shape
    (same header segment, compact JSON). Without them the SDK's token is returned unchanged.
    """
    key = key or key_from_seed()
    issued = issue_passport(
        PassportOptions(
            issuer=issuer,
            subject=subject,
            audience=audience,
            trust_domain=trust_domain,
            key_id=kid,
            private_key=key,
            ttl=timedelta(seconds=ttl),
            now=_as_datetime(now),
            jti=jti,
        )
    )
    if not extra_claims:
        return issued
    header64, payload64, _ = issued.token.split(".")
    claims = {**json.loads(b64url_decode(payload64)), **extra_claims}
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    unsigned = f"{header64}.{b64url(payload)}"
    token = f"{unsigned}.{b64url(key.sign(unsigned.encode('ascii')))}"
    return dataclasses.replace(issued, token=token)


def sign(
    method: str,
    url: str,
    body: bytes | str = b"",
    headers: Mapping[str, str] | None = None,
    route_id: str | None = None,
    *,
    nonce: str | None = None,
    key: Ed25519PrivateKey | None = None,
    passport: str | None = None,
    **passport_overrides: Any,
) -> dict[str, Any]:
    """Sign one request. Returns a dict:

    method, url, target (path?query as sent), headers (ordered dict: yours, then the nonce,
    Authorization and the proof headers), body (bytes), passport (token), jti,
    transcript_sha256, canonical_lines.

    `passport` signs with a ready-made token instead of issuing one (the SDK reads its payload
    for aud/jti/iat/cnf, and `key` must be the cnf key); otherwise `passport_overrides`
    (issuer, subject, audience, trust_domain, kid, ttl, now, jti, extra_claims) go to `issue`.
    """
    method = method.strip().upper()
    key = key or key_from_seed()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"need an absolute http(s) URL, got {url!r}")
    path = parts.path or "/"
    body_bytes = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    route_id = route_id or default_route_id(method, path)
    token = passport if passport is not None else issue(key=key, **passport_overrides).token

    out_headers: dict[str, str] = dict(headers or {})
    reserved = [n for n in out_headers if n.lower() in RESERVED_HEADERS]
    if reserved:
        raise ValueError(f"reserved TrustPlane header(s) {reserved}: the signer sets them")
    out_headers[HEADER_NONCE] = nonce if nonce is not None else secrets.token_bytes(16).hex()
    content_encoding = next(
        (v.strip() for n, v in out_headers.items() if n.lower() == "content-encoding"), ""
    )
    signed = sign_request(
        request=RequestInput(
            method=method,
            scheme=parts.scheme,
            authority=parts.netloc,
            path=path,
            raw_query=parts.query,
            route_id=route_id,
            content_encoding=content_encoding or "identity",
            body=body_bytes,
            headers=tuple(Header(name=n.lower(), value=v) for n, v in out_headers.items()),
            header_allow_list=tuple(sorted(n.lower() for n in out_headers)),
            nonce=out_headers[HEADER_NONCE],
        ),
        passport_token=token,
        private_key=key,
    )
    out_headers.update(signed.headers)
    claims = json.loads(b64url_decode(token.split(".")[1]))
    return {
        "method": method,
        "url": url,
        "target": path + (f"?{parts.query}" if parts.query else ""),
        "headers": out_headers,
        "body": body_bytes,
        "passport": token,
        "jti": claims.get("jti", ""),
        "transcript_sha256": signed.transcript_sha256,
        "canonical_lines": list(signed.canonical_lines),
    }


def reencode_token(token: str, header: Mapping[str, Any] | None = None,
                   claims: Mapping[str, Any] | None = None, signature: str | None = None) -> str:
    """Rebuild a compact JWS with a replaced header / claims / signature (for negative tests)."""
    h, p, s = token.split(".")
    if header is not None:
        h = b64url(json.dumps(header, separators=(",", ":")).encode())
    if claims is not None:
        p = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{h}.{p}.{s if signature is None else signature}"


def token_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    h, p, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p))

"""Requests signed by the TrustPlane SDK are allowed; the upstream sees identity, not credentials."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from trustplane_auth import ProtectedClient, SigningProfile

import harness
import tpsign
from harness import Gateway, expect_allow, expect_deny, header_values

SPOOFED = [(name.title(), "spoofed") for name in harness.IDENTITY_HEADERS + harness.DECISION_HEADERS]


def test_signed_post_with_body_and_query_allowed(gateway: Gateway) -> None:
    body = b'{"order_id":"ord_123","amount":"42.00"}'
    req = tpsign.sign("POST", gateway.url("/v1/orders?b=2&a=1"), body, {"Content-Type": "application/json"})
    seen = expect_allow(gateway.send_signed(req), jti=req["jti"], route_id="orders.create")
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/v1/orders?b=2&a=1", body.decode())
    assert header_values(seen, "content-type") == ["application/json"]
    assert gateway.upstream_requests()[-1] == seen


def test_signed_get_allowed(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/ord_123?expand=items"), headers={"Accept": "application/json"})
    seen = expect_allow(gateway.send_signed(req), jti=req["jti"], route_id="orders.get")
    assert seen["path"] == "/v1/orders/ord_123?expand=items"
    assert header_values(seen, "accept") == ["application/json"]


def test_exact_route_wins_over_template(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/search?q=x"))
    expect_allow(gateway.send_signed(req), jti=req["jti"], route_id="orders.search")
    # Signed for the template route: the gateway resolves orders.search, so the binding differs.
    req = tpsign.sign("GET", gateway.url("/v1/orders/search?q=x"), route_id="orders.get")
    expect_deny(gateway.send_signed(req), 401, "request_binding_mismatch", presented=True, gateway=gateway)


def test_query_order_and_encoding_are_normalised(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/7?b=2&a=1&c=x%2Fy"))
    expect_allow(gateway.send_signed(req, target="/v1/orders/7?a=1&c=x/y&b=2"), jti=req["jti"], route_id="orders.get")


def test_authority_is_lowercased(gateway: Gateway) -> None:
    req = tpsign.sign("GET", f"http://localhost:{gateway.port}/v1/orders/7")
    resp = gateway.send_signed(req, extra=[("Host", f"LocalHost:{gateway.port}")])
    expect_allow(resp, jti=req["jti"], route_id="orders.get")


def _profile(gateway: Gateway, route_id: str, method: str, route_path: str) -> SigningProfile:
    return SigningProfile.from_control({
        "state": "active",
        "request_base_url": gateway.base_url,
        "kid": harness.KID,
        "subject": harness.SUBJECT,
        "trust_domain": harness.TRUST_DOMAIN,
        "issuer": harness.ISSUER,
        "route_id": route_id,
        "route_match_type": "Exact",
        "route_path": route_path,
        "method": method,
        "audience": "orders-api",
    })


def test_protected_client_get_allowed(gateway: Gateway) -> None:
    client = ProtectedClient(_profile(gateway, "orders.get", "GET", "/v1/orders/{order_id}"),
                             tpsign.key_from_seed(), passport_ttl=timedelta(minutes=5))
    with client.request("GET", "/v1/orders/123?expand=items&b=2", headers={"Accept": "application/json"}) as resp:
        assert resp.status == 200
        seen = json.loads(resp.read())
    assert header_values(seen, "x-trustplane-route-id") == ["orders.get"]
    assert header_values(seen, "x-trustplane-subject") == [harness.SUBJECT]
    assert header_values(seen, "authorization") == []


def test_protected_client_post_allowed(gateway: Gateway) -> None:
    client = ProtectedClient(_profile(gateway, "orders.create", "POST", "/v1/orders"), tpsign.key_from_seed())
    with client.request("POST", "/v1/orders", body='{"order_id":"ord_9"}',
                        headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 200
        seen = json.loads(resp.read())
    assert seen["body"] == '{"order_id":"ord_9"}'
    assert header_values(seen, "x-trustplane-route-id") == ["orders.create"]


def test_spoofed_identity_headers_replaced_on_allow(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/7"))
    expect_allow(gateway.send_signed(req, extra=SPOOFED), jti=req["jti"], route_id="orders.get")


@pytest.mark.parametrize("target", ["/healthz", "/healthz/deep?x=1"])
def test_exempt_route_needs_no_credentials_and_strips_spoofs(gateway: Gateway, target: str) -> None:
    resp = gateway.send("GET", target, SPOOFED)
    assert resp.status == 200, harness.describe(resp)
    seen = resp.json()
    assert seen["path"] == target
    for name in harness.IDENTITY_HEADERS + harness.DECISION_HEADERS:
        assert header_values(seen, name) == [], f"upstream got spoofed {name}: {seen['headers']}"


@pytest.mark.parametrize("method,target", [("GET", "/healthzfoo"), ("POST", "/healthz")])
def test_exemption_is_segment_and_method_aware(gateway: Gateway, method: str, target: str) -> None:
    resp = gateway.send(method, target, body=b"" if method == "POST" else None)
    expect_deny(resp, 403, "bundle_route_missing", presented=False, gateway=gateway)

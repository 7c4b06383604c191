"""Options that change the wire: forward_credentials and transcript_scheme (one gateway with both)."""

from __future__ import annotations

import pytest

import harness
import tpsign
from harness import Gateway, expect_allow, expect_deny, header_values

PLUGIN_CONFIG = harness.base_plugin_config(forward_credentials=True, transcript_scheme="https")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_credentials_forwarded_when_configured(gateway: Gateway, method: str) -> None:
    # transcript_scheme https: a TLS-terminating front proxy's view, signed as https.
    if method == "POST":
        req = tpsign.sign("POST", f"https://{gateway.authority}/v1/orders", b'{"a":1}', {"Content-Type": "application/json"})
    else:
        req = tpsign.sign("GET", f"https://{gateway.authority}/v1/orders/3", headers={"Accept": "application/json"})
    seen = expect_allow(gateway.send_signed(req), jti=req["jti"], route_id=tpsign.default_route_id(method, req["target"]),
                        forwarded_credentials=True)
    for name, value in req["headers"].items():
        assert header_values(seen, name.lower()) == [value], (name, seen["headers"])


def test_plain_http_transcript_rejected_when_scheme_is_configured(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/7"))
    expect_deny(gateway.send_signed(req), 401, "request_binding_mismatch", presented=True, gateway=gateway)


def test_spoofed_identity_still_stripped(gateway: Gateway) -> None:
    spoofed = [(name, "spoofed") for name in harness.IDENTITY_HEADERS + harness.DECISION_HEADERS]
    req = tpsign.sign("GET", f"https://{gateway.authority}/v1/orders/7")
    expect_allow(gateway.send_signed(req, extra=spoofed), jti=req["jti"], route_id="orders.get",
                 forwarded_credentials=True)
    resp = gateway.send("GET", "/healthz", spoofed)
    assert resp.status == 200
    for name in harness.IDENTITY_HEADERS + harness.DECISION_HEADERS:
        assert header_values(resp.json(), name) == [], resp.json()["headers"]

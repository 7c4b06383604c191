"""Request binding: anything changed after signing is denied with its exact reason.

Also the route and body steps (403 bundle_route_missing, 413 body_too_large).
"""

from __future__ import annotations

import hashlib

import pytest

import tpsign
from harness import Gateway, expect_allow, expect_deny

BODY = b'{"order_id":"ord_123","amount":"42.00"}'
JSON = {"Content-Type": "application/json"}
SHAPES = ["get", "post"]  # decided on headers alone / decided at the end of the body


def _post(gateway: Gateway, **kwargs: object) -> dict:
    return tpsign.sign("POST", gateway.url("/v1/orders?b=2&a=1"), BODY, JSON, **kwargs)


def _signed(gateway: Gateway, shape: str) -> tuple[dict, str]:
    """A signed request of the given shape and the name of a header it signed."""
    if shape == "post":
        return _post(gateway), "Content-Type"
    return tpsign.sign("GET", gateway.url("/v1/orders/7?b=2&a=1"), headers={"Accept": "application/json"}), "Accept"


def _mismatch(gateway: Gateway, req: dict, **tamper: object) -> None:
    expect_deny(gateway.send_signed(req, **tamper), 401, "request_binding_mismatch", presented=True, gateway=gateway)


@pytest.mark.parametrize("shape", SHAPES)
def test_untampered_control(gateway: Gateway, shape: str) -> None:
    req, _ = _signed(gateway, shape)
    expect_allow(gateway.send_signed(req), jti=req["jti"], route_id="orders.create" if shape == "post" else "orders.get")


def test_method_changed(gateway: Gateway) -> None:
    # Signed as POST for the route the gateway resolves for GET /v1/orders/7, then sent as GET.
    req = tpsign.sign("POST", gateway.url("/v1/orders/7"), route_id="orders.get")
    _mismatch(gateway, req, method="GET", body=b"")


def test_path_changed_within_template(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/7"))
    _mismatch(gateway, req, target="/v1/orders/8")


@pytest.mark.parametrize("shape", SHAPES)
def test_query_changed(gateway: Gateway, shape: str) -> None:
    req, _ = _signed(gateway, shape)
    _mismatch(gateway, req, target=req["target"].replace("b=2", "b=3"))


def test_query_added(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/7"))
    _mismatch(gateway, req, target="/v1/orders/7?admin=1")


@pytest.mark.parametrize("shape", SHAPES)
def test_signed_header_value_changed(gateway: Gateway, shape: str) -> None:
    req, header = _signed(gateway, shape)
    _mismatch(gateway, req, replace={header: "text/plain"})


def test_body_changed_same_length(gateway: Gateway) -> None:
    tampered = BODY.replace(b"42.00", b"99.00")
    assert len(tampered) == len(BODY)
    _mismatch(gateway, _post(gateway), body=tampered)


def test_denied_body_request_never_starts_an_upstream_request(gateway: Gateway) -> None:
    # The decision on a body needs the whole body; the upstream must not see even the headers first.
    warm = _post(gateway)
    expect_allow(gateway.send_signed(warm), jti=warm["jti"], route_id="orders.create")  # warm the pool
    before = gateway.stats()["cluster.upstream.upstream_rq_total"]
    _mismatch(gateway, _post(gateway), body=BODY.replace(b"42.00", b"99.00"))
    assert gateway.stats()["cluster.upstream.upstream_rq_total"] == before, "upstream request started before the decision"


@pytest.mark.parametrize("shape", SHAPES)
def test_body_sha_header_changed(gateway: Gateway, shape: str) -> None:
    req, _ = _signed(gateway, shape)
    _mismatch(gateway, req, replace={"X-TrustPlane-Body-SHA256": hashlib.sha256(b"other").hexdigest()})


@pytest.mark.parametrize("shape", SHAPES)
def test_nonce_changed(gateway: Gateway, shape: str) -> None:
    _mismatch(gateway, _signed(gateway, shape)[0], replace={"X-TrustPlane-Nonce": "0" * 32})


def test_authority_changed(gateway: Gateway) -> None:
    req = tpsign.sign("GET", f"http://localhost:{gateway.port}/v1/orders/7")
    _mismatch(gateway, req)  # sent with Host 127.0.0.1:port


def test_scheme_differs_from_listener(gateway: Gateway) -> None:
    # Plain-HTTP listener: :scheme is http and no transcript_scheme is configured.
    req = tpsign.sign("GET", f"https://{gateway.authority}/v1/orders/7")
    _mismatch(gateway, req)


def test_unsigned_header_from_allow_list_added(gateway: Gateway) -> None:
    # `accept` is in signed_headers: present on the request means covered by the transcript.
    req = tpsign.sign("GET", gateway.url("/v1/orders/7"))
    _mismatch(gateway, req, extra=[("Accept", "application/json")])


def test_client_signs_header_gateway_does_not_list(gateway: Gateway) -> None:
    # The allow list is not on the wire: the gateway uses signed_headers present on the request.
    req = tpsign.sign("GET", gateway.url("/v1/orders/7"), headers={"X-Custom": "1"})
    _mismatch(gateway, req)


@pytest.mark.parametrize("shape", SHAPES)
def test_transplanted_digest_and_proof(gateway: Gateway, shape: str) -> None:
    # A consistent digest+proof pair from another request: the proof verifies, the binding does not.
    req, other = _signed(gateway, shape)[0], tpsign.sign("GET", gateway.url("/v1/orders/8"))
    _mismatch(gateway, req, replace={
        "X-TrustPlane-Transcript-SHA256": other["headers"]["X-TrustPlane-Transcript-SHA256"],
        "X-TrustPlane-Proof": other["headers"]["X-TrustPlane-Proof"],
    })


@pytest.mark.parametrize("shape", SHAPES)
def test_proof_replaced_by_other_valid_signature(gateway: Gateway, shape: str) -> None:
    req, other = _signed(gateway, shape)[0], _signed(gateway, shape)[0]
    resp = gateway.send_signed(req, replace={"X-TrustPlane-Proof": other["headers"]["X-TrustPlane-Proof"]})
    expect_deny(resp, 401, "invalid_request_proof", presented=True, gateway=gateway)


@pytest.mark.parametrize("shape", SHAPES)
def test_proof_malformed(gateway: Gateway, shape: str) -> None:
    resp = gateway.send_signed(_signed(gateway, shape)[0], replace={"X-TrustPlane-Proof": "not-a-signature"})
    expect_deny(resp, 401, "invalid_request_proof", presented=True, gateway=gateway)


@pytest.mark.parametrize("shape", SHAPES)
def test_digest_header_malformed(gateway: Gateway, shape: str) -> None:
    req, _ = _signed(gateway, shape)
    upper = req["headers"]["X-TrustPlane-Transcript-SHA256"].upper()
    resp = gateway.send_signed(req, replace={"X-TrustPlane-Transcript-SHA256": upper})
    expect_deny(resp, 401, "invalid_request_proof", presented=True, gateway=gateway)


@pytest.mark.parametrize("shape", SHAPES)
def test_proof_header_missing(gateway: Gateway, shape: str) -> None:
    resp = gateway.send_signed(_signed(gateway, shape)[0], drop=["X-TrustPlane-Proof"])
    expect_deny(resp, 401, "missing_request_proof", presented=True, gateway=gateway)


@pytest.mark.parametrize("shape", SHAPES)
def test_digest_header_missing(gateway: Gateway, shape: str) -> None:
    resp = gateway.send_signed(_signed(gateway, shape)[0], drop=["X-TrustPlane-Transcript-SHA256"])
    expect_deny(resp, 401, "missing_request_proof", presented=True, gateway=gateway)


def test_body_too_large(gateway: Gateway) -> None:
    body = b'{"pad":"' + b"x" * 5000 + b'"}'
    req = tpsign.sign("POST", gateway.url("/v1/orders"), body, JSON)
    expect_deny(gateway.send_signed(req), 413, "body_too_large", presented=True, gateway=gateway)


def test_body_at_limit_allowed(gateway: Gateway) -> None:
    body = b'{"pad":"' + b"x" * (4096 - 10) + b'"}'
    assert len(body) == 4096
    req = tpsign.sign("POST", gateway.url("/v1/orders"), body, JSON)
    expect_allow(gateway.send_signed(req), jti=req["jti"], route_id="orders.create")


def test_unknown_route_signed(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/customers/1"), route_id="customers.get")
    expect_deny(gateway.send_signed(req), 403, "bundle_route_missing", presented=True, gateway=gateway)


def test_unknown_route_without_credentials(gateway: Gateway) -> None:
    expect_deny(gateway.send("DELETE", "/v1/orders/7"), 403, "bundle_route_missing", presented=False, gateway=gateway)

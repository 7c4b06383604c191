"""routing mode "route-id": one configured route for every request, with and without a bundle.
With a bundle the route's policy and audience apply whatever the path; without one every
trust-material issuer is an allowed source and `required_key_binding` is the only minimum."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

import harness
import tpsign
from harness import Gateway, expect_allow, expect_deny
from passports import expect_allowed_as

WITH_BUNDLE = harness.base_plugin_config(routing={"mode": "route-id", "route_id": "orders.create"})
WITHOUT_BUNDLE = {k: v for k, v in harness.base_plugin_config(
    routing={"mode": "route-id", "route_id": "gateway.any"}).items() if k != "policy_bundle"}


@pytest.fixture(scope="module")
def with_bundle(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from harness.serve(WITH_BUNDLE, tmp_path_factory.mktemp("route_id_bundle"))


@pytest.fixture(scope="module")
def without_bundle(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from harness.serve(WITHOUT_BUNDLE, tmp_path_factory.mktemp("route_id_no_bundle"))


def test_configured_route_applies_to_any_path(with_bundle: Gateway) -> None:
    # The path is not a bundle template at all; the configured route decides.
    req = tpsign.sign("GET", with_bundle.url("/anything/at/all?x=1"), route_id="orders.create")
    expect_allow(with_bundle.send_signed(req), jti=req["jti"], route_id="orders.create")
    # A caller that signed another route id fails the binding.
    other = tpsign.sign("GET", with_bundle.url("/anything"), route_id="orders.get")
    expect_deny(with_bundle.send_signed(other), 401, "request_binding_mismatch", presented=True, gateway=with_bundle)
    # The bundle route's sources still apply.
    stranger = tpsign.sign("GET", with_bundle.url("/anything"), route_id="orders.create", subject="external:jwks:stranger")
    expect_deny(with_bundle.send_signed(stranger), 403, "source_subject_mismatch", presented=True, gateway=with_bundle)


def test_without_bundle_every_trusted_issuer_is_a_source(without_bundle: Gateway) -> None:
    req = tpsign.sign("POST", without_bundle.url("/v2/whatever"), b'{"n":1}', {"Content-Type": "application/json"},
                      route_id="gateway.any", subject="external:jwks:anyone")
    expect_allowed_as(without_bundle.send_signed(req), req, "gateway.any", subject="external:jwks:anyone")
    wrong_aud = tpsign.sign("GET", without_bundle.url("/v2/x"), route_id="gateway.any", audience="billing-api")
    expect_deny(without_bundle.send_signed(wrong_aud), 403, "audience_mismatch", presented=True, gateway=without_bundle)
    expect_deny(without_bundle.send("GET", "/v2/x"), 401, "missing_passport", presented=False, gateway=without_bundle)

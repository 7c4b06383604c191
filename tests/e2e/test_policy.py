"""Route policy from a trustplane-bundle-v1 (issue 3), through real Envoy: allowed sources by
issuer, trust domain and subject; signer-class minimums (route, source, bundle default, top
level); context and provenance policies; revocations of each kind. Each denial is asserted with
its exact reason, status and response contract, and never reaches the upstream.

The module gateway carries one bundle with a route per rule; the classes at the end start their
own gateway for the bundle-wide settings (default signer class, top-level minimum, bundle-level
provenance policy), which would otherwise apply to every route here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import harness
import tpsign
from harness import ISSUER, SUBJECT, Gateway, expect_allow, expect_deny
from passports import bundle, expect_allowed_as, route, sign_bound, source

PARTNER = "https://issuer.example/partner-jwks"   # a second trust-material issuer
PARTNER_TD = "example.partner"
PARTNER_KEY = tpsign.key_from_seed(bytes(range(1, 33)))
OLD_PARTNER_KEY = tpsign.key_from_seed(bytes(range(2, 34)))  # its kid is revoked in the bundle

REVOKED_JTI = "jti-revoked-0001"
CUTOFF_SUBJECT = "external:jwks:cutoff-caller"
# Passports of CUTOFF_SUBJECT issued before this are revoked. Set when the gateway starts (see
# `_plugin_config`), so that a passport issued just before it is still unexpired when the test
# runs however long the modules before this one took.
CUTOFF = int(time.time()) - 120

CTX_OK = {"tool_name": "refund", "workflow_id": "wf-42", "max_txn_value": "99.99"}
PROV_OK = {"profile": "spiffe-svid-v1", "spiffe_trust_domain": "prod.example", "posture": "managed"}
JSON = {"Content-Type": "application/json"}


def _plugin_config() -> dict[str, Any]:
    global CUTOFF
    CUTOFF = int(time.time()) - 120
    routes = [
        # The demo caller and its siblings: prefix "external:jwks:".
        route("orders.get", "GET", "/v1/orders/{order_id}",
              sources=[source(subject_prefix="external:jwks:")]),
        # Only the partner issuer's trust domain is allowed, for both issuers.
        route("partner.get", "GET", "/v1/partner/{id}", sources=[
            source(ISSUER, PARTNER_TD, subject_prefix="external:"),
            source(PARTNER, PARTNER_TD, subject_prefix="partner:"),
        ]),
        # Agents must state their context; the demo caller needs no context (second candidate).
        route("agents.run", "POST", "/v1/agents/run", sources=[
            source(subject_prefix="agent:", context_policy={
                "required_tool_name": "refund", "required_workflow_id": "wf-42", "max_txn_value": "100.00"}),
            source(subject_exact=SUBJECT),
        ]),
        route("attest.get", "GET", "/v1/attest/{id}", sources=[
            source(subject_prefix="workload:", provenance_policy={
                "profile": "spiffe-svid-v1", "required_spiffe_trust_domain": "prod.example",
                "required_posture": "managed"}),
        ]),
        # Signer class: the route asks for hardware_local, its source only software.
        route("keys.rotate", "POST", "/v1/keys/rotate", required_key_binding="hardware_local"),
        # Signer class: the route asks for software, its source for remote_kms.
        route("keys.list", "GET", "/v1/keys", sources=[source(required_key_binding="remote_kms")]),
    ]
    config = harness.base_plugin_config(policy_bundle=bundle(routes, revocations=[
        {"jti": REVOKED_JTI},
        {"sub": CUTOFF_SUBJECT, "not_before": CUTOFF},
        {"issuer": PARTNER, "kid": "partner-old"},
    ]))
    config["trust_material"]["issuers"].append({
        "issuer": PARTNER,  # no trust_domain pinned: the bundle's sources decide
        "keys": [
            {"kid": "partner-1", "alg": "EdDSA", "public_key_b64url": tpsign.public_key_b64url(PARTNER_KEY)},
            {"kid": "partner-old", "alg": "EdDSA", "public_key_b64url": tpsign.public_key_b64url(OLD_PARTNER_KEY)},
        ],
    })
    return config


PLUGIN_CONFIG = _plugin_config


def _deny(gateway: Gateway, req: dict[str, Any], reason: str, status: int = 403) -> str:
    return expect_deny(gateway.send_signed(req), status, reason, presented=True, gateway=gateway)


def _partner(gateway: Gateway, path: str, *, kid: str = "partner-1", **kwargs: Any) -> dict[str, Any]:
    """A GET signed by the partner issuer (subject partner:acme in example.partner by default)."""
    key = OLD_PARTNER_KEY if kid == "partner-old" else PARTNER_KEY
    route_id = "orders.get" if path.startswith("/v1/orders/") else "partner.get"
    claims = {"subject": "partner:acme", "trust_domain": PARTNER_TD, **kwargs}
    return tpsign.sign("GET", gateway.url(path), route_id=route_id, issuer=PARTNER, kid=kid, key=key, **claims)


# ---------------------------------------------------------------------------------------------
# Allowed sources: issuer, then trust domain, then subject


def test_demo_caller_allowed(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/1"))
    expect_allow(gateway.send_signed(req), jti=req["jti"], route_id="orders.get")


def test_sibling_subject_allowed_by_prefix(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/2"), subject="external:jwks:other-caller")
    expect_allowed_as(gateway.send_signed(req), req, "orders.get", subject="external:jwks:other-caller")


def test_trusted_issuer_not_a_source_of_the_route(gateway: Gateway) -> None:
    # PARTNER is in trust_material (its signature verifies) but not among orders.get's sources.
    _deny(gateway, _partner(gateway, "/v1/orders/3"), "source_issuer_mismatch")


def test_partner_allowed_where_it_is_a_source(gateway: Gateway) -> None:
    req = _partner(gateway, "/v1/partner/1")
    expect_allowed_as(gateway.send_signed(req), req, "partner.get", subject="partner:acme",
                      issuer=PARTNER, trust_domain=PARTNER_TD)


def test_issuer_matches_but_trust_domain_does_not(gateway: Gateway) -> None:
    # The demo caller's passport (example.external) passes the identity step (its issuer pins
    # example.external), but partner.get's source for that issuer wants example.partner.
    req = tpsign.sign("GET", gateway.url("/v1/partner/2"), route_id="partner.get")
    _deny(gateway, req, "source_trust_domain_mismatch")


def test_issuer_and_trust_domain_match_but_subject_does_not(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/4"), subject="internal:batch-job")
    _deny(gateway, req, "source_subject_mismatch")
    req = _partner(gateway, "/v1/partner/3", subject="acme:partner")  # prefix is "partner:"
    _deny(gateway, req, "source_subject_mismatch")


# ---------------------------------------------------------------------------------------------
# Signer class


def test_route_minimum_above_source_minimum(gateway: Gateway) -> None:
    url = gateway.url("/v1/keys/rotate")
    software = tpsign.sign("POST", url, b"{}", JSON, route_id="keys.rotate")
    event_id = _deny(gateway, software, "insufficient_key_binding")
    event = gateway.audit_event(event_id)
    assert (event["key_binding"], event["required_key_binding"]) == ("software", "hardware_local"), event

    remote = sign_bound("POST", url, b"{}", JSON, "keys.rotate", key_binding="remote_kms")
    _deny(gateway, remote, "insufficient_key_binding")
    for cls in ("hardware_local", "attested_workload"):
        req = sign_bound("POST", url, b"{}", JSON, "keys.rotate", key_binding=cls)
        expect_allowed_as(gateway.send_signed(req), req, "keys.rotate", key_binding=cls)


def test_source_minimum_above_route_minimum(gateway: Gateway) -> None:
    url = gateway.url("/v1/keys")
    event_id = _deny(gateway, tpsign.sign("GET", url, route_id="keys.list"), "insufficient_key_binding")
    assert gateway.audit_event(event_id)["required_key_binding"] == "remote_kms"
    req = sign_bound("GET", url, route_id="keys.list", key_binding="remote_kms")
    seen = expect_allowed_as(gateway.send_signed(req), req, "keys.list", key_binding="remote_kms")
    event_id = harness.header_values(seen, "x-trustplane-event-id")[0]
    event = gateway.audit_event(event_id)
    assert (event["key_binding"], event["required_key_binding"]) == ("remote_kms", "remote_kms"), event


def test_proof_must_carry_the_passport_class(gateway: Gateway) -> None:
    # A hardware_local passport whose proof says key_binding=software in the transcript.
    req = sign_bound("GET", gateway.url("/v1/keys"), route_id="keys.list", key_binding="hardware_local",
                     proof_key_binding="software")
    expect_deny(gateway.send_signed(req), 401, "request_binding_mismatch", presented=True, gateway=gateway)


# ---------------------------------------------------------------------------------------------
# Context policy (claim `ctx`)


def _agent(gateway: Gateway, ctx: Any = None, *, subject: str = "agent:refunds") -> dict[str, Any]:
    extra = {} if ctx is None else {"ctx": ctx}
    return tpsign.sign("POST", gateway.url("/v1/agents/run"), b'{"refund":"r-1"}', JSON,
                       route_id="agents.run", subject=subject, extra_claims=extra)


@pytest.mark.parametrize("max_txn_value", ["99.99", "100.00", 100, 100.0, "0", 7])
def test_context_within_policy(gateway: Gateway, max_txn_value: Any) -> None:
    req = _agent(gateway, {**CTX_OK, "max_txn_value": max_txn_value})
    expect_allowed_as(gateway.send_signed(req), req, "agents.run", subject="agent:refunds")


@pytest.mark.parametrize("ctx", [
    None,                                              # no ctx claim
    {"tool_name": "refund", "max_txn_value": "1"},     # workflow_id absent
    {"workflow_id": "wf-42", "max_txn_value": "1"},    # tool_name absent
    {"tool_name": "refund", "workflow_id": "wf-42"},   # max_txn_value absent
    {**CTX_OK, "workflow_id": None},                   # null counts as absent
    "refund",                                          # not an object
], ids=["no_ctx", "no_workflow", "no_tool", "no_value", "null_workflow", "not_object"])
def test_missing_context(gateway: Gateway, ctx: Any) -> None:
    _deny(gateway, _agent(gateway, ctx), "missing_context")


@pytest.mark.parametrize("ctx", [
    {**CTX_OK, "tool_name": "delete"},
    {**CTX_OK, "workflow_id": "wf-43"},
    {**CTX_OK, "max_txn_value": "100.01"},   # above the ceiling
    {**CTX_OK, "max_txn_value": 101},
    {**CTX_OK, "max_txn_value": "ten"},      # malformed
    {**CTX_OK, "max_txn_value": "1e2"},      # not a plain decimal
    {**CTX_OK, "max_txn_value": True},
    {**CTX_OK, "tool_name": ["refund"]},
], ids=["tool", "workflow", "above_string", "above_number", "ten", "exponent", "bool", "tool_array"])
def test_context_mismatch(gateway: Gateway, ctx: Any) -> None:
    _deny(gateway, _agent(gateway, ctx), "context_mismatch")


def test_other_source_without_context_policy(gateway: Gateway) -> None:
    # The demo caller is the route's second source, which has no context policy.
    req = _agent(gateway, subject=SUBJECT)
    expect_allowed_as(gateway.send_signed(req), req, "agents.run")


# ---------------------------------------------------------------------------------------------
# Provenance policy (claim `provenance`)


def _workload(gateway: Gateway, prov: Any = None) -> dict[str, Any]:
    extra = {} if prov is None else {"provenance": prov}
    return tpsign.sign("GET", gateway.url("/v1/attest/9"), route_id="attest.get",
                       subject="workload:payments", extra_claims=extra)


def test_provenance_matches(gateway: Gateway) -> None:
    req = _workload(gateway, PROV_OK)
    expect_allowed_as(gateway.send_signed(req), req, "attest.get", subject="workload:payments")


@pytest.mark.parametrize("prov", [
    None,
    {k: v for k, v in PROV_OK.items() if k != "posture"},
    {k: v for k, v in PROV_OK.items() if k != "spiffe_trust_domain"},
    [PROV_OK],
], ids=["no_claim", "no_posture", "no_spiffe_td", "not_object"])
def test_missing_provenance(gateway: Gateway, prov: Any) -> None:
    _deny(gateway, _workload(gateway, prov), "missing_provenance")


@pytest.mark.parametrize("field,value", [
    ("profile", "spiffe-svid-v2"), ("spiffe_trust_domain", "dev.example"), ("posture", "unmanaged"),
])
def test_provenance_mismatch(gateway: Gateway, field: str, value: str) -> None:
    _deny(gateway, _workload(gateway, {**PROV_OK, field: value}), "provenance_mismatch")


# ---------------------------------------------------------------------------------------------
# Revocations (checked after the passport signature, before identity and policy)


def test_revoked_jti(gateway: Gateway) -> None:
    url = gateway.url("/v1/orders/20")
    event_id = _deny(gateway, tpsign.sign("GET", url, jti=REVOKED_JTI), "revoked", 401)
    assert gateway.audit_event(event_id)["jti"] == REVOKED_JTI
    # Revocation comes before the identity and source checks ...
    _deny(gateway, tpsign.sign("GET", url, jti=REVOKED_JTI, audience="billing-api"), "revoked", 401)
    # ... and after the signature: a forged token naming the jti is a bad signature.
    forged = tpsign.sign("GET", url, jti=REVOKED_JTI, key=PARTNER_KEY)
    _deny(gateway, forged, "invalid_passport_signature", 401)
    # Exact match only.
    req = tpsign.sign("GET", url, jti=REVOKED_JTI + "-b")
    expect_allow(gateway.send_signed(req), jti=req["jti"], route_id="orders.get")


def test_revoked_subject_before_cutoff(gateway: Gateway) -> None:
    url = gateway.url("/v1/orders/21")
    before = tpsign.sign("GET", url, subject=CUTOFF_SUBJECT, now=CUTOFF - 1)
    _deny(gateway, before, "revoked", 401)
    at = tpsign.sign("GET", url, subject=CUTOFF_SUBJECT, now=CUTOFF)  # iat == not_before: kept
    expect_allowed_as(gateway.send_signed(at), at, "orders.get", subject=CUTOFF_SUBJECT)
    fresh = tpsign.sign("GET", url, subject=CUTOFF_SUBJECT)
    expect_allowed_as(gateway.send_signed(fresh), fresh, "orders.get", subject=CUTOFF_SUBJECT)
    other = tpsign.sign("GET", url, now=CUTOFF - 1)  # another subject, same age
    expect_allow(gateway.send_signed(other), jti=other["jti"], route_id="orders.get")


def test_revoked_signing_key(gateway: Gateway) -> None:
    _deny(gateway, _partner(gateway, "/v1/partner/4", kid="partner-old"), "revoked", 401)
    req = _partner(gateway, "/v1/partner/5", kid="partner-1")
    expect_allowed_as(gateway.send_signed(req), req, "partner.get", subject="partner:acme",
                      issuer=PARTNER, trust_domain=PARTNER_TD)


# ---------------------------------------------------------------------------------------------
# Bundle-wide settings: each class has its own gateway (module-scoped, started on first use).


def _own_gateway(config: dict[str, Any], name: str,
                 factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from harness.serve(config, factory.mktemp(name))


@pytest.fixture(scope="module")
def bundle_default_gw(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = harness.base_plugin_config()
    config["policy_bundle"]["default_required_key_binding"] = "remote_kms"
    yield from _own_gateway(config, "bundle_default_minimum", tmp_path_factory)


@pytest.fixture(scope="module")
def top_level_gw(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = harness.base_plugin_config(required_key_binding="hardware_local")
    config["policy_bundle"]["default_required_key_binding"] = "remote_kms"
    yield from _own_gateway(config, "top_level_minimum", tmp_path_factory)


@pytest.fixture(scope="module")
def bundle_provenance_gw(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = harness.base_plugin_config()
    config["policy_bundle"]["provenance_policy"] = {"profile": "spiffe-svid-v1"}
    create = config["policy_bundle"]["route_groups"][0]["routes"][0]
    assert create["route_id"] == "orders.create"
    create["allowed_sources"][0]["provenance_policy"] = {"required_posture": "managed"}
    yield from _own_gateway(config, "bundle_provenance", tmp_path_factory)


class TestBundleDefaultMinimum:
    """`default_required_key_binding: remote_kms` raises every route that says `software`."""

    @pytest.fixture
    def gw(self, bundle_default_gw: Gateway) -> Gateway:
        return bundle_default_gw

    def test_software_below_bundle_default(self, gw: Gateway) -> None:
        event_id = _deny(gw, tpsign.sign("GET", gw.url("/v1/orders/1")), "insufficient_key_binding")
        assert gw.audit_event(event_id)["required_key_binding"] == "remote_kms"

    def test_remote_kms_meets_it(self, gw: Gateway) -> None:
        req = sign_bound("GET", gw.url("/v1/orders/2"), key_binding="remote_kms")
        expect_allowed_as(gw.send_signed(req), req, "orders.get", key_binding="remote_kms")


class TestTopLevelMinimum:
    """Top-level `required_key_binding: hardware_local` beats a weaker bundle default."""

    @pytest.fixture
    def gw(self, top_level_gw: Gateway) -> Gateway:
        return top_level_gw

    def test_remote_kms_below_top_level(self, gw: Gateway) -> None:
        req = sign_bound("GET", gw.url("/v1/orders/1"), key_binding="remote_kms")
        event_id = _deny(gw, req, "insufficient_key_binding")
        event = gw.audit_event(event_id)
        assert (event["key_binding"], event["required_key_binding"]) == ("remote_kms", "hardware_local"), event

    def test_hardware_local_meets_it(self, gw: Gateway) -> None:
        req = sign_bound("GET", gw.url("/v1/orders/2"), key_binding="hardware_local")
        expect_allowed_as(gw.send_signed(req), req, "orders.get", key_binding="hardware_local")


class TestBundleProvenancePolicy:
    """A bundle-level provenance policy applies to every source, on top of a source's own."""

    @pytest.fixture
    def gw(self, bundle_provenance_gw: Gateway) -> Gateway:
        return bundle_provenance_gw

    def _create(self, gw: Gateway, prov: Any = None) -> dict[str, Any]:
        extra = {} if prov is None else {"provenance": prov}
        return tpsign.sign("POST", gw.url("/v1/orders"), b"{}", JSON, extra_claims=extra)

    def test_route_without_own_policy_needs_bundle_profile(self, gw: Gateway) -> None:
        _deny(gw, tpsign.sign("GET", gw.url("/v1/orders/1")), "missing_provenance")
        _deny(gw, tpsign.sign("GET", gw.url("/v1/orders/1"), extra_claims={"provenance": {"profile": "x"}}),
              "provenance_mismatch")
        req = tpsign.sign("GET", gw.url("/v1/orders/1"), extra_claims={"provenance": {"profile": "spiffe-svid-v1"}})
        expect_allow(gw.send_signed(req), jti=req["jti"], route_id="orders.get")

    def test_both_policies_compose(self, gw: Gateway) -> None:
        _deny(gw, self._create(gw), "missing_provenance")
        _deny(gw, self._create(gw, {"posture": "managed"}), "missing_provenance")           # bundle's profile
        _deny(gw, self._create(gw, {"profile": "spiffe-svid-v1"}), "missing_provenance")    # source's posture
        _deny(gw, self._create(gw, {"profile": "spiffe-svid-v1", "posture": "byod"}), "provenance_mismatch")
        _deny(gw, self._create(gw, {"profile": "other", "posture": "managed"}), "provenance_mismatch")
        req = self._create(gw, {"profile": "spiffe-svid-v1", "posture": "managed"})
        expect_allow(gw.send_signed(req), jti=req["jti"], route_id="orders.create")

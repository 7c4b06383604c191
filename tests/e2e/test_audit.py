"""Audit events (one `proofgate.audit {json}` log line per decision), access-log filter state,
metrics, and no secrets in any log. This module's gateway sees only the requests made here."""

from __future__ import annotations

import re
import time
from typing import Any

import tpsign
from harness import Gateway, expect_allow, expect_deny, header_values

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
REQUIRED = ("version", "occurred_at", "component", "outcome", "accepted", "reason_code", "detail_reason")


def _check_common(event: dict[str, Any]) -> None:
    for field in REQUIRED:
        assert field in event, f"audit event lacks {field}: {event}"
    assert event["version"] == "trustplane-auth-audit-event-v0.1", event
    assert RFC3339_UTC.match(event["occurred_at"]), event
    assert event["component"] == "adapter", event
    assert isinstance(event["detail_reason"], str), event


def test_one_audit_event_per_decision(gateway: Gateway) -> None:
    already = len(gateway.audit_events())
    secrets: list[str] = []
    decisions: list[tuple[str, str]] = []  # (event_id, reason)

    allowed = tpsign.sign("GET", gateway.url("/v1/orders/5"), headers={"Accept": "application/json"})
    seen = expect_allow(gateway.send_signed(allowed), jti=allowed["jti"], route_id="orders.get")
    allow_id = header_values(seen, "x-trustplane-event-id")[0]
    decisions.append((allow_id, "allowed"))
    secrets += [allowed["passport"], allowed["headers"]["X-TrustPlane-Proof"]]

    decisions.append((expect_deny(gateway.send("GET", "/v1/orders/7"), 401, "missing_passport", presented=False),
                      "missing_passport"))
    expired = tpsign.sign("GET", gateway.url("/v1/orders/7"), now=time.time() - 700)
    decisions.append((expect_deny(gateway.send_signed(expired), 401, "passport_expired", presented=True),
                      "passport_expired"))
    tampered = tpsign.sign("GET", gateway.url("/v1/orders/7"))
    decisions.append((expect_deny(gateway.send_signed(tampered, target="/v1/orders/8"), 401,
                                  "request_binding_mismatch", presented=True), "request_binding_mismatch"))
    decisions.append((expect_deny(gateway.send("GET", "/v1/nowhere"), 403, "bundle_route_missing", presented=False),
                      "bundle_route_missing"))
    secrets += [expired["passport"], tampered["passport"], tampered["headers"]["X-TrustPlane-Proof"],
                expired["headers"]["X-TrustPlane-Proof"]]

    for event_id, reason in decisions:
        event = gateway.audit_event(event_id)
        _check_common(event)
        if reason == "allowed":
            assert (event["outcome"], event["accepted"], event["reason_code"]) == ("allow", True, "allowed"), event
            for key, want in (("route_id", "orders.get"), ("audience", "orders-api"),
                              ("issuer", tpsign.DEFAULTS["issuer"]), ("subject", tpsign.DEFAULTS["subject"]),
                              ("jti", allowed["jti"]), ("key_binding", "software"),
                              ("transcript_sha256", allowed["transcript_sha256"])):
                if key in event:
                    assert event[key] == want, (key, event)
            request_id = header_values(seen, "x-request-id")
            if "request_id" in event:
                assert [event["request_id"]] == request_id, event
        else:
            assert (event["outcome"], event["accepted"], event["reason_code"]) == ("deny", False, reason), event

    events = gateway.audit_events()[already:]
    assert len(events) == len(decisions), f"{len(events)} audit lines for {len(decisions)} decisions: {events}"

    logs = gateway.log_text() + "\n".join(gateway.access_log_lines())
    for secret in secrets:
        for piece in secret.split(".")[-2:]:  # a token's claims or signature, or a whole proof
            assert piece not in logs, "a token/proof leaked into envoy.log or the access log"
    assert tpsign.b64url(tpsign.TEST_KEY_SEED) not in logs and tpsign.TEST_KEY_SEED.hex() not in logs


def test_access_log_has_decision_filter_state(gateway: Gateway) -> None:
    expect_deny(gateway.send("GET", "/v1/orders/9"), 401, "missing_passport", presented=False)
    req = tpsign.sign("GET", gateway.url("/v1/orders/10"))
    expect_allow(gateway.send_signed(req), jti=req["jti"], route_id="orders.get")
    def both() -> list[str] | None:
        lines = [l for l in gateway.access_log_lines() if '/v1/orders/9"' in l or '/v1/orders/10"' in l]
        return lines if len(lines) == 2 else None

    lines = gateway.wait_for(both, what="two access log lines")
    deny_line = next(l for l in lines if '/v1/orders/9"' in l)
    allow_line = next(l for l in lines if '/v1/orders/10"' in l)
    assert " 401 deny missing_passport " in deny_line, deny_line
    assert " 200 allow allowed " in allow_line, allow_line


def test_metrics_exported(gateway: Gateway) -> None:
    custom = {k: v for k, v in gateway.stats().items() if k.startswith("wasmcustom.")}
    assert custom, "no wasmcustom.* stats from proofgate"
    assert sum(custom.values()) > 0, custom

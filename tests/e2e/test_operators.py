"""What an Envoy operator sees of proofgate's decisions (issue 3): exact counters in admin
/stats and /stats/prometheus after known traffic, replay-store pressure (refusals of a full store, the live
entries gauge), access-log lines built from proofgate's filter state, audit events with every
optional field that applies, and `audit.log_allow: false`.

How Envoy 1.40 renders proxy-wasm metrics (asserted below):
- /stats: the metric name under the `wasmcustom.` prefix, dots kept:
  `wasmcustom.proofgate.deny.missing_passport: 2`;
- /stats/prometheus: the `wasmcustom.` prefix dropped, no `envoy_` prefix, dots as underscores,
  no tags: `proofgate_deny_missing_passport{} 2`, typed `counter` or `gauge`.
The counters are Envoy stats shared by every VM of the plugin, so they sum both workers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest

import harness
import tpsign
from harness import ISSUER, SUBJECT, Gateway, expect_allow, expect_deny, header_values

POLICY_VERSION = "2026-11-23.7"
P = "wasmcustom.proofgate."
REASONS = sorted(harness.STATUS_BY_REASON) + ["internal_error"]
COUNTERS = ["decisions.allow", "decisions.deny", "decisions.exempt", "replay.cas_retries",
            "replay.refused_store_full", "replay.share_full", "config.loads", "config.rejections",
            "audit.suppressed",
            *(f"deny.{r}" for r in REASONS)]
GAUGES = ["replay.entries", "vm.memory_bytes", "vm.count", "parked_requests"]
# Counts timer ticks: moves with time, not traffic (checked in test_operations.py).
TICKS = "vm.ticks"
# One on_configure per wasm VM: Envoy's configuration-check VM, the main thread's and one per
# worker (the harness runs --concurrency 2).
CONFIG_LOADS = 4
REQUIRED_AUDIT = {"version", "occurred_at", "component", "outcome", "accepted", "reason_code",
                  "detail_reason", "event_id"}

ACCESS_LINE = re.compile(
    r'^\[(?P<start>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+)" (?P<code>\d+) (?P<decision>\S+) '
    r"(?P<reason>\S+) (?P<request_id>\S+) route=(?P<route>\S+) subject=(?P<subject>\S+) "
    r"issuer=(?P<issuer>\S+) event=(?P<event>\S+)$")


def _own_gateway(config: dict[str, Any], name: str,
                 factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from harness.serve(config, factory.mktemp(name))


def _proofgate_stats(gw: Gateway) -> dict[str, int]:
    return {k[len(P):]: v for k, v in gw.stats().items() if k.startswith(P)}


def _prometheus(gw: Gateway) -> tuple[dict[str, int], dict[str, str]]:
    """proofgate's samples and TYPE lines from /stats/prometheus."""
    status, body = harness._http_get(f"{gw.admin_url}/stats/prometheus")
    assert status == 200
    samples: dict[str, int] = {}
    types: dict[str, str] = {}
    for line in body.decode().splitlines():
        if m := re.match(r"^# TYPE (proofgate_\S+) (\w+)$", line):
            types[m.group(1)] = m.group(2)
        elif m := re.match(r"^(proofgate_\S+?)(\{[^}]*\})? (\d+)$", line):
            assert m.group(2) == "{}", f"proofgate sample with tags: {line}"
            samples[m.group(1)] = int(m.group(3))
    return samples, types


def _access_line(gw: Gateway, path: str, code: str | None = None) -> dict[str, str]:
    """The one access-log line for `path` (and response `code`, when given)."""
    def probe() -> list[dict[str, str]]:
        found = []
        for line in gw.access_log_lines():
            m = ACCESS_LINE.match(line)
            assert m, f"access log line does not parse: {line!r}"
            if m.group("path") == path and code in (None, m.group("code")):
                found.append(m.groupdict())
        return found
    lines = gw.wait_for(probe, what=f"access log line for {path} {code or ''}")
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Known traffic to a fresh gateway


@pytest.fixture(scope="module")
def counted(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = harness.base_plugin_config()
    config["policy_bundle"]["policy_version"] = POLICY_VERSION
    yield from _own_gateway(config, "counted", tmp_path_factory)


@pytest.fixture(scope="module")
def traffic(counted: Gateway) -> dict[str, Any]:
    """3 allows, 2 missing_passport, 1 jti_replay, 1 source_subject_mismatch, 1 exempt: the only
    requests this gateway ever sees."""
    gw = counted
    before = _proofgate_stats(gw)
    assert {n: before[n] for n in COUNTERS} == {n: CONFIG_LOADS if n == "config.loads" else 0 for n in COUNTERS}
    out: dict[str, Any] = {}
    a1 = tpsign.sign("GET", gw.url("/v1/orders/101"), headers={"Accept": "application/json"})
    a2 = tpsign.sign("GET", gw.url("/v1/orders/102"))
    a3 = tpsign.sign("POST", gw.url("/v1/orders?x=1"), b'{"n":3}', {"Content-Type": "application/json"})
    out["allow"] = (a1, expect_allow(gw.send_signed(a1), jti=a1["jti"], route_id="orders.get"))
    expect_allow(gw.send_signed(a2), jti=a2["jti"], route_id="orders.get")
    expect_allow(gw.send_signed(a3), jti=a3["jti"], route_id="orders.create")
    out["missing"] = expect_deny(gw.send("GET", "/v1/orders/103"), 401, "missing_passport", presented=False)
    expect_deny(gw.send("GET", "/v1/orders/104"), 401, "missing_passport", presented=False)
    out["replay"] = (a1, expect_deny(gw.send_signed(a1), 401, "jti_replay", presented=True))
    intruder = tpsign.sign("GET", gw.url("/v1/orders/105"), subject="internal:intruder")
    out["subject"] = (intruder, expect_deny(gw.send_signed(intruder), 403, "source_subject_mismatch",
                                            presented=True))
    exempt = gw.send("GET", "/healthz/ready")
    assert exempt.status == 200 and exempt.header("x-trustplane-decision") is None, harness.describe(exempt)
    out["exempt"] = exempt.json()
    return out


def test_exact_counters_in_admin_stats(counted: Gateway, traffic: dict[str, Any]) -> None:
    stats = _proofgate_stats(counted)
    assert sorted(stats) == sorted(COUNTERS + GAUGES + [TICKS]), \
        sorted(set(stats) ^ set(COUNTERS + GAUGES + [TICKS]))
    expected = {name: 0 for name in COUNTERS}
    expected.update({
        "decisions.allow": 3, "decisions.deny": 4, "decisions.exempt": 1,
        "deny.missing_passport": 2, "deny.jti_replay": 1, "deny.source_subject_mismatch": 1,
        "config.loads": CONFIG_LOADS,
    })
    assert {name: stats[name] for name in COUNTERS} == expected
    assert stats["vm.memory_bytes"] > 0, stats
    assert stats["parked_requests"] == 0, stats


def test_prometheus_rendering(counted: Gateway, traffic: dict[str, Any]) -> None:
    stats = _proofgate_stats(counted)
    samples, types = _prometheus(counted)
    want = {"proofgate_" + name.replace(".", "_"): stats[name] for name in COUNTERS + GAUGES + [TICKS]}
    # Gauges and the tick counter move on the tick; compare them by presence and type only.
    for name in GAUGES + [TICKS]:
        key = "proofgate_" + name.replace(".", "_")
        assert key in samples, sorted(samples)
        samples[key] = want[key]
    assert samples == want
    gauges = {"proofgate_" + name.replace(".", "_") for name in GAUGES}
    assert types == {k: "gauge" if k in gauges else "counter" for k in want}
    assert samples["proofgate_decisions_allow"] == 3 and samples["proofgate_deny_missing_passport"] == 2


def test_access_log_allow_line(counted: Gateway, traffic: dict[str, Any]) -> None:
    req, seen = traffic["allow"]
    line = _access_line(counted, "/v1/orders/101", "200")
    assert (line["method"], line["code"], line["decision"], line["reason"]) == ("GET", "200", "allow", "allowed")
    assert (line["route"], line["subject"], line["issuer"]) == ("orders.get", SUBJECT, ISSUER)
    assert [line["event"]] == header_values(seen, "x-trustplane-event-id")
    assert [line["request_id"]] == header_values(seen, "x-request-id")


def test_access_log_deny_lines(counted: Gateway, traffic: dict[str, Any]) -> None:
    line = _access_line(counted, "/v1/orders/103")
    assert (line["code"], line["decision"], line["reason"]) == ("401", "deny", "missing_passport")
    assert (line["route"], line["subject"], line["issuer"], line["event"]) == ("orders.get", "-", "-", traffic["missing"])

    intruder, event_id = traffic["subject"]
    line = _access_line(counted, "/v1/orders/105")
    assert (line["code"], line["decision"], line["reason"]) == ("403", "deny", "source_subject_mismatch")
    assert (line["route"], line["subject"], line["issuer"], line["event"]) == (
        "orders.get", "internal:intruder", ISSUER, event_id)

    _, event_id = traffic["replay"]
    line = _access_line(counted, "/v1/orders/101", "401")
    assert (line["decision"], line["reason"], line["route"], line["subject"], line["event"]) == (
        "deny", "jti_replay", "orders.get", SUBJECT, event_id)

    line = _access_line(counted, "/healthz/ready")
    assert (line["code"], line["decision"], line["reason"], line["route"], line["subject"]) == (
        "200", "allow", "allowed", "-", "-")
    assert harness.EVENT_ID_RE.match(line["event"]), line


def _audit(gw: Gateway, event_id: str, keys: set[str]) -> dict[str, Any]:
    event = gw.audit_event(event_id)
    assert set(event) == REQUIRED_AUDIT | keys, sorted(set(event) ^ (REQUIRED_AUDIT | keys))
    assert event["policy_version"] == POLICY_VERSION, event
    return event


def test_audit_optional_fields(counted: Gateway, traffic: dict[str, Any]) -> None:
    caller = {"issuer": ISSUER, "subject": SUBJECT, "key_binding": "software", "required_key_binding": "software",
              "route_id": "orders.get", "audience": "orders-api"}

    req, seen = traffic["allow"]
    event = _audit(counted, header_values(seen, "x-trustplane-event-id")[0],
                   {*caller, "jti", "transcript_sha256", "request_id", "policy_version"})
    assert (event["outcome"], event["accepted"], event["reason_code"], event["detail_reason"]) == (
        "allow", True, "allowed", "verified")
    assert {k: event[k] for k in caller} == caller
    assert (event["jti"], event["transcript_sha256"]) == (req["jti"], req["transcript_sha256"])
    assert [event["request_id"]] == header_values(seen, "x-request-id")

    # The replay was decided after the proof: the digest is known, and the same.
    req, event_id = traffic["replay"]
    event = _audit(counted, event_id, {*caller, "jti", "transcript_sha256", "request_id", "policy_version"})
    assert (event["reason_code"], event["jti"], event["transcript_sha256"]) == (
        "jti_replay", req["jti"], req["transcript_sha256"])

    # Denied by policy, before the proof: the caller is known, the digest is not.
    req, event_id = traffic["subject"]
    event = _audit(counted, event_id, {*caller, "jti", "request_id", "policy_version"})
    assert (event["reason_code"], event["subject"], event["jti"]) == ("source_subject_mismatch", "internal:intruder",
                                                                     req["jti"])

    # No passport: only the route's facts.
    event = _audit(counted, traffic["missing"], {"route_id", "audience", "required_key_binding", "request_id",
                                                 "policy_version"})
    assert (event["route_id"], event["audience"], event["required_key_binding"]) == (
        "orders.get", "orders-api", "software")
    assert [event["request_id"]] == [_access_line(counted, "/v1/orders/103")["request_id"]]

    # Exempt: no route, no caller.
    line = _access_line(counted, "/healthz/ready")
    event = _audit(counted, line["event"], {"request_id", "policy_version"})
    assert (event["outcome"], event["reason_code"], event["detail_reason"]) == ("allow", "allowed", "exempt_route")
    assert [event["request_id"]] == header_values(traffic["exempt"], "x-request-id") == [line["request_id"]]

    assert len(counted.audit_events()) == 8  # one per decision


# ---------------------------------------------------------------------------------------------
# audit.log_allow: false


@pytest.fixture(scope="module")
def quiet(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from _own_gateway(harness.base_plugin_config(audit={"log_allow": False}), "quiet_allows", tmp_path_factory)


def test_log_allow_false_silences_allow_events_only(quiet: Gateway) -> None:
    req = tpsign.sign("GET", quiet.url("/v1/orders/1"))
    seen = expect_allow(quiet.send_signed(req), jti=req["jti"], route_id="orders.get")
    assert quiet.send("GET", "/healthz").status == 200
    deny_id = expect_deny(quiet.send("GET", "/v1/orders/2"), 401, "missing_passport", presented=False)
    quiet.audit_event(deny_id)  # waits until the deny (logged last) is in envoy.log
    assert [e["outcome"] for e in quiet.audit_events()] == ["deny"], quiet.audit_events()
    # Operators still see the allows in the access log and the counters.
    line = _access_line(quiet, "/v1/orders/1")
    assert (line["decision"], [line["event"]]) == ("allow", header_values(seen, "x-trustplane-event-id"))
    stats = _proofgate_stats(quiet)
    assert (stats["decisions.allow"], stats["decisions.exempt"], stats["decisions.deny"]) == (1, 1, 1)


# ---------------------------------------------------------------------------------------------
# Last, so the gauge timer (a full pass over the 65,536 buckets every 32 s) has mostly run while the tests above did.


def test_replay_entries_gauge_counts_consumed_jtis(counted: Gateway, traffic: dict[str, Any]) -> None:
    # Counted by one VM's timer, a full pass every 32 s; the replayed request consumed nothing.
    counted.wait_for(lambda: _proofgate_stats(counted)["replay.entries"] == 3, timeout=40.0,
                     what="replay.entries == 3")

"""Bundle freshness (issue 3), through real Envoy. A bundle's age is the time since proofgate
loaded the configuration; freshness is decided right after the route, before any passport work,
so a request without credentials on a stale route is `stale_bundle_fail_closed`, not
`missing_passport`.

Two gateways: FRESHNESS has a route per class with no bundle defaults and a 2 s realtime window
(the default is 5 s); DEFAULTED inherits `bounded` / 2 s from the bundle's defaults. The expiry
test starts both itself, so each is asked while young, then sleeps once until both are stale.
Ages are whole seconds (the host clock truncated), so "stale after 2 s" is certain 3 s after load.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import harness
import tpsign
from harness import Gateway, expect_allow, expect_deny
from passports import bundle, route

STALE_AFTER_S = 3.2  # > 2 s staleness + 1 s of whole-second rounding

FRESHNESS = harness.base_plugin_config(realtime_window_seconds=2, policy_bundle=bundle([
    route("fresh.realtime", "GET", "/v1/realtime/{id}", freshness_class="realtime"),
    route("fresh.bounded", "GET", "/v1/bounded/{id}", freshness_class="bounded", max_staleness_seconds=2),
    route("fresh.offline", "GET", "/v1/offline/{id}", freshness_class="offline-ok"),
    route("fresh.offline_alias", "GET", "/v1/offline2/{id}", freshness_class="offline_ok"),
    route("fresh.unbounded", "GET", "/v1/unbounded/{id}", freshness_class="bounded"),
    route("fresh.zero", "GET", "/v1/zero/{id}", freshness_class="bounded", max_staleness_seconds=0),
    route("fresh.none", "GET", "/v1/none/{id}", freshness_class=None),
]))
DEFAULTED = harness.base_plugin_config(policy_bundle=bundle([
    route("fresh.inherited", "GET", "/v1/inherited/{id}", freshness_class=None),
    route("fresh.own", "GET", "/v1/own/{id}", freshness_class="offline-ok"),
    # A route's own class without a limit takes the bundle's default limit.
    route("fresh.bounded_default_max", "GET", "/v1/bdm/{id}", freshness_class="bounded"),
], default_freshness_class="bounded", default_max_staleness_seconds=2))
# A route that only tightens the limit keeps it under a lax bundle default.
LAX_DEFAULT = harness.base_plugin_config(policy_bundle=bundle([
    route("fresh.own_limit", "GET", "/v1/own_limit/{id}", freshness_class=None, max_staleness_seconds=2),
    route("fresh.lax", "GET", "/v1/lax/{id}", freshness_class=None),
], default_freshness_class="bounded", default_max_staleness_seconds=3600))
CONFIGS = {"freshness": FRESHNESS, "defaulted": DEFAULTED, "lax": LAX_DEFAULT}

ALWAYS = {"fresh.offline": "/v1/offline/1", "fresh.offline_alias": "/v1/offline2/1"}
EXPIRING = {"fresh.realtime": "/v1/realtime/1", "fresh.bounded": "/v1/bounded/1"}
UNKNOWN = {"fresh.unbounded": "/v1/unbounded/1", "fresh.zero": "/v1/zero/1", "fresh.none": "/v1/none/1"}


def _started(config: dict[str, Any], workdir: Path) -> tuple[Gateway, float]:
    gw = harness.start_gateway(config, workdir)
    return gw, time.monotonic()


def _allowed(gw: Gateway, route_id: str, path: str) -> None:
    req = tpsign.sign("GET", gw.url(path), route_id=route_id)
    expect_allow(gw.send_signed(req), jti=req["jti"], route_id=route_id)


def _denied(gw: Gateway, route_id: str, path: str, reason: str) -> None:
    """Denied with `reason` with a valid passport, an expired one, and no credentials at all;
    the audit event names the route and no caller (the passport was never looked at)."""
    valid = tpsign.sign("GET", gw.url(path), route_id=route_id)
    event_id = expect_deny(gw.send_signed(valid), 403, reason, presented=True, gateway=gw)
    expired = tpsign.sign("GET", gw.url(path), route_id=route_id, now=time.time() - 3600)
    expect_deny(gw.send_signed(expired), 403, reason, presented=True, gateway=gw)
    expect_deny(gw.send("GET", path), 403, reason, presented=False, gateway=gw)
    event = gw.audit_event(event_id)
    assert event["route_id"] == route_id and "subject" not in event and "jti" not in event, event


@pytest.fixture(scope="module")
def fresh_gateways(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Started lazily by the expiry test (so it can ask each one while young); stopped at the end."""
    started: dict[str, Any] = {}

    def start(name: str) -> Gateway:
        if name not in started:
            started[name] = _started(CONFIGS[name], tmp_path_factory.mktemp(name))
        return started[name][0]

    yield {"start": start, "started": started}
    for gw, _ in started.values():
        harness.stop_checked(gw)


def test_fresh_then_stale(fresh_gateways: dict[str, Any]) -> None:
    gw = fresh_gateways["start"]("freshness")
    for route_id, path in {**EXPIRING, **ALWAYS}.items():
        _allowed(gw, route_id, path)
    defaulted = fresh_gateways["start"]("defaulted")
    _allowed(defaulted, "fresh.inherited", "/v1/inherited/1")
    _allowed(defaulted, "fresh.own", "/v1/own/1")
    _allowed(defaulted, "fresh.bounded_default_max", "/v1/bdm/1")
    lax = fresh_gateways["start"]("lax")
    _allowed(lax, "fresh.own_limit", "/v1/own_limit/1")
    _allowed(lax, "fresh.lax", "/v1/lax/1")

    youngest = max(t for _, t in fresh_gateways["started"].values())
    time.sleep(max(0.0, youngest + STALE_AFTER_S - time.monotonic()))

    for route_id, path in EXPIRING.items():  # realtime: 2 s window here, so stale well before 5 s
        _denied(gw, route_id, path.replace("/1", "/2"), "stale_bundle_fail_closed")
    for route_id, path in ALWAYS.items():
        _allowed(gw, route_id, path.replace("/1", "/2"))
    _denied(defaulted, "fresh.inherited", "/v1/inherited/2", "stale_bundle_fail_closed")
    _allowed(defaulted, "fresh.own", "/v1/own/2")
    _denied(defaulted, "fresh.bounded_default_max", "/v1/bdm/2", "stale_bundle_fail_closed")
    _denied(lax, "fresh.own_limit", "/v1/own_limit/2", "stale_bundle_fail_closed")
    _allowed(lax, "fresh.lax", "/v1/lax/2")

    stats = gw.stats()
    assert stats["wasmcustom.proofgate.deny.stale_bundle_fail_closed"] == 6, stats
    assert stats["wasmcustom.proofgate.deny.passport_expired"] == 0, stats
    assert stats["wasmcustom.proofgate.deny.missing_passport"] == 0, stats


def test_unknown_freshness_fails_closed(fresh_gateways: dict[str, Any]) -> None:
    # bounded without a positive maximum, or no class at all (and no bundle default).
    gw = fresh_gateways["start"]("freshness")
    for route_id, path in UNKNOWN.items():
        _denied(gw, route_id, path, "bundle_freshness_unknown")

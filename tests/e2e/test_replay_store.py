"""The replay store's layout in a real Envoy (2 workers): a resize or reload through a file-based
LDS update keeps every consumed jti refused, and one caller's share of the store is bounded."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

import harness
import passports
import tpsign
from harness import Gateway, expect_allow, expect_deny

SUBJECT_PREFIX = "external:"


@pytest.fixture(scope="module")
def lds(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = harness.start_gateway(harness.base_plugin_config(replay={"max_entries": 65_536}),
                               tmp_path_factory.mktemp("replay_lds"), file_lds=True)
    try:
        yield gw
    finally:
        harness.stop_checked(gw)


def _refused_everywhere(gw: Gateway, req: dict[str, Any]) -> None:
    # Every send is a new connection; Envoy spreads them over both workers.
    for _ in range(6):
        expect_deny(gw.send_signed(req), 401, "jti_replay", presented=True, gateway=gw)


def test_resize_and_reload_keep_consumed_jtis(lds: Gateway) -> None:
    first = tpsign.sign("GET", lds.url("/v1/orders/1"))
    expect_allow(lds.send_signed(first), jti=first["jti"], route_id="orders.get")
    _refused_everywhere(lds, first)

    lds.reload(harness.base_plugin_config(replay={"max_entries": 4_194_304}))
    _refused_everywhere(lds, first)
    second = tpsign.sign("GET", lds.url("/v1/orders/2"))
    expect_allow(lds.send_signed(second), jti=second["jti"], route_id="orders.get")

    lds.reload(harness.base_plugin_config(replay={"max_entries": 1_000}))
    for req in (first, second):
        _refused_everywhere(lds, req)
    # The same configuration delivered again (a reload): still refused.
    lds.reload(harness.base_plugin_config(replay={"max_entries": 1_000}, comment="reloaded"))
    for req in (first, second):
        _refused_everywhere(lds, req)
    assert lds.stats()["listener_manager.lds.update_success"] >= 4


def _prefix_bundle() -> dict[str, Any]:
    src = passports.source(subject_exact=None, subject_prefix=SUBJECT_PREFIX)
    return passports.bundle([passports.route("orders.get", "GET", "/v1/orders/{order_id}", sources=[src])])


@pytest.fixture(scope="module")
def shared(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = harness.base_plugin_config(policy_bundle=_prefix_bundle(),
                                        replay={"max_entries": 65_536, "max_entries_per_subject": 1})
    yield from harness.serve(config, tmp_path_factory.mktemp("replay_share"))


def _as(subject: str, gw: Gateway, n: int) -> dict[str, Any]:
    return tpsign.sign("GET", gw.url(f"/v1/orders/{n}"), subject=subject)


def test_one_subject_is_held_to_its_share(shared: Gateway) -> None:
    # One live entry per bucket for this subject: its jtis are refused once one lands in a bucket
    # it already holds (a birthday collision over 65,536 buckets, ~320 requests on average).
    greedy = f"{SUBJECT_PREFIX}greedy"
    first = _as(greedy, shared, 0)
    passports.expect_allowed_as(shared.send_signed(first), first, "orders.get", subject=greedy)
    refused = None
    for n in range(1, 4_000):
        req = _as(greedy, shared, n)
        resp = shared.send_signed(req)
        if resp.status != 200:
            refused = resp
            break
        passports.expect_allowed_as(resp, req, "orders.get", subject=greedy)
    assert refused is not None, "4,000 live jtis of one subject never reached its share"
    expect_deny(refused, 503, "replay_store_unavailable", presented=True, gateway=shared)
    assert refused.headers_named("retry-after") == ["1"], refused.headers
    # Its spent jtis are still replays, and everyone else is still served.
    expect_deny(shared.send_signed(first), 401, "jti_replay", presented=True, gateway=shared)
    for k in range(20):
        other = f"{SUBJECT_PREFIX}other-{k}"
        req = _as(other, shared, k)
        passports.expect_allowed_as(shared.send_signed(req), req, "orders.get", subject=other)
    stats = shared.stats()
    assert stats["wasmcustom.proofgate.replay.share_full"] == 1
    assert stats["wasmcustom.proofgate.deny.replay_store_unavailable"] == 1

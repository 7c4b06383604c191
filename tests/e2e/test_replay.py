"""Replay: a passport's jti is consumed once, across both Envoy workers."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

import tpsign
from harness import Gateway, Response, expect_allow, expect_deny

COPIES = 40


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_same_request_twice(gateway: Gateway, method: str) -> None:
    if method == "POST":
        req = tpsign.sign("POST", gateway.url("/v1/orders"), b'{"n":1}', {"Content-Type": "application/json"})
    else:
        req = tpsign.sign("GET", gateway.url("/v1/orders/1"))
    expect_allow(gateway.send_signed(req), jti=req["jti"], route_id=tpsign.default_route_id(method, req["target"]))
    expect_deny(gateway.send_signed(req), 401, "jti_replay", presented=True, gateway=gateway)


def test_spent_passport_with_new_proof_is_replay(gateway: Gateway) -> None:
    # Same passport, new request proof: the proof is valid, the jti is spent.
    first = tpsign.sign("GET", gateway.url("/v1/orders/7"))
    second = tpsign.sign("GET", gateway.url("/v1/orders/8"), passport=first["passport"])
    expect_allow(gateway.send_signed(first), jti=first["jti"], route_id="orders.get")
    expect_deny(gateway.send_signed(second), 401, "jti_replay", presented=True, gateway=gateway)


def _worker_connections(gateway: Gateway) -> dict[str, int]:
    return {name: value for name, value in gateway.stats().items()
            if name.startswith("listener.") and ".worker_" in name and name.endswith(".downstream_cx_total")}


def test_concurrent_copies_exactly_one_wins(gateway: Gateway) -> None:
    req = tpsign.sign("GET", gateway.url("/v1/orders/42"))
    before = _worker_connections(gateway)
    barrier = threading.Barrier(COPIES)

    def fire(_: int) -> Response:
        barrier.wait(timeout=10)
        return gateway.send_signed(req)

    with ThreadPoolExecutor(COPIES) as pool:
        responses = list(pool.map(fire, range(COPIES)))

    outcome = Counter((r.status, r.header("x-trustplane-reason")) for r in responses)
    assert outcome == Counter({(200, None): 1, (401, "jti_replay"): COPIES - 1}), outcome
    for resp in responses:
        if resp.status == 200:
            expect_allow(resp, jti=req["jti"], route_id="orders.get")
        else:
            expect_deny(resp, 401, "jti_replay", presented=True)
    after = _worker_connections(gateway)
    per_worker = {name: after[name] - before.get(name, 0) for name in after}
    assert sum(per_worker.values()) >= COPIES, per_worker
    assert all(n > 0 for n in per_worker.values()) and len(per_worker) == 2, \
        f"traffic did not reach both workers: {per_worker}"

"""Cluster-wide replay in etcd (issue 11, DESIGN.md section 15): a real 3-member etcd cluster on
loopback and two Envoy replicas (`--concurrency 2` each) sharing it, for both protocols."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

import harness
import tpsign
from etcd_cluster import EtcdCluster
from harness import Gateway, Response, expect_allow, expect_deny

TIMEOUT_MS = 1000
PREFIX = "proofgate-e2e/"
COPIES = 20


def _config(protocol: str) -> dict[str, Any]:
    return harness.base_plugin_config(replay={"cluster": {
        "backend": "etcd", "cluster": f"etcd_{protocol}", "protocol": protocol,
        "key_prefix": PREFIX, "timeout_ms": TIMEOUT_MS}})


def _replica(etcd: EtcdCluster, protocol: str, workdir: Path) -> Gateway:
    clusters = [etcd.envoy_cluster("etcd_grpc", http2=True), etcd.envoy_cluster("etcd_http", http2=False)]
    return harness.start_gateway(_config(protocol), workdir, extra_clusters=clusters)


@pytest.fixture(scope="module", params=["grpc", "http"])
def replicas(request: pytest.FixtureRequest, etcd: EtcdCluster, wasm: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Gateway]]:
    protocol = request.param
    a = _replica(etcd, protocol, tmp_path_factory.mktemp(f"etcd_{protocol}_a"))
    b = _replica(etcd, protocol, tmp_path_factory.mktemp(f"etcd_{protocol}_b"))
    _wait_all_healthy(a)
    _wait_all_healthy(b)
    try:
        yield a, b
    finally:
        for gw in (a, b):
            harness.stop_checked(gw)


def _etcd_hosts(gw: Gateway) -> dict[str, bool]:
    """Envoy's view of each etcd member of the replica's cluster: host -> healthy."""
    _, body = harness._http_get(f"{gw.admin_url}/clusters")
    protocol = gw.plugin_config["replay"]["cluster"]["cluster"]
    hosts: dict[str, bool] = {}
    for line in body.decode().splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[0] == protocol and parts[2] == "health_flags":
            hosts[parts[1]] = parts[3] == "healthy"
    return hosts


def _wait_all_healthy(gw: Gateway, count: int = 3) -> None:
    gw.wait_for(lambda: sum(_etcd_hosts(gw).values()) == count, timeout=20, what=f"{count} healthy etcd hosts")


def _get(gw: Gateway, n: int) -> dict[str, Any]:
    return tpsign.sign("GET", gw.url(f"/v1/orders/{n}"))


def test_consumed_at_one_replica_is_refused_at_the_other(replicas: tuple[Gateway, Gateway]) -> None:
    a, b = replicas
    req = _get(a, 1)
    expect_allow(a.send_signed(req), jti=req["jti"], route_id="orders.get")
    # Same bytes at the other replica (its authority is the signed one's only by port: sign for b).
    at_b = tpsign.sign("GET", b.url("/v1/orders/1"), passport=req["passport"])
    expect_deny(b.send_signed(at_b), 401, "jti_replay", presented=True, gateway=b)
    expect_deny(a.send_signed(req), 401, "jti_replay", presented=True, gateway=a)
    fresh = _get(b, 2)
    expect_allow(b.send_signed(fresh), jti=fresh["jti"], route_id="orders.get")
    stats = b.stats()
    assert stats["wasmcustom.proofgate.replay.cluster.replays"] == 1
    assert stats["wasmcustom.proofgate.replay.cluster.consumed"] >= 1
    assert stats.get("wasmcustom.proofgate.replay.cluster.errors", 0) == 0


def test_concurrent_copies_over_both_replicas_exactly_one_wins(replicas: tuple[Gateway, Gateway]) -> None:
    a, b = replicas
    first = _get(a, 3)
    copies = [first if i % 2 == 0 else tpsign.sign("GET", b.url("/v1/orders/3"), passport=first["passport"])
              for i in range(COPIES)]
    barrier = threading.Barrier(COPIES)

    def fire(i: int) -> Response:
        barrier.wait(timeout=10)
        return (a if i % 2 == 0 else b).send_signed(copies[i])

    with ThreadPoolExecutor(COPIES) as pool:
        responses = list(pool.map(fire, range(COPIES)))
    outcome = Counter((r.status, r.header("x-trustplane-reason")) for r in responses)
    assert outcome == Counter({(200, None): 1, (401, "jti_replay"): COPIES - 1}), outcome


def test_restarted_replica_still_refuses(replicas: tuple[Gateway, Gateway], etcd: EtcdCluster,
                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    a, _ = replicas
    req = _get(a, 4)
    expect_allow(a.send_signed(req), jti=req["jti"], route_id="orders.get")
    protocol = a.plugin_config["replay"]["cluster"]["protocol"]
    # A new Envoy process: its shared data is empty, etcd remembers.
    again = _replica(etcd, protocol, tmp_path_factory.mktemp(f"etcd_{protocol}_restart"))
    try:
        _wait_all_healthy(again)
        resent = tpsign.sign("GET", again.url("/v1/orders/4"), passport=req["passport"])
        expect_deny(again.send_signed(resent), 401, "jti_replay", presented=True, gateway=again)
    finally:
        harness.stop_checked(again)


def _etcd_key(req: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for part in (harness.ISSUER, req["jti"]):
        raw = part.encode()
        h.update(len(raw).to_bytes(8, "big") + raw)
    return f"{PREFIX}passport/{h.hexdigest()}"


def test_the_key_lease_ends_at_exp_plus_skew(replicas: tuple[Gateway, Gateway], etcd: EtcdCluster) -> None:
    a, _ = replicas
    req = _get(a, 5)
    expect_allow(a.send_signed(req), jti=req["jti"], route_id="orders.get")
    kv = etcd.etcdctl("get", _etcd_key(req))["kvs"]
    assert len(kv) == 1, kv
    lease = kv[0]["lease"]
    assert lease != 0
    ttl = etcd.etcdctl("lease", "timetolive", format(lease, "x"))["ttl"]
    payload = req["passport"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    until = claims["exp"] + 30  # clock_skew_seconds
    ends = time.time() + ttl
    # Shared per 60 s window: it ends at the first window boundary at or after exp + skew.
    assert until - 2 <= ends <= until + 60 + 2, (until, ends)


def test_member_down_quorum_lost_and_back(replicas: tuple[Gateway, Gateway], etcd: EtcdCluster) -> None:
    a, _ = replicas
    m0, m1, m2 = etcd.members
    try:
        etcd.kill(m2)
        a.wait_for(lambda: _etcd_hosts(a).get(f"127.0.0.1:{m2.client_port}") is False, timeout=10,
                   what="the dead member left out")
        etcd.wait_healthy([m0, m1])
        req = _get(a, 6)
        expect_allow(a.send_signed(req), jti=req["jti"], route_id="orders.get")

        etcd.kill(m1)
        failing_since = time.monotonic()
        for n in range(7, 10):
            req = _get(a, n)
            started = time.monotonic()
            resp = a.send_signed(req)
            elapsed = time.monotonic() - started
            expect_deny(resp, 503, "replay_store_unavailable", presented=True, gateway=a)
            assert resp.headers_named("retry-after") == ["1"], resp.headers
            assert elapsed < TIMEOUT_MS / 1000 + 3, f"503 after {elapsed:.1f}s"
        assert a.stats()["wasmcustom.proofgate.replay.cluster.errors"] >= 3
        # Rate-limited: at most one warning per worker per 10 s, however many requests failed
        # (a loaded machine may take longer than 10 s for the three).
        windows = 1 + int((time.monotonic() - failing_since) // 10)
        # Envoy writes its log every 20 ms: the three 503s can all come back before the first line is
        # in the file, so wait for it (no request is sent meanwhile, so no line is added either).
        lines = a.wait_for(lambda: [line for line in a.log_text().splitlines()
                                    if "etcd replay store unavailable" in line],
                           what="the etcd warning in envoy.log")
        assert 1 <= len(lines) <= 2 * windows and all("][warning][wasm]" in line for line in lines), \
            (lines, windows)
    finally:
        for m in (m1, m2):
            if m.proc is None:
                etcd.start(m)
        etcd.wait_healthy(etcd.members)
    _wait_all_healthy(a)
    req = _get(a, 10)
    expect_allow(a.send_signed(req), jti=req["jti"], route_id="orders.get")

#!/usr/bin/env python3
"""Cluster-wide replay cost (issue 11): passport + proof GETs through one Envoy (--concurrency 2)
with the shared-data store only, then with `replay.cluster` on a 3-member etcd on loopback, for
each protocol; and etcd's own write rate here. Prints a Markdown section for bench/RESULTS.md.

Requests are signed up front and sent one at a time over new connections, so the numbers are
latency per request (p50/p99) and its inverse; the 'added' columns are the difference to the
shared-data-only row. Usage: bench/etcd.py [N requests per row, default 300]."""

from __future__ import annotations

import base64
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "e2e"), str(ROOT / "examples")]

import harness  # noqa: E402
import tpsign  # noqa: E402
from etcd_cluster import EtcdCluster  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300


def row(etcd: EtcdCluster, protocol: str | None) -> list[float]:
    config = harness.base_plugin_config()
    if protocol:
        config["replay"] = {"cluster": {"backend": "etcd", "cluster": f"etcd_{protocol}",
                                        "protocol": protocol, "timeout_ms": 1000}}
    clusters = [etcd.envoy_cluster("etcd_grpc", http2=True), etcd.envoy_cluster("etcd_http", http2=False)]
    # Its own work directory, removed afterwards (Envoy's config and log; earlier runs left one
    # in /tmp per row).
    work = Path(tempfile.mkdtemp(prefix="proofgate-etcd-bench-"))
    gw = harness.start_gateway(config, work, extra_clusters=clusters)
    try:
        reqs = [tpsign.sign("GET", gw.url(f"/v1/orders/{i}")) for i in range(N + 30)]
        for r in reqs[:30]:  # warm-up: connections to etcd, leases, V8 tiers
            gw.send_signed(r)
        times = []
        for r in reqs[30:]:
            t = time.perf_counter()
            resp = gw.send_signed(r)
            times.append(time.perf_counter() - t)
            assert resp.status == 200, (resp.status, resp.header("x-trustplane-reason"))
        return times
    finally:
        gw.stop()
        shutil.rmtree(work, ignore_errors=True)


def etcd_write_rate(etcd: EtcdCluster, seconds: float = 5.0, threads: int = 16) -> float:
    url = f"{etcd.members[0].client_url}/v3/kv/put"
    stop = time.monotonic() + seconds
    done = [0] * threads

    def work(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            key = base64.b64encode(f"bench/{i}/{n}".encode()).decode()
            body = json.dumps({"key": key, "value": "MQ=="}).encode()
            urllib.request.urlopen(urllib.request.Request(url, body), timeout=5).read()
            n += 1
        done[i] = n

    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(done) / seconds


def ms(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100)[int(q) - 1] * 1000 if q < 100 else max(xs) * 1000


def main() -> None:
    etcd = EtcdCluster.create().start_all()
    try:
        rows = {name: row(etcd, proto) for name, proto in
                [("shared data only", None), ("etcd, grpc", "grpc"), ("etcd, http", "http")]}
        rate = etcd_write_rate(etcd)
    finally:
        etcd.stop()
    base = rows["shared data only"]
    print("### Cluster-wide replay in etcd (3 members on loopback, tmpfs)")
    print()
    print(f"Measured by `bench/etcd.py` ({N} passport + proof GETs per row, one at a time, each on a new"
          " connection, one Envoy with `--concurrency 2`).")
    print()
    print("| store | p50 | p99 | requests/s (sequential) | ratio to shared data | added p50 | added p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, xs in rows.items():
        rps = len(xs) / sum(xs)
        ratio = rps / (len(base) / sum(base))
        print(f"| {name} | {ms(xs, 50):.2f} ms | {ms(xs, 99):.2f} ms | {rps:.0f} | {ratio:.2f} | "
              f"{ms(xs, 50) - ms(base, 50):+.2f} ms | {ms(xs, 99) - ms(base, 99):+.2f} ms |")
    print()
    print(f"etcd's own write rate here: {rate:.0f} puts/s (16 concurrent JSON-gateway clients, 5 s).")


if __name__ == "__main__":
    main()

"""DPoP proof jtis in the cluster-wide replay store (DESIGN.md sections 14 and 15): a real 3-member
etcd cluster on loopback and two Envoy replicas (`--concurrency 2` each) sharing it, for both
protocols. A proof is single-use across every replica, not just across the workers of one.

Tokens by npm `jose`, proofs by npm `dpop` (tests/e2e/dpop_clients.py)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

import harness
from dpop_clients import Key, b64url_json, provider, token
from etcd_cluster import EtcdCluster
from harness import EVENT_ID_RE, Gateway, Response, describe

ISSUER = "https://auth.bound.example"
PREFIX = "proofgate-e2e-dpop/"
HOST = "api.example"  # both replicas serve it, as behind one load balancer
URL = f"http://{HOST}/v1/orders"
MAX_AGE = 60
COPIES = 20
CHALLENGE = 'DPoP error="invalid_dpop_proof", algs="EdDSA ES256"'


def _config(protocol: str) -> dict[str, Any]:
    return {
        "jwt_providers": [provider("bound", ISSUER, "required", dpop_max_age_seconds=MAX_AGE)],
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider": "bound"}}],
        "replay": {"cluster": {"backend": "etcd", "cluster": f"etcd_{protocol}", "protocol": protocol,
                               "key_prefix": PREFIX, "timeout_ms": 1000}},
    }


def _replica(etcd: EtcdCluster, protocol: str, workdir: Path) -> Gateway:
    name = f"etcd_{protocol}"
    gw = harness.start_gateway(_config(protocol), workdir,
                               extra_clusters=[etcd.envoy_cluster(name, http2=protocol == "grpc")])
    gw.wait_for(lambda: gw.stats().get(f"cluster.{name}.membership_healthy") == 3, timeout=20,
                what="3 healthy etcd hosts")
    return gw


@pytest.fixture(scope="module", params=["grpc", "http"])
def replicas(request: pytest.FixtureRequest, etcd: EtcdCluster, wasm: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Gateway]]:
    protocol = request.param
    a = _replica(etcd, protocol, tmp_path_factory.mktemp(f"dpop_etcd_{protocol}_a"))
    b = _replica(etcd, protocol, tmp_path_factory.mktemp(f"dpop_etcd_{protocol}_b"))
    try:
        yield a, b
    finally:
        for gw in (a, b):
            harness.stop_checked(gw)


@pytest.fixture(scope="module")
def client() -> Key:
    return Key("Ed25519")


def _send(gw: Gateway, tok: str, proof: str, **kwargs: Any) -> Response:
    return gw.send("GET", "/v1/orders", [("Authorization", f"DPoP {tok}"), ("DPoP", proof)],
                   authority=HOST, **kwargs)


def _expect_allow(resp: Response) -> None:
    assert resp.status == 200, describe(resp)
    names = [n for n, _ in resp.json()["headers"]]
    assert "dpop" not in names and "authorization" not in names, names


def _expect_dpop_replay(gw: Gateway, resp: Response) -> None:
    info = describe(resp)
    assert (resp.status, resp.header("x-trustplane-reason")) == (401, "dpop_replay"), info
    event_ids = resp.headers_named("x-trustplane-event-id")
    assert len(event_ids) == 1 and EVENT_ID_RE.match(event_ids[0]), info
    assert resp.json() == {"allowed": False, "reason": "dpop_replay", "event_id": event_ids[0]}, info
    assert resp.headers_named("www-authenticate") == [CHALLENGE], info
    assert len(gw.upstream_requests()) == resp.upstream_before, "denied request reached upstream"


def _cluster_stats(gw: Gateway) -> tuple[int, int, int]:
    s = gw.stats()
    return tuple(s.get(f"wasmcustom.proofgate.replay.cluster.{n}", 0)  # type: ignore[return-value]
                 for n in ("consumed", "replays", "errors"))


def test_a_proof_used_at_one_replica_is_dpop_replay_at_the_other(
        replicas: tuple[Gateway, Gateway], client: Key) -> None:
    a, b = replicas
    tok = token(ISSUER, client.jkt)
    proof = client.proof("GET", URL, tok)
    before_a, before_b = _cluster_stats(a), _cluster_stats(b)
    _expect_allow(_send(a, tok, proof))
    # The other replica's shared data has never seen it: only etcd knows.
    _expect_dpop_replay(b, _send(b, tok, proof))
    after_a, after_b = _cluster_stats(a), _cluster_stats(b)
    assert after_a[0] - before_a[0] == 1 and after_a[2] == before_a[2], (before_a, after_a)
    assert after_b[1] - before_b[1] == 1 and after_b[2] == before_b[2], (before_b, after_b)
    # And a fresh proof for the same token is fine at the other replica.
    _expect_allow(_send(b, tok, client.proof("GET", URL, tok)))


def test_one_proof_sent_concurrently_to_both_replicas_wins_once(
        replicas: tuple[Gateway, Gateway], client: Key) -> None:
    a, b = replicas
    tok = token(ISSUER, client.jkt)
    proof = client.proof("GET", URL, tok)
    barrier = threading.Barrier(COPIES)

    def fire(i: int) -> Response:
        barrier.wait(timeout=20)
        return _send(a if i % 2 == 0 else b, tok, proof, timeout=20)

    with ThreadPoolExecutor(COPIES) as pool:
        responses = list(pool.map(fire, range(COPIES)))
    outcome = Counter((r.status, r.header("x-trustplane-reason")) for r in responses)
    assert outcome == Counter({(200, None): 1, (401, "dpop_replay"): COPIES - 1}), outcome
    for r in responses:
        if r.status == 401:
            assert r.headers_named("www-authenticate") == [CHALLENGE], describe(r)


def _etcd_key(jkt: str, jti: str) -> str:
    h = hashlib.sha256()
    for part in (jkt, jti):
        raw = part.encode()
        h.update(len(raw).to_bytes(8, "big") + raw)
    return f"{PREFIX}dpop/{h.hexdigest()}"


def test_the_proof_jti_is_kept_in_etcd_until_the_proof_is_too_old(
        replicas: tuple[Gateway, Gateway], client: Key, etcd: EtcdCluster) -> None:
    a, _ = replicas
    tok = token(ISSUER, client.jkt)
    proof = client.proof("GET", URL, tok)
    _expect_allow(_send(a, tok, proof))
    claims = b64url_json(proof.split(".")[1])
    kv = etcd.etcdctl("get", _etcd_key(client.jkt, claims["jti"]))["kvs"]
    assert len(kv) == 1, kv
    lease = kv[0]["lease"]
    assert lease != 0
    ttl = etcd.etcdctl("lease", "timetolive", format(lease, "x"))["ttl"]
    # The proof is acceptable through iat + max_age; its key lives at least until just after
    # that, at most one 60 s lease window longer.
    until = claims["iat"] + MAX_AGE + 1
    ends = time.time() + ttl
    assert until - 2 <= ends <= until + 60 + 2, (until, ends)


def test_a_restarted_replica_still_refuses_a_used_proof(
        replicas: tuple[Gateway, Gateway], client: Key, etcd: EtcdCluster,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    a, _ = replicas
    tok = token(ISSUER, client.jkt)
    proof = client.proof("GET", URL, tok)
    _expect_allow(_send(a, tok, proof))
    protocol = a.plugin_config["replay"]["cluster"]["protocol"]
    again = _replica(etcd, protocol, tmp_path_factory.mktemp(f"dpop_etcd_{protocol}_restart"))
    try:
        _expect_dpop_replay(again, _send(again, tok, proof))
    finally:
        harness.stop_checked(again)

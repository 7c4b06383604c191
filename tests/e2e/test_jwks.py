"""Remote passport-issuer keys (DESIGN.md section 12) in a real Envoy with two workers.

Each test starts its own JWKS server (tests/e2e/jwks_server.py, counts fetches, can rotate keys,
answer 500, hang, send garbage or an oversized body) and its own gateway whose trust-material
issuer has `jwks` pointing at it through the cluster `jwks`. Passports are signed by the SDK
(`tpsign`) with keys the JWKS server publishes.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

import harness
import tpsign
from harness import Gateway, Response, expect_allow, expect_deny
from jwks_server import JWKS_DEFAULTS, JwksServer, jwks_config, okp_jwk

KEY1 = tpsign.key_from_seed()  # the demo key, kid demo-caller-1
KEY2 = tpsign.key_from_seed(bytes([7] * 32))
KID1 = harness.KID
KID2 = "rotated-2"
@pytest.fixture
def server(wasm: Path) -> Iterator[JwksServer]:
    s = JwksServer().start()
    s.set_keys(okp_jwk(KID1, KEY1))
    try:
        yield s
    finally:
        s.stop()


@contextmanager
def gateway_for(server: JwksServer, workdir: Path, **jwks: Any) -> Iterator[Gateway]:
    gw = harness.start_gateway(jwks_config(server, **jwks), workdir, extra_clusters=[server.cluster()])
    try:
        yield gw
    finally:
        harness.stop_checked(gw)


def stat(gw: Gateway, name: str) -> int:
    return gw.stats().get(f"wasmcustom.proofgate.jwks.{name}", 0)


def get(gw: Gateway, key: Any = KEY1, kid: str = KID1, n: int = 1) -> tuple[dict[str, Any], Response]:
    req = tpsign.sign("GET", gw.url(f"/v1/orders/{n}"), key=key, kid=kid)
    return req, gw.send_signed(req)


def expect_get_allowed(gw: Gateway, key: Any = KEY1, kid: str = KID1, n: int = 1) -> None:
    req, resp = get(gw, key, kid, n)
    expect_allow(resp, jti=req["jti"], route_id="orders.get")


def expect_keys_unavailable(gw: Gateway, resp: Response) -> int:
    expect_deny(resp, 503, "keys_unavailable", presented=True, gateway=gw)
    retry = resp.headers_named("retry-after")
    assert len(retry) == 1 and retry[0].isdigit() and int(retry[0]) >= 1, harness.describe(resp)
    return int(retry[0])


def wait_fetches(gw: Gateway, server: JwksServer, at_least: int, timeout: float = 10.0) -> None:
    gw.wait_for(lambda: server.count() >= at_least, timeout, f"{at_least} JWKS fetches")


def test_keys_are_fetched_before_the_first_request_once_for_both_workers(
        server: JwksServer, tmp_path: Path) -> None:
    with gateway_for(server, tmp_path) as gw:
        # No request sent yet: the prefetch happens on its own.
        wait_fetches(gw, server, 1)
        gw.wait_for(lambda: stat(gw, "fetch.ok") == 1, 5, "fetch.ok == 1")
        # Both workers tick every 100 ms; a second fetch would show within a second.
        time.sleep(1.5)
        assert server.count() == 1
        # Requests over separate connections reach both workers; none needs a fetch.
        for n in range(8):
            expect_get_allowed(gw, n=n)
        assert server.count() == 1
        assert stat(gw, "fetch.failed") == 0
        assert stat(gw, "refetch.unknown_kid") == 0


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_request_arriving_during_the_first_fetch_is_held_then_allowed(
        server: JwksServer, tmp_path: Path, method: str) -> None:
    server.set_mode("ok", delay=3.0)
    with gateway_for(server, tmp_path, timeout_ms=8000) as gw:
        sent = time.monotonic()
        if method == "GET":
            req = tpsign.sign("GET", gw.url("/v1/orders/1"))
        else:
            # The body arrives while the request is held: buffered, then checked at the wake-up.
            req = tpsign.sign("POST", gw.url("/v1/orders"), b'{"order":1}',
                              {"Content-Type": "application/json"})
        resp = gw.send_signed(req)
        # Held, not refused: the keys were served after the request arrived, and it passed.
        assert server.count() == 1
        assert server.fetches[0] > sent, "the keys were there before the request"
        seen = expect_allow(resp, jti=req["jti"], route_id=tpsign.default_route_id(method, req["target"]))
        assert seen["body"] == req["body"].decode(), seen
        time.sleep(0.5)
        assert server.count() == 1


def test_a_request_with_large_headers_is_never_held(server: JwksServer, tmp_path: Path) -> None:
    # Held requests keep their headers, before any signature verified: one with more than
    # 16 KiB of header names and values is refused at once while the keys are on their way.
    server.set_mode("ok", delay=3.0)
    with gateway_for(server, tmp_path, timeout_ms=8000) as gw:
        padding = [(f"x-pad-{i}", "p" * 1000) for i in range(20)]
        req = tpsign.sign("GET", gw.url("/v1/orders/1"))
        started = time.monotonic()
        resp = gw.send_signed(req, extra=padding)
        assert time.monotonic() - started < 2.5, "held, not refused at once"
        expect_keys_unavailable(gw, resp)
        assert server.count() == 0, "the keys were served already"
        # The same request without the padding is held and allowed once the keys come.
        req = tpsign.sign("GET", gw.url("/v1/orders/2"))
        expect_allow(gw.send_signed(req), jti=req["jti"], route_id="orders.get")


def test_rotation_to_a_new_kid_is_picked_up_by_exactly_one_refetch(
        server: JwksServer, tmp_path: Path) -> None:
    with gateway_for(server, tmp_path) as gw:
        wait_fetches(gw, server, 1)
        expect_get_allowed(gw)
        server.set_keys(okp_jwk(KID1, KEY1), okp_jwk(KID2, KEY2))
        expect_get_allowed(gw, KEY2, KID2, n=2)
        assert server.count() == 2
        assert stat(gw, "refetch.unknown_kid") == 1
        # Both workers now have the new key from the one shared copy.
        for n in range(3, 11):
            expect_get_allowed(gw, KEY2, KID2, n=n)
            expect_get_allowed(gw, KEY1, KID1, n=n)
        assert server.count() == 2


def test_a_storm_of_unknown_kids_refetches_at_most_once_per_min_refetch_seconds(
        server: JwksServer, tmp_path: Path) -> None:
    # A generous fetch timeout: on a loaded machine a refetch slower than the default 1.5 s would
    # fail and be retried, and the retry would count as a second fetch.
    with gateway_for(server, tmp_path, timeout_ms=6000) as gw:
        wait_fetches(gw, server, 1)
        before = server.count()
        start = time.monotonic()
        barrier = threading.Barrier(30)

        def unknown(i: int) -> Response:
            barrier.wait(timeout=10)
            _, resp = get(gw, KEY2, f"unknown-{secrets.token_hex(4)}", n=i)
            return resp

        with ThreadPoolExecutor(30) as pool:
            responses = list(pool.map(unknown, range(30)))
        elapsed = time.monotonic() - start
        outcome = Counter((r.status, r.header("x-trustplane-reason")) for r in responses)
        assert outcome == Counter({(401, "unknown_signing_key"): 30}), outcome
        for r in responses:
            expect_deny(r, 401, "unknown_signing_key", presented=True)
        refetches = server.count() - before
        allowed = 1 + math.floor(elapsed / JWKS_DEFAULTS["min_refetch_seconds"])
        assert 1 <= refetches <= allowed, (refetches, elapsed)
        assert stat(gw, "refetch.unknown_kid") == refetches
        # Right after, still inside the window: refused without a fetch.
        _, resp = get(gw, KEY2, "unknown-again", n=99)
        expect_deny(resp, 401, "unknown_signing_key", presented=True, gateway=gw)
        if time.monotonic() - start < JWKS_DEFAULTS["min_refetch_seconds"]:
            assert server.count() - before == refetches


def test_a_dead_jwks_server_keeps_the_last_good_keys_working(
        server: JwksServer, tmp_path: Path) -> None:
    with gateway_for(server, tmp_path, cache_seconds=2, min_refetch_seconds=2, timeout_ms=1000) as gw:
        wait_fetches(gw, server, 1)
        expect_get_allowed(gw)
        failures = 0
        for mode, says in [("500", "status 500"), ("hang", "status 504"),
                           ("garbage", "unusable document"), ("oversize", "over max_bytes")]:
            server.set_mode(mode)
            failures += 1
            gw.wait_for(lambda: stat(gw, "fetch.failed") >= failures, 10, f"a failed {mode} fetch")
            gw.wait_for(lambda: says in gw.log_text(), 10, f"log line for {mode}")
            expect_get_allowed(gw, n=failures)
        # The server is gone entirely: connection refused (Envoy answers the callout 503).
        server.set_mode("ok")
        server.stop()
        failures = stat(gw, "fetch.failed") + 1
        gw.wait_for(lambda: stat(gw, "fetch.failed") >= failures, 10, "a failed fetch to a dead server")
        for n in range(10, 16):
            expect_get_allowed(gw, n=n)
        assert stat(gw, "fetch.ok") == 1
        assert stat(gw, "age_seconds") >= 2
        # Failure lines say why, never a key.
        assert tpsign.public_key_b64url(KEY1) not in gw.log_text()


@pytest.mark.parametrize("mode", ["500", "garbage", "oversize", "hang"])
def test_no_keys_ever_is_a_prompt_503_keys_unavailable(
        server: JwksServer, tmp_path: Path, mode: str) -> None:
    server.set_mode(mode)
    with gateway_for(server, tmp_path, timeout_ms=1000) as gw:
        wait_fetches(gw, server, 1)
        # Never a hang: the client gives up only after 10 s, the gateway answers within its
        # timeout_ms of holding.
        req = tpsign.sign("GET", gw.url("/v1/orders/5"))
        resp = harness.send(gw.host, gw.port, "GET", req["target"], list(req["headers"].items()),
                            timeout=10)
        resp.upstream_before = len(gw.upstream_requests())
        expect_keys_unavailable(gw, resp)
        event = gw.audit_event(resp.header("x-trustplane-event-id"))
        assert event["reason_code"] == "keys_unavailable"
        if mode != "hang":
            gw.wait_for(lambda: stat(gw, "fetch.failed") >= 1, 5, "fetch.failed")
        assert stat(gw, "fetch.ok") == 0


@pytest.mark.parametrize("jwks, path, says", [
    ({"uri": "http://127.0.0.1:1/jwks.json"}, "jwks.cluster", "is required"),
    ({"cluster": "jwks", "uri": "ftp://x/jwks.json"}, "jwks.uri", "absolute http(s) URI"),
    ({"cluster": "jwks", "cache_seconds": 0}, "jwks.cache_seconds", "from 1 to 86400"),
    ({"cluster": "jwks", "timeout_ms": 999999}, "jwks.timeout_ms", "from 100 to 60000"),
    ({"cluster": "jwks", "max_bytes": 1}, "jwks.max_bytes", "from 256"),
])
def test_bad_jwks_settings_fail_validation_with_their_json_path(
        jwks: dict[str, Any], path: str, says: str, tmp_path: Path, wasm: Path) -> None:
    config = harness.base_plugin_config()
    issuer = config["trust_material"]["issuers"][0]
    del issuer["keys"]
    issuer["jwks"] = jwks
    ok, output = harness.validate_config(config, tmp_path)
    assert not ok, output
    assert f"$.trust_material.issuers[0].{path}: " in output and says in output, output


def test_inline_keys_beside_jwks_fail_validation(tmp_path: Path, wasm: Path) -> None:
    config = harness.base_plugin_config()
    config["trust_material"]["issuers"][0]["jwks"] = {"cluster": "jwks"}
    ok, output = harness.validate_config(config, tmp_path)
    assert not ok, output
    assert "$.trust_material.issuers[0].keys: not allowed with jwks" in output, output

"""Operations on a real Envoy (issue 8, items 2-6 and 8): a crashed VM comes back with
`failure_policy: FAIL_RELOAD` and the replay store survives it; configuration delivered through
ECDS reaches connections opened before the update; configuration updates leave no timers behind;
unauthenticated denies cannot flood the log; the memory gauge shows the worst VM; the shipped
Envoy configs carry the README's recommended settings.

The crash and the memory growth use hooks that exist only in a wasm built with the cargo feature
`test-hooks` (`make wasm-test-hooks`, its own target directory); `test_production_wasm_has_no_test_hooks`
shows the production wasm ignores them.
"""

from __future__ import annotations

import glob
import http.client
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import harness
import tpsign
from harness import SUBJECT, Gateway, expect_allow, expect_deny
from jwks_server import JwksServer, jwks_config, okp_jwk

REPO = harness.REPO_ROOT
P = "wasmcustom.proofgate."
ECDS_RELOADS = "extension_config_discovery.http_filter.proofgate.config_reload"
ECDS_FAILS = "extension_config_discovery.http_filter.proofgate.config_fail"
# src/log_budget.rs
LOG_BURST, LOG_PER_SECOND = 100, 10
TEST_HOOKS_BUILD = ["cargo", "build", "--release", "--target", "wasm32-wasip1", "--features", "test-hooks",
                    "--target-dir", "target/test-hooks"]


@pytest.fixture(scope="module")
def hooks_wasm(wasm: Path) -> Path:
    """The test-hooks wasm, rebuilt from the current sources (a no-op when up to date)."""
    override = os.environ.get("PROOFGATE_TEST_HOOKS_WASM")
    if override:
        return harness._repo_path(override)
    run = subprocess.run(TEST_HOOKS_BUILD, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return REPO / "target/test-hooks/wasm32-wasip1/release/proofgate.wasm"


def _stat(gw: Gateway, name: str) -> int:
    # The admin endpoint can be slow on a loaded machine (200 config updates, other jobs): retry.
    for attempt in range(5):
        try:
            return gw.stats().get(name, 0)
        except OSError:  # includes timeouts
            if attempt == 4:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Item 6: the memory gauge is the worst VM's, whichever VM ticked last


@pytest.fixture(scope="module")
def hooked(hooks_wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = harness.start_gateway(harness.base_plugin_config(), tmp_path_factory.mktemp("hooked"), wasm=hooks_wasm)
    try:
        yield gw
    finally:
        gw.stop()  # the trap test leaves a trap in envoy.log on purpose


def test_memory_gauge_reports_the_worst_vm(hooked: Gateway) -> None:
    gw = hooked
    grow = 64 << 20
    # One request grows one worker's VM; the main thread's VM and the other worker stay small.
    resp = gw.send("GET", "/v1/orders/1", [("x-proofgate-test-grow-mib", "64")])
    expect_deny(resp, 401, "missing_passport", presented=False, gateway=gw)
    gw.wait_for(lambda: _stat(gw, P + "vm.memory_bytes") >= grow, timeout=5, what="memory gauge >= 64 MiB")
    samples = []
    for _ in range(10):  # 5 s: every VM ticks ten times
        time.sleep(0.5)
        stats = gw.stats()
        samples.append((stats[P + "vm.memory_bytes"], stats[P + "vm.count"]))
    assert all(memory >= grow for memory, _ in samples), samples
    # The main thread's VM and two workers tick; Envoy's config-check VM published once when it
    # loaded the config and drops out 5 s after that.
    gw.wait_for(lambda: _stat(gw, P + "vm.count") == 3, timeout=15, what="vm.count == 3")


# ---------------------------------------------------------------------------------------------
# Item 2: FAIL_RELOAD brings a crashed VM back; the replay store (shared data) survives


def test_crashed_vm_is_reloaded_and_replay_store_survives(hooked: Gateway) -> None:
    gw = hooked
    spent = tpsign.sign("GET", gw.url("/v1/orders/7"))
    expect_allow(gw.send_signed(spent), jti=spent["jti"], route_id="orders.get")
    assert _stat(gw, "wasm.proofgate.vm_reload_success") == 0
    crashed = gw.send("GET", "/v1/orders/8", [("x-proofgate-test-trap", "1")])
    # The trapping request itself gets Envoy's bare 503 (no proofgate headers, never upstream).
    assert crashed.status == 503 and crashed.header("x-trustplane-decision") is None, harness.describe(crashed)
    assert len(gw.upstream_requests()) == crashed.upstream_before
    gw.wait_for(lambda: any("unreachable" in line.lower() or "trap" in line.lower() for line in gw.wasm_errors()),
                what="the trap in envoy.log")
    # Envoy reloads the VM on the next request to that worker, after the backoff (1 s default).
    time.sleep(2)
    statuses = []
    for i in range(40):  # fresh connections, spread over both workers
        req = tpsign.sign("GET", gw.url(f"/v1/orders/{100 + i}"))
        statuses.append(gw.send_signed(req).status)
    assert statuses == [200] * 40, statuses
    assert _stat(gw, "wasm.proofgate.vm_reload_success") == 1
    # The jti consumed before the crash is still consumed.
    expect_deny(gw.send_signed(spent), 401, "jti_replay", presented=True, gateway=gw)
    assert gw.alive()


# ---------------------------------------------------------------------------------------------
# The production wasm has no hooks


def test_production_wasm_has_no_test_hooks(gateway: Gateway) -> None:
    for hook in (("x-proofgate-test-trap", "1"), ("x-proofgate-test-grow-mib", "64")):
        resp = gateway.send("GET", "/v1/orders/1", [hook])
        expect_deny(resp, 401, "missing_passport", presented=False, gateway=gateway)
    time.sleep(1.2)  # two gauge ticks
    assert _stat(gateway, P + "vm.memory_bytes") < 16 << 20
    assert gateway.wasm_errors() == [] and _stat(gateway, "wasm.proofgate.vm_reload_success") == 0


# ---------------------------------------------------------------------------------------------
# Item 3: configuration through ECDS reaches existing connections at once


@pytest.fixture(scope="module")
def ecds(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from _serve_ecds(tmp_path_factory.mktemp("ecds"))


def _serve_ecds(workdir: Path) -> Iterator[Gateway]:
    gw = harness.start_gateway(harness.base_plugin_config(), workdir, ecds=True)
    try:
        yield gw
    finally:
        errors = [e for e in gw.wasm_errors() if e not in getattr(gw, "expected_errors", [])]
        gw.stop()
        assert not errors, "wasm errors in envoy.log (trap/panic?):\n" + "\n".join(errors[-20:])


def _push_and_wait(gw: Gateway, config: dict[str, Any], stat: str = ECDS_RELOADS) -> None:
    before = _stat(gw, stat)
    gw.push_config(config)
    gw.wait_for(lambda: _stat(gw, stat) > before, timeout=30, what=f"{stat} after the push")


def _send_on(conn: http.client.HTTPConnection, req: dict[str, Any]) -> harness.Response:
    conn.putrequest(req["method"], req["target"], skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", conn.host + ":" + str(conn.port))
    for name, value in req["headers"].items():
        conn.putheader(name, value)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    return harness.Response(resp.status, [(n.lower(), v) for n, v in resp.getheaders()], body)


def test_ecds_revocation_reaches_an_open_connection(ecds: Gateway) -> None:
    gw = ecds
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=10)
    try:
        first = tpsign.sign("GET", gw.url("/v1/orders/1"))
        expect_allow(_send_on(conn, first), jti=first["jti"], route_id="orders.get")
        sock = conn.sock
        assert sock is not None
        # Revoke every passport of the subject issued before a minute from now.
        bundle = harness.policy_bundle()
        bundle["revocations"] = [{"sub": SUBJECT, "not_before": int(time.time()) + 60}]
        _push_and_wait(gw, harness.base_plugin_config(policy_bundle=bundle))
        for i in range(10):
            req = tpsign.sign("GET", gw.url(f"/v1/orders/{10 + i}"))
            expect_deny(_send_on(conn, req), 401, "revoked", presented=True)
        assert conn.sock is sock, "the connection was not kept alive: the test proves nothing"
    finally:
        conn.close()


def test_ecds_update_that_proofgate_refuses_keeps_the_previous_config(ecds: Gateway) -> None:
    gw = ecds
    bad = harness.base_plugin_config(clock_skew_seconds="thirty")
    _push_and_wait(gw, bad, ECDS_FAILS)
    assert "configuration rejected: $.clock_skew_seconds" in gw.log_text()
    # Still the revocation from the previous test: the refused update changed nothing.
    req = tpsign.sign("GET", gw.url("/v1/orders/42"))
    expect_deny(gw.send_signed(req), 401, "revoked", presented=True, gateway=gw)
    # The refusal's error lines (proofgate's and Envoy's) are expected; nothing after them is.
    gw.expected_errors = gw.wasm_errors()  # type: ignore[attr-defined]
    assert any("Plugin proofgate failed to load" in e for e in gw.expected_errors), gw.expected_errors


# ---------------------------------------------------------------------------------------------
# Issue 12: one VM counts the replay entries, and another takes over when it goes


def test_replay_entries_gauge_keeps_counting_across_a_config_update(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Only the live VM with the lowest gauge slot reads the 65,536 replay buckets (src/vm_gauges.rs;
    every VM reading them cost each worker ~16 ms a tick). The gauge must still count the jtis the
    workers consume (3 VMs here: main thread and 2 workers), and keep counting after an ECDS update:
    the update's new root contexts learn the counting slot afresh (a VM Envoy makes anew takes
    over once the old slot is stale, 5 s; a VM it reuses keeps its slot) and read a full pass
    (32 s). This shows that some VM counts after the update, not which one."""
    gen = _serve_ecds(tmp_path_factory.mktemp("counter"))
    gw = next(gen)
    try:
        for i in range(2):
            req = tpsign.sign("GET", gw.url(f"/v1/orders/{i}"))
            expect_allow(gw.send_signed(req), jti=req["jti"], route_id="orders.get")
        gw.wait_for(lambda: _stat(gw, P + "replay.entries") == 2, timeout=40, what="replay.entries == 2")
        # A changed config (Envoy ignores an identical one): one unrelated revoked jti.
        bundle = harness.policy_bundle()
        bundle["revocations"] = [{"jti": "unrelated"}]
        _push_and_wait(gw, harness.base_plugin_config(policy_bundle=bundle))
        req = tpsign.sign("GET", gw.url("/v1/orders/3"))
        expect_allow(gw.send_signed(req), jti=req["jti"], route_id="orders.get")
        gw.wait_for(lambda: _stat(gw, P + "replay.entries") == 3, timeout=50,
                    what="replay.entries == 3 after the update")
        assert _stat(gw, P + "vm.count") == 3
    finally:
        gen.close()


# ---------------------------------------------------------------------------------------------
# Item 4: configuration updates leave no timers behind


def _thread_wakeups(pid: int) -> int:
    """Voluntary context switches of all Envoy threads: one per wakeup from its event loop."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
        except OSError:  # a thread that just exited
            pass
    return total


def _idle_rates(gw: Gateway, seconds: float = 6.0) -> tuple[float, float]:
    """(proofgate ticks/s, Envoy thread wakeups/s) over `seconds` without traffic."""
    assert gw.envoy is not None
    ticks0, wake0, t0 = _stat(gw, P + "vm.ticks"), _thread_wakeups(gw.envoy.pid), time.monotonic()
    time.sleep(seconds)
    ticks1, wake1, t1 = _stat(gw, P + "vm.ticks"), _thread_wakeups(gw.envoy.pid), time.monotonic()
    return (ticks1 - ticks0) / (t1 - t0), (wake1 - wake0) / (t1 - t0)


def test_200_config_updates_leave_the_tick_rate_flat(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    # With remote keys a root context's timer runs every 100 ms (jwks::TICK_MS), not 500 ms, so
    # a timer an update left behind would wake Envoy 10 times a second per VM: 200 leaking
    # updates would add about 4,000-6,000 wakeups/s (3 VMs), far above what a shared machine's
    # noise moves between two idle windows (+11 to +69/s measured with the 500 ms timer, which
    # is why this test no longer uses it: a CI run failed on +69 against a bound of 50).
    # Measured on Envoy 1.40: a build without the cancel in `Root::on_done` does not leak through
    # ECDS either (221 -> 216/s here), so this guards the outcome on this host, and the tick count
    # guards against old root contexts that stay alive (a build whose on_done returns false never
    # finishes the 200 updates).
    server = JwksServer().start()
    server.set_keys(okp_jwk(harness.KID, tpsign.key_from_seed()))
    gw = harness.start_gateway(jwks_config(server), tmp_path_factory.mktemp("reloads"), ecds=True,
                               extra_clusters=[server.cluster()])
    try:
        first = tpsign.sign("GET", gw.url("/v1/orders/1"))
        expect_allow(gw.send_signed(first), jti=first["jti"], route_id="orders.get")
        time.sleep(1)
        ticks_before, wakeups_before = _idle_rates(gw)
        for i in range(200):  # each update a new config: new root contexts, the old ones done
            config = jwks_config(server)
            config["comment"] = f"update {i}"
            _push_and_wait(gw, config)
        time.sleep(1)
        ticks_after, wakeups_after = _idle_rates(gw)
        print(f"ticks/s {ticks_before:.1f} -> {ticks_after:.1f}; "
              f"Envoy wakeups/s {wakeups_before:.0f} -> {wakeups_after:.0f}")
        # proofgate's own count: the main thread's VM and two workers, 2 ticks/s each (fewer when
        # a loaded machine delays timers, never more).
        assert 3 <= ticks_before <= 6.5 and ticks_after <= ticks_before + 1, (ticks_before, ticks_after)
        # A timer left behind never reaches proofgate (its context is gone) but still wakes Envoy.
        assert wakeups_after - wakeups_before < 1000, (wakeups_before, wakeups_after)
        # Each config is loaded by Envoy's config-check VM, the main thread's and both workers'.
        assert _stat(gw, P + "config.loads") == 4 * 201
        # The keys of every update came from the shared copy, not from a fetch per update.
        print(f"JWKS fetches: {server.count()}")
        assert server.count() <= 3, server.count()
    finally:
        harness.stop_checked(gw)
        server.stop()


# ---------------------------------------------------------------------------------------------
# Item 5: unauthenticated denies are rate-limited in the log, everything else is not


def test_credential_less_flood_is_rate_limited_in_the_log(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    for gw in harness.serve(harness.base_plugin_config(), tmp_path_factory.mktemp("flood")):
        flood = 600
        conns = [http.client.HTTPConnection(gw.host, gw.port, timeout=10) for _ in range(4)]
        start = time.monotonic()
        for i in range(flood):
            conn = conns[i % len(conns)]
            conn.request("GET", f"/v1/orders/{i}")
            resp = conn.getresponse()
            resp.read()
            assert (resp.status, resp.getheader("x-trustplane-reason")) == (401, "missing_passport")
        elapsed = time.monotonic() - start
        for conn in conns:
            conn.close()
        # Denies past the signature are always logged, even with the budget spent.
        spent = tpsign.sign("GET", gw.url("/v1/orders/1"))
        expect_allow(gw.send_signed(spent), jti=spent["jti"], route_id="orders.get")
        replay_ids = [expect_deny(gw.send_signed(spent), 401, "jti_replay", presented=True) for _ in range(30)]
        gw.wait_for(lambda: "audit lines of unauthenticated denies suppressed" in gw.log_text(),
                    what="the suppression summary line")
        gw.audit_event(replay_ids[-1])
        events = gw.audit_events()
        missing = [e for e in events if e["reason_code"] == "missing_passport"]
        stats = {k[len(P):]: v for k, v in gw.stats().items() if k.startswith(P)}
        print(f"{flood} denies in {elapsed:.2f} s: {len(missing)} audit lines, "
              f"{stats['audit.suppressed']} suppressed")
        # Per worker VM: the burst, then PER_SECOND for each second (rounded up) the flood lasted.
        bound = 2 * (LOG_BURST + LOG_PER_SECOND * (int(elapsed) + 2))
        assert LOG_BURST <= len(missing) <= bound, (len(missing), bound, elapsed)
        assert stats["deny.missing_passport"] == flood
        assert stats["audit.suppressed"] == flood - len(missing)
        assert sorted(e["event_id"] for e in events if e["reason_code"] == "jti_replay") == sorted(replay_ids)
        assert [e["jti"] for e in events if e["outcome"] == "allow"] == [spent["jti"]]
        # The access log, Envoy's own, still has every request.
        assert sum(1 for line in gw.access_log_lines() if " 401 deny missing_passport " in line) == flood


# ---------------------------------------------------------------------------------------------
# The shipped configs carry the recommended settings (README, "Recommended Envoy settings")


def _plugin_json(text: str) -> dict[str, Any]:
    """The JSON under the first `value: |` (the plugin configuration)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "value: |")
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        block.append(line)
    return json.loads("\n".join(block))


@pytest.mark.parametrize("path", ["envoy/envoy.yaml", "envoy/proofgate.ecds.yaml"])
def test_shipped_envoy_configs_use_the_recommended_settings(path: str) -> None:
    text = (REPO / path).read_text()
    assert re.search(r"^\s+failure_policy: FAIL_RELOAD$", text, re.M), path
    assert "fail_open" not in text, path
    assert re.search(r"^\s+allow_on_headers_stop_iteration: true$", text, re.M), path
    plugin = _plugin_json(text)
    assert plugin["max_body_bytes"] == 1048576


@pytest.mark.parametrize("path", ["envoy/envoy.yaml", "envoy/envoy-ecds.yaml"])
def test_shipped_bootstraps_normalise_paths_and_buffer_the_body(path: str) -> None:
    text = (REPO / path).read_text()
    for setting in ("normalize_path: true", "merge_slashes: true",
                    "path_with_escaped_slashes_action: REJECT_REQUEST",
                    "per_connection_buffer_limit_bytes: 1048576"):
        assert re.search(rf"^\s+{re.escape(setting)}$", text, re.M), (path, setting)


def test_istio_example_reloads_crashed_vms() -> None:
    text = (REPO / "examples/istio-wasmplugin.yaml").read_text()
    assert re.search(r"^  failStrategy: FAIL_RELOAD$", text, re.M)
    assert re.search(r"^\s+failure_policy: FAIL_RELOAD$", text, re.M)
    assert "fail_open" not in text


def test_shipped_ecds_example_serves(wasm: Path, envoy_bin: Path, tmp_path: Path) -> None:
    """envoy/envoy-ecds.yaml as shipped (its ports, its relative paths, run from the repo root):
    the filter config arrives from envoy/proofgate.ecds.yaml and enforces."""
    log = tmp_path / "envoy.log"
    envoy = subprocess.Popen([str(envoy_bin), "-c", "envoy/envoy-ecds.yaml", "--concurrency", "1",
                              "--base-id", str(harness._unique_base_id()), "--log-path", str(log)],
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if harness._http_get("http://127.0.0.1:9901/ready")[1].strip() == b"LIVE":
                    break
            except OSError:
                pass
            assert envoy.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        resp = harness.send("127.0.0.1", 10000, "GET", "/v1/orders/1")
        assert (resp.status, resp.header("x-trustplane-reason")) == (401, "missing_passport")
        stats = harness._http_get("http://127.0.0.1:9901/stats?filter=config_reload")[1].decode()
        assert f"{ECDS_RELOADS}: 1" in stats, stats
    finally:
        envoy.terminate()
        envoy.wait(10)


# ---------------------------------------------------------------------------------------------
# Item 8: what happens without the recommended settings, as the README describes it


def _patched_bootstrap(monkeypatch: pytest.MonkeyPatch, *, wasm_config: dict[str, Any] | None = None,
                       hcm: dict[str, Any] | None = None, listener: dict[str, Any] | None = None) -> None:
    original = harness.bootstrap

    def bootstrap(**kwargs: Any) -> dict[str, Any]:
        out = original(**kwargs)
        lst = out["static_resources"]["listeners"][0]
        lst.update(listener or {})
        manager = lst["filter_chains"][0]["filters"][0]["typed_config"]
        manager.update(hcm or {})
        manager["http_filters"][0]["typed_config"]["config"].update(wasm_config or {})
        return out

    monkeypatch.setattr(harness, "bootstrap", bootstrap)


def test_body_over_envoys_buffer_limit_gets_envoys_413(
        wasm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _patched_bootstrap(monkeypatch, listener={"per_connection_buffer_limit_bytes": 16384})
    body = b'{"pad":"' + b"x" * 32000 + b'"}'
    for gw in harness.serve(harness.base_plugin_config(max_body_bytes=65536), tmp_path):
        req = tpsign.sign("POST", gw.url("/v1/orders"), body, {"Content-Type": "application/json"})
        resp = gw.send_signed(req)
        # Envoy's own answer: plain text, no proofgate decision the client could quote.
        assert (resp.status, resp.body) == (413, b"Payload Too Large"), harness.describe(resp)
        assert resp.header("x-trustplane-decision") is None and resp.header("x-trustplane-event-id") is None
        assert len(gw.upstream_requests()) == resp.upstream_before
        # The same request fits when the buffer limit is at least max_body_bytes (the shipped setting).
    monkeypatch.undo()
    _patched_bootstrap(monkeypatch, listener={"per_connection_buffer_limit_bytes": 65536})
    for gw in harness.serve(harness.base_plugin_config(max_body_bytes=65536), tmp_path / "fits"):
        req = tpsign.sign("POST", gw.url("/v1/orders"), body, {"Content-Type": "application/json"})
        expect_allow(gw.send_signed(req), jti=req["jti"], route_id="orders.create")


def test_without_stop_iteration_flag_a_post_times_out_undecided(
        wasm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _patched_bootstrap(monkeypatch, wasm_config={"allow_on_headers_stop_iteration": False},
                       hcm={"stream_idle_timeout": "2s"})
    for gw in harness.serve(harness.base_plugin_config(), tmp_path):
        req = tpsign.sign("POST", gw.url("/v1/orders"), b'{"a":1}', {"Content-Type": "application/json"})
        resp = gw.send_signed(req)
        # Envoy's stream idle timeout answers (5 minutes by default; 2 s here): 504, plain text.
        assert (resp.status, resp.body) == (504, b"stream timeout"), harness.describe(resp)
        assert len(gw.upstream_requests()) == resp.upstream_before
        # What an operator sees: an access-log line with no proofgate decision, no audit line,
        # and Envoy's idle-timeout counter.
        line = gw.wait_for(lambda: [x for x in gw.access_log_lines() if '"POST /v1/orders" 504 - - ' in x],
                           what="the access log line")
        assert "event=-" in line[0], line
        assert gw.audit_events() == []
        assert gw.stats()["http.ingress.downstream_rq_idle_timeout"] == 1


def test_without_stop_iteration_flag_body_timeout_answers_first(
        wasm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # With body_timeout_ms below Envoy's stream idle timeout, proofgate answers the stuck POST
    # itself: 408 body_timeout, and the audit event says no body byte ever arrived.
    _patched_bootstrap(monkeypatch, wasm_config={"allow_on_headers_stop_iteration": False},
                       hcm={"stream_idle_timeout": "60s"})
    for gw in harness.serve(harness.base_plugin_config(body_timeout_ms=1000), tmp_path):
        req = tpsign.sign("POST", gw.url("/v1/orders"), b'{"a":1}', {"Content-Type": "application/json"})
        event_id = expect_deny(gw.send_signed(req), 408, "body_timeout", presented=True, gateway=gw)
        event = gw.audit_event(event_id)
        assert (event["reason_code"], event["detail_reason"]) == ("body_timeout", "body_timeout_no_body_bytes"), event
        assert gw.stats()["http.ingress.downstream_rq_idle_timeout"] == 0


@pytest.mark.parametrize("target", ["/v1/orders/a%2Fb", "/v1/orders/a%2fb", "/v1/orders/a%5Cb"])
def test_escaped_slashes_in_the_path_are_refused_by_envoy(gateway: Gateway, target: str) -> None:
    resp = gateway.send("GET", target)
    assert resp.status == 400 and resp.header("x-trustplane-decision") is None, harness.describe(resp)
    assert len(gateway.upstream_requests()) == resp.upstream_before

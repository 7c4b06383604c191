"""Harness self-test: Envoy, the echo upstream and the signer, without the proofgate filter.

These run even before the wasm is built, so a failure here is the harness's, not the filter's.
They also pin the Envoy 1.40 behaviours the filter tests rely on.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness
import tpsign


@pytest.fixture(scope="module")
def plain(envoy_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Gateway]:
    gw = harness.start_gateway(None, tmp_path_factory.mktemp("plain"))
    yield gw
    gw.stop()


def test_envoy_proxies_to_echo_upstream(plain: harness.Gateway) -> None:
    resp = plain.send("POST", "/v1/orders?b=2&a=1", [("Content-Type", "application/json")], b'{"x":1}')
    assert resp.status == 200, harness.describe(resp)
    seen = resp.json()
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/v1/orders?b=2&a=1", '{"x":1}')
    assert harness.header_values(seen, "host") == [plain.authority]
    assert harness.header_values(seen, "x-forwarded-proto") == ["http"]
    assert plain.upstream_requests()[-1] == seen
    line = plain.wait_for(lambda: [l for l in plain.access_log_lines() if '"POST /v1/orders' in l],
                          what="access log line")[0]
    assert " 200 - - " in line  # no filter, so no proofgate filter state


def test_envoy_normalizes_paths_before_filters(plain: harness.Gateway) -> None:
    resp = plain.send("GET", "/v1//orders/x/../123")
    assert resp.json()["path"] == "/v1/orders/123"


def test_envoy_coalesces_duplicate_authorization(plain: harness.Gateway) -> None:
    # Envoy keeps Authorization as an inline header: a second copy is appended with a comma, so
    # a filter never sees two Authorization values (other headers stay separate).
    resp = plain.send("GET", "/x", [("Authorization", "Bearer a"), ("Authorization", "Bearer b"),
                                    ("X-Dup", "1"), ("X-Dup", "2")])
    seen = resp.json()
    assert harness.header_values(seen, "authorization") == ["Bearer a,Bearer b"]
    assert harness.header_values(seen, "x-dup") == ["1", "2"]


def test_envoy_header_size_limit(plain: harness.Gateway) -> None:
    # Default max_request_headers_kb is 60: 32 KiB reaches filters, 64 KiB gets Envoy's own 431.
    assert plain.send("GET", "/x", [("Authorization", "Bearer " + "a" * 32 * 1024)]).status == 200
    resp = plain.send("GET", "/x", [("Authorization", "Bearer " + "a" * 64 * 1024)])
    assert resp.status == 431 and resp.header("x-trustplane-reason") is None


def test_worker_stats_exist(plain: harness.Gateway) -> None:
    stats = plain.stats()
    workers = [k for k in stats if k.startswith("listener.") and ".worker_" in k
               and k.endswith(".downstream_cx_total")]
    assert len(workers) == 2, workers


def test_signer_reproduces_sdk_vector() -> None:
    vector_path = harness.REPO_ROOT / "tests/vectors/sdk-signed-request-demo.json"
    case = json.loads(vector_path.read_text())["sign_request_case"]
    req = tpsign.sign("POST", case["request"]["url"], case["request"]["body_utf8"],
                      case["request"]["headers"], "orders.create", nonce="nonce-demo-0001",
                      now=case["passport_claims"]["iat"], jti=case["passport_claims"]["jti"])
    assert req["passport"] == case["passport_token"]
    assert req["canonical_lines"] == case["canonical_lines"]
    assert {k: req["headers"][k] for k in case["headers"]} == case["headers"]


def _cli(*args: str) -> str:
    return subprocess.run([sys.executable, str(harness.EXAMPLES / "sign_request.py"), *args],
                          check=True, capture_output=True, text=True).stdout


def test_sign_request_cli_formats() -> None:
    url = "http://127.0.0.1:10000/v1/orders?b=2&a=1"
    words = shlex.split(_cli("--method", "POST", "--url", url, "-H", "Content-Type: application/json",
                             "--data", "{\"note\":\"it's\"}"))
    assert words[:5] == ["curl", "-i", "-X", "POST", url]
    assert words[-2:] == ["--data-binary", "{\"note\":\"it's\"}"]
    assert "Accept:" in words and "Content-Type: application/json" in words

    one = json.loads(_cli("--url", "http://127.0.0.1:10000/v1/orders/7", "--format", "json"))
    assert one["method"] == "GET" and one["body"] == ""
    assert set(one["headers"]) == {"X-TrustPlane-Nonce", "Authorization", "X-TrustPlane-Transcript-SHA256",
                                   "X-TrustPlane-Proof", "X-TrustPlane-Body-SHA256"}

    lines = _cli("--url", "http://127.0.0.1:10000/v1/orders/7", "--format", "jsonl", "--count", "3").splitlines()
    reqs = [json.loads(line) for line in lines]
    assert len({r["headers"]["X-TrustPlane-Nonce"] for r in reqs}) == 3
    assert len({tpsign.token_parts(r["headers"]["Authorization"][7:])[1]["jti"] for r in reqs}) == 3


def test_validate_mode_accepts_plain_bootstrap(envoy_bin: Path, tmp_path: Path) -> None:
    config = tmp_path / "envoy.yaml"
    config.write_text(json.dumps(harness.bootstrap(upstream_port=9, plugin_config=None,
                                                   wasm=harness.wasm_path(), access_log=tmp_path / "a.log")))
    proc = subprocess.run(harness.envoy_command(config, "--mode", "validate"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

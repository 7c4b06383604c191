"""The `make run` demo as the README promises it: envoy/envoy.yaml on 127.0.0.1:10000 in front of
examples/upstream.py on :10001; the curl printed by examples/sign_request.py gets 200 (and 401
jti_replay the second time), a bare curl gets 401 missing_passport."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

import harness

REPO = harness.REPO_ROOT
SIGNED_POST = [
    sys.executable, str(REPO / "examples" / "sign_request.py"), "--method", "POST",
    "--url", "http://127.0.0.1:10000/v1/orders?b=2&a=1", "-H", "Content-Type: application/json",
    "--data", '{"order_id":"ord_123","amount":"42.00"}', "--format", "curl",
]


def _curl(args: list[str]) -> tuple[int, dict[str, str], str]:
    out = subprocess.run(args + ["-sS", "--max-time", "10"], capture_output=True, text=True, check=True).stdout
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


@pytest.fixture(scope="module")
def demo(wasm: Path, envoy_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    logs = tmp_path_factory.mktemp("demo")
    upstream = subprocess.Popen([sys.executable, str(REPO / "examples" / "upstream.py"), "--port", "10001"],
                                stdout=open(logs / "upstream.log", "w"), stderr=subprocess.STDOUT)
    envoy = subprocess.Popen([str(envoy_bin), "-c", "envoy/envoy.yaml", "--concurrency", "2",
                              "--base-id", str(harness._unique_base_id()), "--log-level", "warn",
                              "--component-log-level", "wasm:info"],
                             cwd=REPO, stdout=open(logs / "envoy.log", "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if urllib.request.urlopen("http://127.0.0.1:9901/ready", timeout=1).read().strip() == b"LIVE":
                    break
            except OSError:
                pass
            if envoy.poll() is not None or time.monotonic() > deadline:
                pytest.fail("demo Envoy did not become ready:\n" + (logs / "envoy.log").read_text()[-3000:])
            time.sleep(0.2)
        yield
    finally:
        envoy.terminate()
        upstream.terminate()
        envoy.wait(10)
        upstream.wait(10)


def test_demo_config_validates(envoy_bin: Path, wasm: Path) -> None:
    run = subprocess.run([str(envoy_bin), "--mode", "validate", "-c", "envoy/envoy.yaml",
                          "--base-id", str(harness._unique_base_id())],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


def test_printed_curl_is_allowed_once_and_bare_curl_is_refused(demo: None) -> None:
    command = subprocess.run(SIGNED_POST, capture_output=True, text=True, check=True).stdout.strip()
    args = shlex.split(command)
    assert args[:2] == ["curl", "-i"]

    status, headers, body = _curl(args)
    assert status == 200, body
    echo = json.loads(body)
    seen = dict(echo["headers"])
    assert seen["x-trustplane-subject"] == "external:jwks:demo-caller"
    assert seen["x-trustplane-route-id"] == "orders.create"
    assert "authorization" not in seen
    assert echo["body"] == '{"order_id":"ord_123","amount":"42.00"}'

    status, headers, body = _curl(args)
    assert (status, headers["x-trustplane-reason"]) == (401, "jti_replay")

    status, headers, body = _curl(["curl", "-i", "http://127.0.0.1:10000/v1/orders/123"])
    assert (status, headers["x-trustplane-reason"]) == (401, "missing_passport")
    assert headers["www-authenticate"] == 'Bearer realm="proofgate"'
    assert json.loads(body) == {"allowed": False, "reason": "missing_passport",
                                "event_id": headers["x-trustplane-event-id"]}


def test_http2_request_with_body_is_verified(demo: None) -> None:
    """The same signed POST over cleartext HTTP/2 (prior knowledge): the body arrives in DATA
    frames and the stream ends separately, and the request still verifies exactly once."""
    command = subprocess.run(SIGNED_POST, capture_output=True, text=True, check=True).stdout.strip()
    args = shlex.split(command) + ["--http2-prior-knowledge"]
    status, _, body = _curl(args)
    assert status == 200, body
    assert json.loads(body)["body"] == '{"order_id":"ord_123","amount":"42.00"}'
    status, headers, _ = _curl(args)
    assert (status, headers["x-trustplane-reason"]) == (401, "jti_replay")

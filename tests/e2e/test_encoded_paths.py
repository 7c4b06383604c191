"""Encoded separators never pass an exempt prefix or a `{name}` placeholder (issue 7 item 5).

Once with the README's HTTP connection manager (`path_with_escaped_slashes_action:
REJECT_REQUEST`: Envoy refuses `%2F` / `%5C` itself), once with an HCM that keeps them
unchanged, where proofgate alone must fail closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

import harness
import tpsign
from harness import Gateway, expect_deny

# The exempt prefix is GET /healthz (harness.base_plugin_config).
EXEMPT_ESCAPES = ["/healthz/..%2Fadmin", "/healthz/..%5Cadmin", "/healthz/%2e%2e%2fadmin",
                  "/healthz/..%2fadmin", "/healthz/%2E%2E%5Cadmin"]
# GET /v1/orders/{order_id} is a placeholder route.
PLACEHOLDER_ESCAPES = ["/v1/orders/..%2Fadmin", "/v1/orders/..%5Cadmin",
                       "/v1/orders/%2e%2e%2fadmin", "/v1/orders/a%2Fb"]


@pytest.fixture(scope="module")
def keeping(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """An HCM that forwards escaped slashes unchanged: only the filter stands in the way."""
    workdir = tmp_path_factory.mktemp("encoded_keep")
    yield from harness.serve(harness.base_plugin_config(), workdir,
                             escaped_slashes_action="KEEP_UNCHANGED")


@pytest.mark.parametrize("target", EXEMPT_ESCAPES + PLACEHOLDER_ESCAPES)
def test_envoy_rejects_escaped_slashes_with_the_readme_hcm(gateway: Gateway, target: str) -> None:
    resp = gateway.send("GET", target)
    assert resp.status == 400, harness.describe(resp)
    assert len(gateway.upstream_requests()) == resp.upstream_before


@pytest.mark.parametrize("target", EXEMPT_ESCAPES)
def test_filter_alone_keeps_encoded_separators_out_of_exempt_prefixes(keeping: Gateway,
                                                                    target: str) -> None:
    resp = keeping.send("GET", target)
    # Not exempt, and no bundle route matches: refused before any credential is asked for.
    expect_deny(resp, 403, "bundle_route_missing", presented=False, gateway=keeping)


@pytest.mark.parametrize("target", PLACEHOLDER_ESCAPES)
def test_filter_alone_keeps_encoded_separators_out_of_placeholders(keeping: Gateway,
                                                                  target: str) -> None:
    expect_deny(keeping.send("GET", target), 403, "bundle_route_missing", presented=False,
                gateway=keeping)
    # Signed for exactly that path, it is still no route's request.
    req = tpsign.sign("GET", keeping.url(target))
    expect_deny(keeping.send_signed(req), 403, "bundle_route_missing", presented=True,
                gateway=keeping)


def test_plain_exempt_and_placeholder_paths_still_work_without_rejection(keeping: Gateway) -> None:
    resp = keeping.send("GET", "/healthz/deep")
    assert resp.status == 200, harness.describe(resp)
    req = tpsign.sign("GET", keeping.url("/v1/orders/a%20b"))
    resp = keeping.send_signed(req)
    assert resp.status == 200, harness.describe(resp)

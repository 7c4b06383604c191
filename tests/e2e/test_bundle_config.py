"""Policy-bundle problems are refused at load (issue 3): `envoy --mode validate` fails and
proofgate's log line names the JSON path of the problem. Native tests (src/config/tests.rs) cover
every rule; this is a representative table through real Envoy. The validations run
concurrently in one module fixture (each is a separate `envoy --mode validate` process).
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest

import harness

Mutation = Callable[[dict[str, Any]], None]
R = "$.policy_bundle.route_groups[0].routes"


def _routes(c: dict[str, Any]) -> list[dict[str, Any]]:
    return c["policy_bundle"]["route_groups"][0]["routes"]


def _source(c: dict[str, Any]) -> dict[str, Any]:
    return _routes(c)[0]["allowed_sources"][0]


def _duplicate_route_id(c: dict[str, Any]) -> None:
    _routes(c)[2]["route_id"] = "orders.create"


def _overlapping_templates(c: dict[str, Any]) -> None:
    # GET /v1/{kind}/{id} matches every GET /v1/orders/{order_id} request.
    _routes(c).append({**copy.deepcopy(_routes(c)[1]), "route_id": "any.get", "path_template": "/v1/{kind}/{id}"})


def _both_subject_selectors(c: dict[str, Any]) -> None:
    _source(c)["subject_prefix"] = "external:"


def _no_subject_selector(c: dict[str, Any]) -> None:
    del _source(c)["subject_exact"]


def _unknown_source_signer_class(c: dict[str, Any]) -> None:
    _source(c)["required_key_binding"] = "yubikey"


def _invalid_placeholder(c: dict[str, Any]) -> None:
    _routes(c)[1]["path_template"] = "/v1/orders/{order-id}"


def _unknown_api(c: dict[str, Any]) -> None:
    c["policy_bundle"]["route_groups"][0]["api_id"] = "billing-api"


def _revocation_two_kinds(c: dict[str, Any]) -> None:
    c["policy_bundle"]["revocations"] = [{"jti": "a"}, {"jti": "b", "sub": "c", "not_before": 1}]


def _malformed_txn_ceiling(c: dict[str, Any]) -> None:
    _source(c)["context_policy"] = {"max_txn_value": "100,00"}


BAD_BUNDLES: dict[str, tuple[Mutation, str]] = {
    # name: (mutation, the start of proofgate's message: "<JSON path>: <what>")
    "duplicate_route_id": (_duplicate_route_id, f"{R}[2].route_id: duplicate route_id \"orders.create\""),
    "overlapping_templates": (_overlapping_templates,
                              f"{R}[3].path_template: matches the same GET requests as route \"orders.get\""),
    "both_subject_selectors": (_both_subject_selectors, f"{R}[0].allowed_sources[0]: has both"),
    "no_subject_selector": (_no_subject_selector, f"{R}[0].allowed_sources[0]: needs exactly one"),
    "unknown_source_signer_class": (_unknown_source_signer_class,
                                    f"{R}[0].allowed_sources[0].required_key_binding: unknown signer class"),
    "invalid_placeholder": (_invalid_placeholder, f"{R}[1].path_template: invalid placeholder"),
    "unknown_api": (_unknown_api, "$.policy_bundle.route_groups[0].api_id: names no API"),
    "revocation_two_kinds": (_revocation_two_kinds, "$.policy_bundle.revocations[1]: must be exactly one"),
    "malformed_txn_ceiling": (_malformed_txn_ceiling,
                              f"{R}[0].allowed_sources[0].context_policy.max_txn_value: must be"),
}


def _control(c: dict[str, Any]) -> None:
    """Every field the table breaks, in a valid form."""
    _source(c)["context_policy"] = {"max_txn_value": "100.00", "required_tool_name": "t"}
    c["policy_bundle"]["revocations"] = [
        {"jti": "a"}, {"sub": "external:jwks:demo-caller", "not_before": 1}, {"issuer": harness.ISSUER, "kid": "k"}]


@pytest.fixture(scope="module")
def validations(wasm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bool, str]]:
    cases = {"control": _control, **{name: mutate for name, (mutate, _) in BAD_BUNDLES.items()}}
    jobs = []
    for name, mutate in cases.items():
        config = harness.base_plugin_config()
        mutate(config)
        jobs.append((name, config, tmp_path_factory.mktemp(name)))
    with ThreadPoolExecutor(4) as pool:
        results = pool.map(lambda job: harness.validate_config(job[1], job[2]), jobs)
        return {name: result for (name, _, _), result in zip(jobs, results)}


def test_policy_bundle_fields_validate(validations: dict[str, tuple[bool, str]]) -> None:
    ok, output = validations["control"]
    assert ok, output[-3000:]


@pytest.mark.parametrize("name", sorted(BAD_BUNDLES))
def test_bad_bundle_refused(validations: dict[str, tuple[bool, str]], name: str) -> None:
    message = BAD_BUNDLES[name][1]
    ok, output = validations[name]
    assert not ok, f"envoy --mode validate accepted {name}:\n{output[-3000:]}"
    assert "Unable to create Wasm plugin proofgate" in output, output[-3000:]
    rejected = [line for line in output.splitlines() if "proofgate: configuration rejected: " in line]
    assert len(rejected) >= 1, output[-3000:]
    said = rejected[0].split("proofgate: configuration rejected: ", 1)[1]
    assert said.startswith(message), f"{said!r} does not start with {message!r}"

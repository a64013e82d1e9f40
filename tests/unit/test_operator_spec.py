"""The spec model and the generated CRD schema accept and reject the same inputs.

The case tables are reused by tests/integration/test_operator_kube.py, which sends them to a real
kube-apiserver: one list of cases, two validators, no drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from cipulse.operator import crd
from cipulse.operator.spec import MonitorSpec, duration_seconds, parse_spec
from cipulse.operator.url_policy import INSECURE_URL_ERROR

ROOT = Path(__file__).resolve().parents[2]

VALID_SPECS: dict[str, dict[str, Any]] = {
    "minimal": {"repository": "octo-org/hello-world"},
    "full": {
        "repository": "octo-org/hello.world_2",
        "tokenSecretRef": {"name": "github-token", "key": "token"},
        "apiUrl": "https://ghe.example.com/api/v3",
        "pollInterval": "1h30m",
        "mode": "graphql",
        "workflows": ["ci.yml"],
        "branches": ["main"],
        "backfillDays": 365,
        "health": {"windowHours": 48, "degradedSuccessRate": 0.95, "failingSuccessRate": 0.8},
        "sinks": [
            {
                "webhook": {
                    "url": "https://hooks.example.com/x",
                    "secretRef": {"name": "hook", "key": "secret"},
                }
            },
            {"mcp": {"url": "https://mcp.example.com/mcp", "tool": "notify"}},
        ],
    },
    "interval at lower bound": {"repository": "a/b", "pollInterval": "30s"},
    "interval at upper bound": {"repository": "a/b", "pollInterval": "24h"},
    "http apiUrl on loopback": {"repository": "a/b", "apiUrl": "http://127.0.0.1:8080/api/v3"},
    "http apiUrl on localhost": {"repository": "a/b", "apiUrl": "http://localhost:8080/api/v3"},
    "http apiUrl on ipv6 loopback": {"repository": "a/b", "apiUrl": "http://[::1]:8080/api/v3"},
    "http mcp sink without a bearer": {
        "repository": "a/b",
        "sinks": [{"mcp": {"url": "http://mcp.example.com/mcp", "tool": "t"}}],
    },
    "http mcp sink on loopback with a bearer": {
        "repository": "a/b",
        "sinks": [{"mcp": {"url": "http://127.0.0.1:9/mcp", "tool": "t", "secretRef": {"name": "b"}}}],
    },
    "http webhook sink (signed, its key never sent)": {
        "repository": "a/b",
        "sinks": [{"webhook": {"url": "http://hooks.example.com/x", "secretRef": {"name": "h"}}}],
    },
}

INVALID_SPECS: dict[str, dict[str, Any]] = {
    "repository without owner": {"repository": "hello-world"},
    "repository with spaces": {"repository": "octo org/hello"},
    "repository with extra segment": {"repository": "a/b/c"},
    "owner starting with hyphen": {"repository": "-a/b"},
    "interval too short": {"repository": "a/b", "pollInterval": "10s"},
    "interval too long": {"repository": "a/b", "pollInterval": "25h"},
    "interval not a duration": {"repository": "a/b", "pollInterval": "often"},
    "backfill out of bounds": {"repository": "a/b", "backfillDays": 0},
    "backfill too long": {"repository": "a/b", "backfillDays": 366},
    "success rate above one": {"repository": "a/b", "health": {"degradedSuccessRate": 1.5}},
    "failing above degraded": {
        "repository": "a/b",
        "health": {"degradedSuccessRate": 0.5, "failingSuccessRate": 0.6},
    },
    "queue thresholds reversed": {
        "repository": "a/b",
        "health": {"queueP95DegradedSeconds": 900, "queueP95FailingSeconds": 60},
    },
    "sink with both kinds": {
        "repository": "a/b",
        "sinks": [{"webhook": {"url": "https://x"}, "mcp": {"url": "https://y", "tool": "t"}}],
    },
    "empty sink": {"repository": "a/b", "sinks": [{}]},
    "webhook url not http": {"repository": "a/b", "sinks": [{"webhook": {"url": "ftp://x"}}]},
    "mode unknown": {"repository": "a/b", "mode": "scrape"},
    "bad secret name": {"repository": "a/b", "tokenSecretRef": {"name": "Not_A_Name"}},
}

# Specs that would send a credential over plain http to another machine (see cipulse.operator.url_policy).
INSECURE_SPECS: dict[str, dict[str, Any]] = {
    "http apiUrl on a remote host": {"repository": "a/b", "apiUrl": "http://ghe.example.com/api/v3"},
    "http apiUrl with loopback userinfo": {"repository": "a/b", "apiUrl": "http://127.0.0.1@evil.example/v3"},
    "http apiUrl on a 127-prefixed name": {"repository": "a/b", "apiUrl": "http://127.0.0.1.nip.io/api/v3"},
    "http apiUrl with a backslash trick": {"repository": "a/b", "apiUrl": "http://127.0.0.1\\@evil.example/"},
    "http apiUrl on an upper-case host": {"repository": "a/b", "apiUrl": "http://LOCALHOST:8080/api/v3"},
    "http mcp sink with a bearer": {
        "repository": "a/b",
        "sinks": [{"mcp": {"url": "http://mcp.example.com/mcp", "tool": "t", "secretRef": {"name": "b"}}}],
    },
}
INVALID_SPECS.update(INSECURE_SPECS)

# The API server prunes or (with kubectl's strict field validation) rejects these; pydantic rejects them.
UNKNOWN_FIELD_SPECS: dict[str, dict[str, Any]] = {
    "unknown top-level field": {"repository": "a/b", "pollIntervall": "5m"},
    "unknown nested field": {"repository": "a/b", "health": {"windowHour": 3}},
}


@pytest.mark.parametrize("raw", VALID_SPECS.values(), ids=VALID_SPECS.keys())
def test_valid_specs_parse(raw: dict[str, Any]) -> None:
    spec = parse_spec(raw)
    assert spec.repository == raw["repository"]


@pytest.mark.parametrize(
    "raw", {**INVALID_SPECS, **UNKNOWN_FIELD_SPECS}.values(), ids=[*INVALID_SPECS, *UNKNOWN_FIELD_SPECS]
)
def test_invalid_specs_rejected(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_spec(raw)


@pytest.mark.parametrize("raw", INSECURE_SPECS.values(), ids=INSECURE_SPECS.keys())
def test_insecure_urls_have_their_own_error_type(raw: dict[str, Any]) -> None:
    """The operator turns this error type into the InsecureUrl condition (not a generic InvalidSpec)."""
    with pytest.raises(ValidationError) as caught:
        parse_spec(raw)
    errors = caught.value.errors()
    assert [error["type"] for error in errors] == [INSECURE_URL_ERROR]
    assert "must use https://" in errors[0]["msg"] and "loopback" in errors[0]["msg"]


def test_defaults_are_explicit() -> None:
    spec = parse_spec({"repository": "a/b"})
    assert spec.api_url == "https://api.github.com"
    assert spec.poll_seconds == 300
    assert spec.backfill_days == 30
    assert spec.health.degraded_success_rate >= spec.health.failing_success_rate


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2h0m5s", 7205)])
def test_duration_seconds(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "1d", "m5", "5m1h"])
def test_duration_rejects_other_forms(text: str) -> None:
    with pytest.raises(ValueError):
        duration_seconds(text)


def test_crd_file_is_generated_from_the_model() -> None:
    """deploy/crd and the Helm chart carry exactly what the model generates."""
    generated = crd.render()
    assert (ROOT / "deploy/crd/cicdmonitors.yaml").read_text() == generated
    assert (ROOT / "deploy/helm/cipulse/crds/cicdmonitors.yaml").read_text() == generated


def _walk(node: dict[str, Any], path: str = "spec") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, child in node.get("properties", {}).items():
        found += _walk(child, f"{path}.{name}")
    if "items" in node:
        found += _walk(node["items"], f"{path}[]")
    return found


def test_spec_schema_is_structural() -> None:
    for path, node in _walk(crd.spec_schema()):
        assert "type" in node, path
        assert not {"$ref", "anyOf", "oneOf", "allOf", "additionalProperties"} & set(node), path
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        if node["type"] == "string" and "enum" not in node:
            assert "maxLength" in node, f"{path}: unbounded strings make CEL cost estimates fail"
        if node["type"] == "array":
            assert "maxItems" in node, path


def test_every_model_field_is_in_the_schema() -> None:
    properties = crd.spec_schema()["properties"]
    assert set(properties) == {field.alias for field in MonitorSpec.model_fields.values()}


def test_sample_manifest_is_a_valid_monitor() -> None:
    docs = [doc for doc in yaml.safe_load_all((ROOT / "deploy/samples/my-repo.yaml").read_text()) if doc]
    monitors = [doc for doc in docs if doc["kind"] == crd.KIND]
    assert monitors
    for doc in monitors:
        assert doc["apiVersion"] == f"{crd.GROUP}/{crd.VERSION}"
        parse_spec(doc["spec"])


def test_unknown_keyword_fails_generation() -> None:
    with pytest.raises(ValueError, match="no structural equivalent"):
        crd.structural({"type": "number", "exclusiveMinimum": 0}, {})


def test_unions_fail_generation() -> None:
    with pytest.raises(ValueError, match="unions"):
        crd.structural({"anyOf": [{"type": "integer"}, {"type": "string"}]}, {})


def test_model_round_trips_through_aliases() -> None:
    spec = parse_spec(VALID_SPECS["full"])
    again = MonitorSpec.model_validate(spec.model_dump(by_alias=True, exclude_none=True))
    assert again == spec

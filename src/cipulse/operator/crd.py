"""Generate the CiCdMonitor CustomResourceDefinition from the pydantic spec model.

Kubernetes wants a *structural* schema: every node typed, no $ref, no nullable unions, no
additionalProperties next to properties. Pydantic's JSON Schema is converted node by node with a
whitelist of keywords, so a model change the API server could not express fails loudly here
instead of drifting silently.  `python -m cipulse.operator.crd --write .` refreshes
the repository's copies.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from cipulse.operator.spec import MonitorSpec

GROUP = "cipulse.io"
VERSION = "v1alpha1"
KIND = "CiCdMonitor"
PLURAL = "cicdmonitors"
SINGULAR = "cicdmonitor"
SHORT_NAMES = ["cim"]

_COPIED = (
    "type",
    "description",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "enum",
    "default",
    "required",
    "x-kubernetes-validations",
)
_DROPPED = ("title", "additionalProperties")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "anyOf" in node:
        # Optional[X] -> X: absence, not null, is how Kubernetes says "not set".
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unions cannot be expressed in a structural schema: {node}")
        merged = {**_resolve(options[0], defs), **{k: v for k, v in node.items() if k != "anyOf"}}
        if merged.get("default", 0) is None:
            del merged["default"]
        return merged
    return node


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Convert one pydantic JSON Schema node into a Kubernetes structural schema node."""
    node = _resolve(node, defs)
    unknown = set(node) - set(_COPIED) - set(_DROPPED) - {"properties", "items"}
    if unknown:
        raise ValueError(f"keywords {sorted(unknown)} have no structural equivalent: {node}")
    out: dict[str, Any] = {key: node[key] for key in _COPIED if key in node}
    if "type" not in out:
        raise ValueError(f"every structural schema node needs a type: {node}")
    if "properties" in node:
        out["properties"] = {name: structural(child, defs) for name, child in node["properties"].items()}
    if "items" in node:
        out["items"] = structural(node["items"], defs)
    if out.get("type") == "object" and "default" in out:
        del out["default"]  # object defaults come from the nested properties' own defaults
    if out.get("type") == "array" and out.get("default") == []:
        del out["default"]
    return out


def spec_schema() -> dict[str, Any]:
    raw = MonitorSpec.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return structural(raw, defs)


def _condition_schema() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": text,
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": text,
            "message": text,
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer"},
        },
    }


def status_schema() -> dict[str, Any]:
    text = {"type": "string"}
    count = {"type": "integer"}
    return {
        "type": "object",
        "properties": {
            "observedGeneration": count,
            "conditions": {
                "type": "array",
                "items": _condition_schema(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "health": {"type": "string", "enum": ["Unknown", "Healthy", "Degraded", "Failing"]},
            "healthReasons": {"type": "array", "items": text},
            "lastSyncTime": {"type": "string", "format": "date-time"},
            "watermark": {"type": "string", "format": "date-time"},
            "runs": count,
            "jobs": count,
            "lastSyncRuns": count,
            "lastSyncJobs": count,
            "rateLimitRemaining": count,
            "pendingDeliveries": count,
            "successRate": {"type": "number"},
            "p95DurationSeconds": {"type": "number"},
        },
    }


def crd_manifest() -> dict[str, Any]:
    columns = [
        {"name": "Repository", "type": "string", "jsonPath": ".spec.repository"},
        {"name": "Health", "type": "string", "jsonPath": ".status.health"},
        {"name": "Jobs", "type": "integer", "jsonPath": ".status.jobs", "priority": 1},
        {"name": "Last Sync", "type": "date", "jsonPath": ".status.lastSyncTime"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "plural": PLURAL, "singular": SINGULAR, "shortNames": SHORT_NAMES},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Repeated subschemas are written out in full: anchors in a CRD only confuse readers."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render() -> str:
    header = (
        "# Generated from cipulse.operator.spec by `python -m cipulse.operator.crd --write .`; do not edit.\n"
    )
    return header + yaml.dump(crd_manifest(), Dumper=_NoAliasDumper, sort_keys=False, width=110)


TARGETS = ("deploy/crd/cicdmonitors.yaml", "deploy/helm/cipulse/crds/cicdmonitors.yaml")


if __name__ == "__main__":
    # `--write ROOT` refreshes the manifest in the repository (plain CRD and Helm chart); otherwise print it.
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        from pathlib import Path

        for target in TARGETS:
            (Path(sys.argv[2]) / target).write_text(render())
    else:
        sys.stdout.write(render())

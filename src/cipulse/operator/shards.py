"""Sharding: which CiCdMonitors an operator instance serves, from a kubectl-like label selector."""

from __future__ import annotations

from typing import Any

import kopf


def parse_selector(text: str) -> dict[str, Any]:
    """`shard=a,team` -> labels filter: `k=v` equals, `k` present, `!k` absent."""
    labels: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part.startswith("!"):
            labels[part[1:]] = kopf.ABSENT
        elif "=" in part:
            key, value = part.split("=", 1)
            labels[key.strip()] = value.strip()
        else:
            labels[part] = kopf.PRESENT
    return labels

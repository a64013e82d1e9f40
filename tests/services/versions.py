"""Pinned versions and the artifact cache, read from scripts/versions.env like the provisioning scripts do."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "scripts" / "versions.env"


def read_versions() -> dict[str, str]:
    """KEY=VALUE pairs of scripts/versions.env, with $HOME expanded the way the shell scripts see them."""
    values: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = os.path.expandvars(value.strip())
    return values


def cache_root() -> Path:
    """~/.cache/cipulse unless CIPULSE_CACHE_DIR says otherwise (the same rule as scripts/provision/*.sh)."""
    configured = os.environ.get("CIPULSE_CACHE_DIR") or read_versions().get("CACHE_DIR_DEFAULT")
    return Path(configured or "~/.cache/cipulse").expanduser()

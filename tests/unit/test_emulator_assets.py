"""The pinned GitHub API descriptions: one set of versions, fetched once, the real files."""

from __future__ import annotations

import json
from pathlib import Path

from cipulse.emulator.assets import DEFAULT_VERSIONS, GitHubAssets, ensure_github_assets, read_versions

VERSIONS_ENV = Path(__file__).resolve().parents[2] / "scripts" / "versions.env"


def test_built_in_versions_equal_the_pinned_ones() -> None:
    pinned = {}
    for line in VERSIONS_ENV.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key in DEFAULT_VERSIONS:
            pinned[key] = value.strip()
    assert pinned == DEFAULT_VERSIONS


def test_versions_file_overrides_defaults(tmp_path: Path) -> None:
    custom = tmp_path / "versions.env"
    custom.write_text("# comment\nGITHUB_OPENAPI_VERSION=1.2.3\nUNRELATED=x\n")
    versions = read_versions(custom)
    assert versions["GITHUB_OPENAPI_VERSION"] == "1.2.3"
    assert versions["GITHUB_GRAPHQL_SCHEMA_VERSION"] == DEFAULT_VERSIONS["GITHUB_GRAPHQL_SCHEMA_VERSION"]
    assert "UNRELATED" not in versions


def test_assets_are_the_published_files_and_fetching_is_idempotent(github_assets: GitHubAssets) -> None:
    assert ensure_github_assets() == github_assets
    schema = json.loads(Path(github_assets.graphql_schema_path).read_text())
    assert "__schema" in schema.get("data", schema)
    openapi = json.loads(Path(github_assets.openapi_path).read_text())
    assert {"workflow-run", "job", "workflow"} <= set(openapi["components"]["examples"])
    hooks = json.loads(Path(github_assets.webhook_examples_path).read_text())
    assert {"workflow_run", "workflow_job"} <= {entry["name"] for entry in hooks}
    versions = read_versions()
    assert versions["GITHUB_OPENAPI_VERSION"] in str(github_assets.openapi_path)

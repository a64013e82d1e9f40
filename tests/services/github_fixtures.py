"""GitHub for tests: the published API descriptions and a running cipulse GitHub emulator.

`github_assets` fetches (once, cached) GitHub's real GraphQL schema, OpenAPI description and webhook
examples from npm. `emulator` is a session-wide emulator with the default history; tests that change its
state (faults, new activity, small rate limits) use `fresh_emulator` instead, which is theirs alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from cipulse.emulator.assets import GitHubAssets, ensure_github_assets

if TYPE_CHECKING:
    from cipulse.emulator import Emulator


@pytest.fixture(scope="session")
def github_assets() -> GitHubAssets:
    return ensure_github_assets()


@pytest.fixture(scope="session")
def emulator(github_assets: GitHubAssets) -> Iterator[Emulator]:
    from cipulse.emulator import Emulator

    with Emulator(seed=0) as running:
        yield running


@pytest.fixture
def fresh_emulator(github_assets: GitHubAssets) -> Iterator[Emulator]:
    from cipulse.emulator import Emulator

    with Emulator(seed=1, jobs_per_repo=400) as running:
        yield running

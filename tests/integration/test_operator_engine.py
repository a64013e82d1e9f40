"""MonitorEngine (the poll shared by the operator and `cipulse up`) against the emulator over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cipulse.emulator import Emulator
from cipulse.operator.engine import MonitorEngine
from cipulse.operator.spec import MonitorSpec
from cipulse.store import open_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    with Emulator(seed=41, jobs_per_repo=150) as running:
        yield running


def _engine(tmp_path: Path, emulator: Any, repository: str, **health: Any) -> MonitorEngine:
    spec = MonitorSpec.model_validate(
        {"repository": repository, "apiUrl": emulator.api_url, "pollInterval": "30s", "health": health}
    )
    return MonitorEngine("test/engine", spec, open_store(f"sqlite:///{tmp_path / 'engine.db'}"))


async def test_poll_collects_everything_then_nothing_new(tmp_path: Path, emulator: Any) -> None:
    repository = emulator.repositories[0]
    engine = _engine(tmp_path, emulator, repository)
    first = await engine.poll(emulator.token)
    assert first.ok, first.message
    assert first.jobs == len(emulator.truth.jobs(repository)) == first.synced_jobs
    assert first.runs == len(emulator.truth.runs(repository))
    assert first.verdict is not None and first.verdict.reasons
    assert first.rate_limit_remaining is not None
    second = await engine.poll(emulator.token)
    assert second.ok and second.synced_jobs == 0 and second.jobs == first.jobs
    assert second.transition is None


async def test_unknown_repository_is_a_report_not_an_exception(tmp_path: Path, emulator: Any) -> None:
    engine = _engine(tmp_path, emulator, "nobody/nothing-here")
    report = await engine.poll(emulator.token)
    assert not report.ok and report.reason == "RepositoryNotFound"
    assert "nobody/nothing-here" in report.message
    assert emulator.token not in report.message


async def test_wrong_token_is_reported_without_the_token(tmp_path: Path, emulator: Any) -> None:
    engine = _engine(tmp_path, emulator, emulator.repositories[0])
    report = await engine.poll("ghp_not-a-valid-token-0123456789")
    assert not report.ok and report.reason == "AuthenticationFailed"
    assert "ghp_not-a-valid-token" not in report.message


async def test_failures_flip_health_once(tmp_path: Path, emulator: Any) -> None:
    repository = emulator.repositories[-1]
    engine = _engine(tmp_path, emulator, repository, windowHours=1, minFinishedJobs=5)
    healthy = await engine.poll(emulator.token)
    assert healthy.health == "Healthy" and healthy.transition is None
    emulator.add_activity(repository, runs=10, failure_rate=1.0)
    failing = await engine.poll(emulator.token)
    assert failing.health in ("Degraded", "Failing"), failing.verdict
    assert failing.transition is not None
    assert (failing.transition.previous, failing.transition.current) == ("Healthy", failing.health)
    again = await engine.poll(emulator.token)
    assert again.health == failing.health and again.transition is None

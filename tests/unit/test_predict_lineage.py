"""Code-lineage features: outcomes of the earlier builds whose code state is closest to this build's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cipulse.predict.events import BuildEvent, ProjectContext
from cipulse.predict.features import FEATURE_NAMES, walk
from cipulse.predict.lineage import NEAR, WINDOW, Lineage, code_state, distance

_START = datetime(2024, 1, 1, tzinfo=UTC)


def _build(minute: int, sloc: float | None, tests: float | None = 500.0) -> BuildEvent:
    return BuildEvent(
        started_at=_START + timedelta(minutes=minute),
        context=ProjectContext(sloc=sloc, test_lines_per_kloc=tests),
    )


def _value(row: list[float | None], name: str) -> float | None:
    return row[FEATURE_NAMES.index(name)]


def test_interleaved_lines_are_told_apart_by_code_size() -> None:
    # Two lines of development built alternately: "main" (100k lines) always fails, "release"
    # (40k lines) always passes. The build just before is always of the other line.
    builds = [
        (_build(minute, 100_000 + minute if minute % 2 == 0 else 40_000 + minute), minute % 2 == 0)
        for minute in range(20)
    ]
    rows = list(walk(builds))
    for position in range(2, 20):
        expected = 1.0 if position % 2 == 0 else 0.0
        assert _value(rows[position], "prev_failed_repo") == 1.0 - expected
        assert _value(rows[position], "lineage_prev_failed") == expected
        assert _value(rows[position], "lineage_fail_ratio_near") == expected
        assert _value(rows[position], "lineage_distance") is not None
        assert _value(rows[position], "lineage_distance") <= NEAR  # type: ignore[operator]


def test_builds_since_pass_counts_failures_of_the_same_line_only() -> None:
    outcomes = [False, True, True, True]
    builds = [(_build(minute, 10_000.0), failed) for minute, failed in enumerate(outcomes)]
    builds.insert(2, (_build(2, 90_000.0), False))  # another line passing in between
    rows = list(walk([*builds, (_build(9, 10_000.0), False)]))
    assert _value(rows[-1], "lineage_builds_since_pass") == 3.0
    assert _value(rows[-1], "lineage_near_builds") == 4.0


def test_unknown_code_state_gives_unknown_features() -> None:
    rows = list(walk([(_build(0, None, None), True), (_build(1, None, None), False)]))
    for name in ("lineage_prev_failed", "lineage_distance", "lineage_near_builds"):
        assert _value(rows[1], name) is None
    assert code_state(ProjectContext()) is None


def test_distance_uses_only_dimensions_both_states_know() -> None:
    assert distance((1.0, None), (1.0, 5.0)) == 0.0
    assert distance((None, None), (1.0, 5.0)) is None
    assert distance((1.0, 2.0), (2.0, 2.0)) == (0.5**0.5)


def test_window_is_bounded_and_round_trips() -> None:
    lineage = Lineage()
    for index in range(WINDOW + 30):
        lineage.observe(ProjectContext(sloc=float(1000 + index)), index % 3 == 0)
    assert len(lineage.recent) == WINDOW
    probe = ProjectContext(sloc=1010.0)
    assert Lineage.from_json(lineage.to_json()).features(probe) == lineage.features(probe)

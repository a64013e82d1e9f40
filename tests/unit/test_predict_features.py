"""No feature of a build may see that build's own outcome or anything about a later build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cipulse.predict.events import BuildEvent, ChangeStats, ProjectContext
from cipulse.predict.features import FEATURE_NAMES, History, walk

_small = st.none() | st.floats(min_value=0, max_value=500, allow_nan=False)


@st.composite
def builds(draw: st.DrawFn, min_size: int = 1) -> list[tuple[BuildEvent, bool]]:
    count = draw(st.integers(min_value=min_size, max_value=25))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    result = []
    minutes = 0
    for _ in range(count):
        minutes += draw(st.integers(min_value=0, max_value=600))
        event = BuildEvent(
            started_at=start + timedelta(minutes=minutes),
            branch=draw(st.sampled_from([None, "main", "feature"])),
            author=draw(st.sampled_from([None, "ann", "bob"])),
            is_pr=draw(st.sampled_from([None, True, False])),
            change_id=draw(st.sampled_from([None, "c1", "c2", "c3"])),
            state_id=draw(st.sampled_from([None, "s1", "s2"])),
            message=draw(st.sampled_from([None, "fix the build", "add feature", "WIP"])),
            change=ChangeStats(src_churn=draw(_small), test_churn=draw(_small), files_added=draw(_small)),
            context=ProjectContext(sloc=draw(_small), team_size=draw(_small)),
        )
        result.append((event, draw(st.booleans())))
    return result


@settings(max_examples=200, deadline=None)
@given(history=builds(), future=builds(), cut=st.integers(min_value=0, max_value=24), flip=st.booleans())
def test_features_never_see_own_outcome_or_later_builds(
    history: list[tuple[BuildEvent, bool]], future: list[tuple[BuildEvent, bool]], cut: int, flip: bool
) -> None:
    cut = min(cut, len(history) - 1)
    original = list(walk(history))
    # Change the outcome of build `cut` and replace everything after it by unrelated builds.
    event, failed = history[cut]
    shift = history[cut][0].started_at - future[0][0].started_at
    later = [
        (
            BuildEvent(
                **{**{f: getattr(e, f) for f in e.__dataclass_fields__}, "started_at": e.started_at + shift}
            ),
            f,
        )
        for e, f in future
    ]
    altered = [*history[:cut], (event, failed != flip), *later]
    changed = list(walk(altered))
    assert changed[: cut + 1] == original[: cut + 1]


@given(history=builds(min_size=2))
def test_previous_outcome_feature_is_the_previous_build_on_the_branch(
    history: list[tuple[BuildEvent, bool]],
) -> None:
    rows = list(walk(history))
    index = FEATURE_NAMES.index("prev_failed_repo")
    assert rows[0][index] is None
    for position in range(1, len(history)):
        assert rows[position][index] == float(history[position - 1][1])


@given(history=builds())
def test_history_snapshot_round_trips_through_json(history: list[tuple[BuildEvent, bool]]) -> None:
    state = History()
    list(walk(history[:-1], state))
    restored = History.from_json(state.to_json())
    probe = history[-1][0]
    assert restored.features(probe) == state.features(probe)


def test_every_vector_has_one_value_per_feature_name() -> None:
    event = BuildEvent(started_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert len(History().features(event)) == len(FEATURE_NAMES) == len(set(FEATURE_NAMES))

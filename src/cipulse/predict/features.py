"""The one feature definition shared by training, evaluation and the gate.

`History` walks builds in time order: `features(event)` reads only what earlier `observe` calls recorded,
and a build's outcome is recorded only after its own features were taken. Training, evaluation and the
gate all go through this class, so a build can never see its own outcome or a later build (the property
test checks it), and there is no train/serve skew. Pure standard library: the gate imports it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cipulse.predict.events import BuildEvent, ChangeStats, ProjectContext
from cipulse.predict.lineage import LINEAGE_FIELDS, Lineage

Vector = list[float | None]

_CHANGE_FIELDS = tuple(ChangeStats.__dataclass_fields__)
_CONTEXT_FIELDS = tuple(ProjectContext.__dataclass_fields__)
_HISTORY_FIELDS = (
    "prev_failed",
    "prev2_failed",
    "prev_failed_repo",
    "prev_same_kind_failed",
    "fail_ratio_last5",
    "fail_ratio_last20",
    "fail_ratio_all",
    "builds_since_failure",
    "outcome_streak",
    "hours_since_prev_build",
    "hours_since_failure",
    "same_change_prev_failed",
    "same_change_builds",
    "same_state_prev_failed",
    "same_state_fail_ratio",
    "same_state_builds",
    "builds_since_same_state",
    "sloc_delta",
    "author_builds",
    "author_fail_ratio",
)
_COMMIT_FIELDS = ("is_pr", "hour", "weekday", "message_length", "message_fix", "message_revert_or_wip")

FEATURE_NAMES: tuple[str, ...] = (
    _HISTORY_FIELDS + LINEAGE_FIELDS + _CHANGE_FIELDS + _CONTEXT_FIELDS + _COMMIT_FIELDS
)
"""Column order of every feature vector; stored in artifacts and checked on load."""

MAX_TRACKED_IDS = 4096
MAX_TRACKED_BRANCHES = 512
_RECENT = 20


def _bool(value: bool | None) -> float | None:
    return None if value is None else float(value)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _hours(later: datetime, earlier: float | None) -> float | None:
    return None if earlier is None else max(0.0, (later.timestamp() - earlier) / 3600.0)


@dataclass(slots=True)
class _Track:
    """Outcomes of one sequence of builds (a branch, the whole repository, an author)."""

    recent: deque[float] = field(default_factory=lambda: deque(maxlen=_RECENT))
    builds: int = 0
    failures: int = 0
    since_failure: int | None = None
    streak: int = 0
    last_time: float | None = None
    last_failure_time: float | None = None

    def observe(self, failed: bool, when: float) -> None:
        value = 1.0 if failed else 0.0
        self.streak = self.streak + 1 if self.recent and self.recent[-1] == value else 1
        self.recent.append(value)
        self.builds += 1
        self.failures += int(failed)
        self.since_failure = 0 if failed else (None if self.since_failure is None else self.since_failure + 1)
        self.last_time = when
        if failed:
            self.last_failure_time = when

    def last(self, back: int) -> float | None:
        return self.recent[-back] if len(self.recent) >= back else None

    def recent_ratio(self, size: int) -> float | None:
        window = list(self.recent)[-size:]
        return sum(window) / len(window) if window else None

    def to_json(self) -> list[Any]:
        return [
            list(self.recent),
            self.builds,
            self.failures,
            self.since_failure,
            self.streak,
            self.last_time,
            self.last_failure_time,
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> _Track:
        recent, builds, failures, since_failure, streak, last_time, last_failure_time = data
        return cls(
            deque((float(v) for v in recent), maxlen=_RECENT),
            int(builds),
            int(failures),
            since_failure,
            int(streak),
            last_time,
            last_failure_time,
        )


class _Bounded(OrderedDict[str, _Track]):
    """Most recently used tracks only, so the state (and the artifact holding it) stays small."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def touch(self, key: str) -> _Track:
        track = self.pop(key, None) or _Track()
        self[key] = track
        while len(self) > self.limit:
            self.popitem(last=False)
        return track


class History:
    """Everything features may know about the past of one repository."""

    def __init__(self) -> None:
        self.repo = _Track()
        self.branches = _Bounded(MAX_TRACKED_BRANCHES)
        self.kinds = _Bounded(4)
        self.authors = _Bounded(MAX_TRACKED_IDS)
        self.changes = _Bounded(MAX_TRACKED_IDS)
        self.states = _Bounded(MAX_TRACKED_IDS)
        self.state_positions: OrderedDict[str, int] = OrderedDict()
        self.lineage = Lineage()
        self.observed = 0
        self.last_sloc: float | None = None

    def features(self, event: BuildEvent) -> Vector:
        """The feature vector of `event`, from earlier builds only."""
        # A branch without builds yet starts from the repository's state (it forked from it).
        branch = self.branches.get(_branch_key(event)) or self.repo
        kind = self.kinds.get(_kind_key(event)) or _Track()
        author = self.authors.get(event.author or "") if event.author else None
        same_change = self.changes.get(event.change_id) if event.change_id else None
        same_state = self.states.get(event.state_id) if event.state_id else None
        state_position = self.state_positions.get(event.state_id) if event.state_id else None
        sloc = event.context.sloc
        history: Vector = [
            branch.last(1),
            branch.last(2),
            self.repo.last(1),
            kind.last(1),
            branch.recent_ratio(5),
            branch.recent_ratio(20),
            _ratio(self.repo.failures, self.repo.builds),
            None if branch.since_failure is None else float(branch.since_failure),
            float(branch.streak) if branch.builds else None,
            _hours(event.started_at, branch.last_time),
            _hours(event.started_at, branch.last_failure_time),
            same_change.last(1) if same_change else None,
            float(same_change.builds) if same_change else 0.0,
            same_state.last(1) if same_state else None,
            _ratio(same_state.failures, same_state.builds) if same_state else None,
            float(same_state.builds) if same_state else 0.0,
            None if state_position is None else float(self.observed - state_position),
            None if sloc is None or self.last_sloc is None else sloc - self.last_sloc,
            float(author.builds) if author else (0.0 if event.author else None),
            _ratio(author.failures, author.builds) if author else None,
        ]
        change = [getattr(event.change, name) for name in _CHANGE_FIELDS]
        context = [getattr(event.context, name) for name in _CONTEXT_FIELDS]
        lineage = self.lineage.features(event.context)
        return history + lineage + change + context + _commit_features(event)

    def observe(self, event: BuildEvent, failed: bool) -> None:
        """Record a finished build; later `features` calls may use it."""
        when = event.started_at.timestamp()
        self.repo.observe(failed, when)
        self.branches.touch(_branch_key(event)).observe(failed, when)
        self.kinds.touch(_kind_key(event)).observe(failed, when)
        if event.author:
            self.authors.touch(event.author).observe(failed, when)
        if event.change_id:
            self.changes.touch(event.change_id).observe(failed, when)
        if event.state_id:
            self.states.touch(event.state_id).observe(failed, when)
            self.state_positions.pop(event.state_id, None)
            self.state_positions[event.state_id] = self.observed
            while len(self.state_positions) > MAX_TRACKED_IDS:
                self.state_positions.popitem(last=False)
        self.lineage.observe(event.context, failed)
        if event.context.sloc is not None:
            self.last_sloc = event.context.sloc
        self.observed += 1

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready snapshot, stored in the model artifact for gates without a store."""

        def tracks(bounded: _Bounded) -> list[list[Any]]:
            return [[key, track.to_json()] for key, track in bounded.items()]

        return {
            "repo": self.repo.to_json(),
            "branches": tracks(self.branches),
            "kinds": tracks(self.kinds),
            "authors": tracks(self.authors),
            "changes": tracks(self.changes),
            "states": tracks(self.states),
            "state_positions": list(self.state_positions.items()),
            "lineage": self.lineage.to_json(),
            "observed": self.observed,
            "last_sloc": self.last_sloc,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> History:
        history = cls()
        history.repo = _Track.from_json(data["repo"])
        for name in ("branches", "kinds", "authors", "changes", "states"):
            bounded: _Bounded = getattr(history, name)
            for key, track in data[name]:
                bounded[key] = _Track.from_json(track)
        history.state_positions = OrderedDict((key, int(pos)) for key, pos in data["state_positions"])
        history.lineage = Lineage.from_json(data["lineage"])
        history.observed = int(data["observed"])
        history.last_sloc = data["last_sloc"]
        return history


def _branch_key(event: BuildEvent) -> str:
    return event.branch or ""


def _kind_key(event: BuildEvent) -> str:
    return {None: "unknown", True: "pr", False: "push"}[event.is_pr]


_FIX_WORDS = ("fix", "bug", "repair", "broken", "failing", "typo")
_RISK_WORDS = ("revert", "wip", "temp", "hack", "try")


def _commit_features(event: BuildEvent) -> Vector:
    when = event.started_at
    message = event.message.lower() if event.message is not None else None
    return [
        _bool(event.is_pr),
        float(when.hour),
        float(when.weekday()),
        None if message is None else float(len(message)),
        None if message is None else float(any(word in message for word in _FIX_WORDS)),
        None if message is None else float(any(word in message for word in _RISK_WORDS)),
    ]


def walk(
    events: Iterable[tuple[BuildEvent, bool | None]], history: History | None = None
) -> Iterator[Vector]:
    """Features of each build in order, then its outcome is recorded (None: unknown, not recorded).

    This is how training rows are built; passing the `history` in lets a caller keep the final state.
    """
    state = history if history is not None else History()
    for event, failed in events:
        yield state.features(event)
        if failed is not None:
            state.observe(event, failed)

"""One outcome per job attempt, so every success rate and count in cipulse buckets conclusions the same way.

GitHub reports many conclusions; cipulse folds them into six outcomes:

- ``running``   status is not ``completed`` (queued, waiting, pending, requested, in_progress);
- ``success``   conclusion ``success``;
- ``failure``   conclusion ``failure``, ``timed_out`` or ``startup_failure`` (``FAILED_CONCLUSIONS``);
- ``cancelled`` conclusion ``cancelled``;
- ``skipped``   conclusion ``skipped``;
- ``other``     anything else once completed (``neutral``, ``stale``, ``action_required``, none).
"""

from __future__ import annotations

from typing import Final, Literal

from cipulse.records import CANCELLED, FAILED_CONCLUSIONS, SKIPPED, SUCCESS

Outcome = Literal["success", "failure", "cancelled", "skipped", "other", "running"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("success", "failure", "cancelled", "skipped", "other", "running")
# Outcomes whose job actually ran to a verdict: the only ones success rates and duration percentiles use.
VERDICT_OUTCOMES: Final[frozenset[str]] = frozenset({"success", "failure"})


def classify(status: str | None, conclusion: str | None) -> Outcome:
    """Fold GitHub's (status, conclusion) into one of `OUTCOMES`."""
    if status != "completed":
        return "running"
    if conclusion == SUCCESS:
        return "success"
    if conclusion in FAILED_CONCLUSIONS:
        return "failure"
    if conclusion == CANCELLED:
        return "cancelled"
    if conclusion == SKIPPED:
        return "skipped"
    return "other"

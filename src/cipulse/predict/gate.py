"""`cipulse predict`: the CI gate that runs before the expensive tests.

Exit codes: 0 = go on (failure unlikely), 1 = likely failure (probability >= the model's threshold),
2 = internal error with `--fail-closed`. `--advisory` always exits 0. An internal error (missing or
tampered model, git failure, unreachable store, a bug) fails open by default: exit 0 with a loud message,
because a broken predictor must not block every build. This module and everything it imports use only
the standard library (no NumPy, pandas, scikit-learn or LightGBM), so the gate is fast.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cipulse.predict.artifact import Predictor
from cipulse.predict.events import BuildEvent
from cipulse.predict.features import FEATURE_NAMES, History

GO_ON = 0
LIKELY_FAILURE = 1
INTERNAL_ERROR = 2


@dataclass(frozen=True)
class GateOptions:
    model: Path
    repo: Path = Path(".")
    revision: str = "HEAD"
    base: str | None = None
    project: str | None = None
    branch: str | None = None
    author: str | None = None
    event: str | None = None
    store: str | None = None
    use_git: bool = True
    threshold: float | None = None
    model_sha256: str | None = None
    advisory: bool = False
    fail_closed: bool = False
    as_json: bool = False
    top: int = 5


@dataclass(frozen=True)
class Verdict:
    probability: float
    threshold: float
    likely_failure: bool
    factors: list[tuple[str, float | None, float]]
    project: str
    model_version: str
    history_source: str


def _event_from_options(options: GateOptions) -> BuildEvent:
    env_event = options.event or os.environ.get("GITHUB_EVENT_NAME")
    is_pr = env_event is not None and env_event.startswith("pull_request")  # unknown: a push
    branch = options.branch or os.environ.get("GITHUB_HEAD_REF") or os.environ.get("GITHUB_REF_NAME") or None
    author = options.author or os.environ.get("GITHUB_ACTOR") or None
    if not options.use_git:
        return BuildEvent(started_at=datetime.now(UTC), branch=branch, author=author, is_pr=is_pr)
    from cipulse.predict import gitmeta

    if branch is None:
        branch = gitmeta.current_branch(options.repo)
    return gitmeta.event_from_git(
        options.repo, revision=options.revision, base=options.base, branch=branch, author=author, is_pr=is_pr
    )


def _history(predictor: Predictor, options: GateOptions) -> tuple[str, History, str]:
    if options.store is None:
        project, history = predictor.history(options.project or _project_from_env(predictor))
        return project, history, "model snapshot"
    from cipulse.predict.dataset import builds_from_training_rows
    from cipulse.store import open_store

    store = open_store(options.store)
    try:
        rows = store.training_rows(options.project)
    finally:
        store.close()
    per_repo = builds_from_training_rows(rows)
    if options.project is None and len(per_repo) != 1:
        raise RuntimeError("the store holds several repositories: choose one with --project")
    project = options.project or next(iter(per_repo), "")
    builds = per_repo.get(project, [])
    if options.use_git and _knows_code_states(predictor):
        # as training with --git-dir did (its snapshot tracks trees): each stored build's state is its tree
        from cipulse.predict import gitmeta

        trees = gitmeta.trees_of(options.repo, (event.change_id or "" for event, _ in builds))
        builds = [
            (replace(event, state_id=trees.get(event.change_id or "")), failed) for event, failed in builds
        ]
    history = History()
    for event, failed in builds:
        history.observe(event, failed)
    return project, history, f"store ({len(builds)} builds)"


def _knows_code_states(predictor: Predictor) -> bool:
    """Trained with code states (store + --git-dir, or a source naming trees): its snapshot tracks some."""
    return any(history.get("states") for history in predictor.histories.values())


def _project_from_env(predictor: Predictor) -> str | None:
    repository = os.environ.get("GITHUB_REPOSITORY")
    return repository if repository in predictor.histories else None


def decide(predictor: Predictor, options: GateOptions) -> Verdict:
    event = _event_from_options(options)
    project, history, source = _history(predictor, options)
    row = history.features(event)
    raw = predictor.ensemble.raw_score(row)
    decision = predictor.decision(project)
    probability = decision.calibration.probability(raw)
    threshold = decision.threshold if options.threshold is None else options.threshold
    _, contributions = predictor.ensemble.contributions(row)
    values = dict(zip(FEATURE_NAMES, row, strict=True))
    top = sorted(contributions.items(), key=lambda item: abs(item[1]), reverse=True)[: options.top]
    return Verdict(
        probability=probability,
        threshold=threshold,
        likely_failure=probability >= threshold,
        factors=[(name, values[name], weight) for name, weight in top if weight != 0.0],
        project=project,
        model_version=predictor.model_version,
        history_source=source,
    )


def _describe(verdict: Verdict) -> str:
    decision = "LIKELY FAILURE" if verdict.likely_failure else "go on"
    lines = [
        f"cipulse predict: failure probability {verdict.probability:.1%} "
        f"(threshold {verdict.threshold:.1%}) -> {decision}",
        f"  project {verdict.project}, model {verdict.model_version}, history from {verdict.history_source}",
        "  top factors (log-odds; + raises the risk):",
    ]
    for name, value, weight in verdict.factors:
        shown = "unknown" if value is None else f"{value:g}"
        lines.append(f"    {weight:+.3f}  {name} = {shown}")
    return "\n".join(lines)


def _write_github_outputs(verdict: Verdict) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"probability={verdict.probability:.4f}\n")
        handle.write(f"decision={'likely-failure' if verdict.likely_failure else 'go-on'}\n")


def run(options: GateOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Decide and print; never raises: returns the process exit code."""
    from cipulse.predict import artifact

    try:
        predictor = artifact.load(options.model, options.model_sha256)
        verdict = decide(predictor, options)
    except Exception as error:  # the gate must never crash the pipeline in an undocumented way
        mode = (
            "advisory" if options.advisory else ("failing CLOSED" if options.fail_closed else "failing OPEN")
        )
        err.write(
            "\n"
            + "!" * 78
            + f"\ncipulse predict: INTERNAL ERROR ({mode}): {type(error).__name__}: {error}\n"
            + "!" * 78
            + "\n"
        )
        if options.as_json:
            out.write(json.dumps({"error": str(error), "decision": "error"}) + "\n")
        return INTERNAL_ERROR if options.fail_closed and not options.advisory else GO_ON
    if options.as_json:
        out.write(json.dumps(_as_json(verdict)) + "\n")
    else:
        out.write(_describe(verdict) + "\n")
    try:
        _write_github_outputs(verdict)
    except OSError as error:
        err.write(f"cipulse predict: could not write GITHUB_OUTPUT: {error}\n")
    if options.advisory or not verdict.likely_failure:
        return GO_ON
    return LIKELY_FAILURE


def _as_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "probability": verdict.probability,
        "threshold": verdict.threshold,
        "decision": "likely-failure" if verdict.likely_failure else "go-on",
        "project": verdict.project,
        "model_version": verdict.model_version,
        "history_source": verdict.history_source,
        "factors": [{"feature": n, "value": v, "contribution": w} for n, v, w in verdict.factors],
    }

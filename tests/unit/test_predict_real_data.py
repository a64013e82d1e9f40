"""The CSV mapping and the protocol on the real TravisTorrent histories (../shared/data, not in the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cipulse.predict import scoring
from cipulse.predict.dataset import chronological_folds, load_csv_projects
from cipulse.predict.evaluation import CIPULSE, PREVIOUS, evaluate
from cipulse.predict.features import FEATURE_NAMES

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ci-build-history"

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(),
    reason=f"real CI build histories not present at {DATA} (they are not shipped with cipulse)",
)


def test_all_ten_projects_parse_with_the_documented_mapping() -> None:
    projects = load_csv_projects(DATA)
    assert len(projects) == 10
    assert sum(len(p.builds) for p in projects) == 91_330
    index = FEATURE_NAMES.index("prev_failed_repo")
    for project in projects:
        labels = project.labels
        assert all(row[index] == float(labels[i - 1]) for i, row in enumerate(project.rows) if i > 0)


def test_protocol_on_one_real_project_beats_chance_and_reproduces_the_baseline() -> None:
    (project,) = [p for p in load_csv_projects(DATA) if p.name == "sonarqube"]
    result = evaluate([project], with_global=False, with_forest=False).projects[0]
    labels = project.labels
    test_rows = [i for fold in chronological_folds(len(labels))[5:] for i in fold]
    expected = scoring.f1_fail([labels[i] for i in test_rows], [bool(labels[i - 1]) for i in test_rows])
    assert result.measures[PREVIOUS].f1_fail == pytest.approx(expected)
    assert len(result.predictions[CIPULSE].failed) == len(test_rows)
    assert result.measures[CIPULSE].roc_auc > 0.6

"""Evaluation measures, thresholds, folds and the CSV mapping on small hand-checked cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from cipulse.predict import scoring
from cipulse.predict.columns import CsvFormatError, read_history_csv
from cipulse.predict.dataset import chronological_folds
from cipulse.predict.synthetic import generate_rows, write_csv
from cipulse.predict.thresholds import threshold_for_f1, threshold_for_recall


def test_kept_failures_counts_ties_at_their_expected_value() -> None:
    failed = [1, 0, 1, 0, 0, 1, 0, 0, 0, 1]
    previous = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]  # two scores only, like the previous-outcome baseline
    kept, total = scoring.kept_failures(failed, previous, 0.3)
    # 3 of the 5 zero-scored builds are skipped at random; they hold 2 failures: 2 * 3/5 expected skipped.
    assert total == 4
    assert kept == pytest.approx(4 - 2 * 3 / 5)


def test_kept_failures_skips_lowest_scores_first() -> None:
    failed = [0, 0, 1, 1]
    assert scoring.kept_failures(failed, [0.1, 0.2, 0.8, 0.9], 0.5) == (2.0, 2.0)
    assert scoring.kept_failures(failed, [0.9, 0.8, 0.2, 0.1], 0.5) == (0.0, 2.0)


def test_f1_of_failing_class() -> None:
    assert scoring.f1_fail([1, 1, 0, 0], [True, False, True, False]) == pytest.approx(0.5)
    assert scoring.f1_fail([0, 0], [False, False]) == 0.0


def test_recall_threshold_flags_the_target_share_of_failures() -> None:
    probabilities = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    failed = [1, 1, 0, 1, 0, 1, 0, 1, 0, 0]
    threshold = threshold_for_recall(probabilities, failed, 0.8)
    flagged = [p >= threshold for p in probabilities]
    recall = sum(f for f, y in zip(flagged, failed, strict=True) if y) / sum(failed)
    assert recall >= 0.8
    assert threshold == 0.4  # the highest threshold that reaches it


def test_f1_threshold_maximises_f1_on_the_given_data() -> None:
    probabilities = [0.9, 0.8, 0.7, 0.2, 0.1]
    failed = [1, 1, 0, 1, 0]
    threshold = threshold_for_f1(probabilities, failed)
    best = max(scoring.f1_fail(failed, [p >= t for p in probabilities]) for t in [*probabilities, 1.1])
    assert scoring.f1_fail(failed, [p >= threshold for p in probabilities]) == pytest.approx(best)


def test_chronological_folds_are_contiguous_and_cover_everything() -> None:
    folds = chronological_folds(103, 10)
    assert [len(f) for f in folds] == [11, 11, 11, 10, 10, 10, 10, 10, 10, 10]
    assert [i for f in folds for i in f] == list(range(103))


def test_synthetic_history_is_seeded() -> None:
    assert generate_rows(50, seed=1) == generate_rows(50, seed=1)
    assert generate_rows(50, seed=1) != generate_rows(50, seed=2)


def test_csv_mapping_reads_travistorrent_columns_and_rejects_bad_rows(tmp_path: Path) -> None:
    builds = read_history_csv(write_csv(tmp_path / "demo.csv", builds=20, seed=0))
    rows = generate_rows(20, seed=0)
    assert len(builds) == 20
    event, failed = builds[3]
    assert failed == (rows[3]["build_Failed"] == "1")
    assert event.change.src_churn == float(rows[3]["git_diff_src_churn"])
    assert event.context.sloc == float(rows[3]["gh_sloc"])
    bad = tmp_path / "bad.csv"
    bad.write_text(
        (tmp_path / "demo.csv").read_text().replace(rows[5]["gh_build_started_at"], "yesterday", 1)
    )
    with pytest.raises(CsvFormatError, match="line 7"):
        read_history_csv(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("a,b\n1,2\n")
    with pytest.raises(CsvFormatError, match="missing columns"):
        read_history_csv(missing)


def test_group_thresholds_never_do_worse_than_the_best_single_threshold_on_their_data() -> None:
    import random

    from cipulse.predict.thresholds import f1_thresholds_by_group

    rng = random.Random(0)
    groups = [int(rng.random() < 0.3) for _ in range(400)]
    failed = [int(rng.random() < (0.6 if g else 0.15)) for g in groups]
    probabilities = [
        min(1.0, (0.45 if g else 0.1) + 0.3 * y * rng.random() + 0.2 * rng.random())
        for g, y in zip(groups, failed, strict=True)
    ]
    cuts = f1_thresholds_by_group(probabilities, failed, groups)
    grouped = scoring.f1_fail(failed, [p >= cuts[g] for p, g in zip(probabilities, groups, strict=True)])
    single = threshold_for_f1(probabilities, failed)
    assert grouped >= scoring.f1_fail(failed, [p >= single for p in probabilities]) - 0.02
    assert grouped >= scoring.f1_fail(failed, groups)  # the previous-outcome rule is one of the candidates

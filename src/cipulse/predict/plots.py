"""PNG charts that explain an evaluation: importance, confusion matrix, ROC, PR and the gate trade-off."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cipulse.predict.evaluation import CIPULSE, PREVIOUS, RANDOM, Evaluation
from cipulse.predict.report import chosen_scope


def write_plots(evaluation: Evaluation, directory: Path, top_features: int = 15) -> list[Path]:
    """Write the charts for the chosen cipulse model, pooled over projects; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    directory.mkdir(parents=True, exist_ok=True)
    model = chosen_scope(evaluation)
    failed = np.concatenate([np.asarray(p.predictions[model].failed) for p in evaluation.projects])
    scores = np.concatenate([np.asarray(p.predictions[model].scores) for p in evaluation.projects])
    decided = np.concatenate([np.asarray(p.predictions[model].decided_fail) for p in evaluation.projects])
    written = []

    def save(fig: object, name: str) -> None:
        path = directory / name
        plt.savefig(path, dpi=110, bbox_inches="tight")
        plt.close("all")
        written.append(path)

    importance = {
        name: float(np.mean([p.importances[name] for p in evaluation.projects]))
        for name in evaluation.projects[0].importances
    }
    top = sorted(importance.items(), key=lambda item: item[1], reverse=True)[:top_features]
    fig = plt.figure(figsize=(7, 5))
    plt.barh([name for name, _ in reversed(top)], [value for _, value in reversed(top)], color="#3b7dd8")
    plt.xlabel("share of total gain (mean over projects and folds)")
    plt.title(f"Feature importance: {CIPULSE}")
    save(fig, "feature-importance.png")

    matrix = np.array(
        [
            [np.sum((failed == 0) & ~decided), np.sum((failed == 0) & decided)],
            [np.sum((failed == 1) & ~decided), np.sum((failed == 1) & decided)],
        ]
    )
    fig = plt.figure(figsize=(4.5, 4))
    plt.imshow(matrix, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        plt.text(col, row, str(value), ha="center", va="center", color="black")
    plt.xticks([0, 1], ["predicted pass", "predicted fail"])
    plt.yticks([0, 1], ["passed", "failed"])
    plt.title("Confusion matrix (threshold chosen on training data)")
    save(fig, "confusion-matrix.png")

    baseline_failed = np.concatenate(
        [np.asarray(p.predictions[PREVIOUS].failed) for p in evaluation.projects]
    )
    baseline = np.concatenate([np.asarray(p.predictions[PREVIOUS].scores) for p in evaluation.projects])
    fig = plt.figure(figsize=(5, 5))
    fpr, tpr, _ = roc_curve(failed, scores)
    plt.plot(fpr, tpr, label=model)
    fpr, tpr, _ = roc_curve(baseline_failed, baseline)
    plt.plot(fpr, tpr, "o--", label=PREVIOUS)
    plt.plot([0, 1], [0, 1], ":", color="grey", label="random")
    plt.xlabel("false positive rate")
    plt.ylabel("true positive rate (failing builds)")
    plt.legend()
    plt.title("ROC, test folds of all projects")
    save(fig, "roc.png")

    fig = plt.figure(figsize=(5, 5))
    precision, recall, _ = precision_recall_curve(failed, scores)
    plt.plot(recall, precision, label=model)
    precision, recall, _ = precision_recall_curve(baseline_failed, baseline)
    plt.plot(recall[1:-1], precision[1:-1], "o", label=PREVIOUS)
    plt.axhline(float(failed.mean()), linestyle=":", color="grey", label="random")
    plt.xlabel("recall (failing builds)")
    plt.ylabel("precision")
    plt.legend()
    plt.title("Precision-recall, test folds of all projects")
    save(fig, "precision-recall.png")

    fig = plt.figure(figsize=(6, 5))
    for name, style in ((model, "-"), (PREVIOUS, "--"), (RANDOM, ":")):
        curve = np.mean([[kept for _, kept in p.measures[name].curve] for p in evaluation.projects], axis=0)
        shares = [share for share, _ in evaluation.projects[0].measures[name].curve]
        plt.plot(shares, curve, style, label=name)
    plt.axhline(0.9, color="grey", linewidth=0.5)
    plt.xlabel("share of builds skipped")
    plt.ylabel("share of failing builds still run (mean over projects)")
    plt.legend()
    plt.title("Gate trade-off")
    save(fig, "tradeoff.png")
    return written

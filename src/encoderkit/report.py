"""Run reports: a markdown page with the metrics table, a learning curve and a confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written on headless machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SUMMARY_KEYS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "micro_f1", "weighted_f1")


def metrics_table(metrics: dict, keys: Sequence[str] = SUMMARY_KEYS) -> str:
    rows = ["| metric | value |", "|---|---|"]
    rows += [f"| {key} | {metrics[key]:.4f} |" for key in keys if key in metrics]
    return "\n".join(rows)


def per_class_table(metrics: dict) -> str:
    rows = ["| label | precision | recall | f1 | support |", "|---|---|---|---|---|"]
    for label, values in metrics.get("per_class", {}).items():
        rows.append(f"| {label} | {values['precision']:.4f} | {values['recall']:.4f} | {values['f1']:.4f} | "
                    f"{values['support']} |")
    return "\n".join(rows)


def plot_learning_curve(history: list[dict], metric: str, path: Path) -> None:
    steps = [record["step"] for record in history]
    figure, axis = plt.subplots(figsize=(6, 4))
    for key in dict.fromkeys([metric, "accuracy", "loss", "train_loss"]):
        values = [record.get(key) for record in history]
        if all(v is not None for v in values) and values:
            name = "training loss (smoothed)" if key == "train_loss" else f"validation {key}"
            axis.plot(steps, values, marker="o", label=name)
    axis.set_xlabel("optimizer step")
    axis.set_title("Learning curve")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_confusion_matrix(matrix: list[list[int]], labels: Sequence[str], path: Path) -> None:
    values = np.asarray(matrix)
    size = max(4.0, 0.6 * len(labels) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(values, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    threshold = values.max() / 2 if values.size else 0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            axis.text(j, i, str(values[i, j]), ha="center", va="center",
                      color="white" if values[i, j] > threshold else "black", fontsize=8)
    axis.set_title("Confusion matrix")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(run_dir: Path, *, title: str, metrics: dict, labels: Sequence[str], history: list[dict],
                 metric: str, facts: dict[str, str]) -> Path:
    """Write ``report.md`` (+ PNG plots) into ``run_dir`` and return its path."""
    run_dir = Path(run_dir)
    lines = [f"# {title}", ""]
    lines += [f"- **{key}**: {value}" for key, value in facts.items()]
    lines += ["", "## Metrics", "", metrics_table(metrics), "", "## Per class", "", per_class_table(metrics), ""]
    if history:
        plot_learning_curve(history, metric, run_dir / "learning_curve.png")
        lines += ["## Learning curve", "", "![learning curve](learning_curve.png)", ""]
    if "confusion_matrix" in metrics:
        plot_confusion_matrix(metrics["confusion_matrix"], labels, run_dir / "confusion_matrix.png")
        lines += ["## Confusion matrix", "", "![confusion matrix](confusion_matrix.png)", ""]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


__all__ = ["metrics_table", "write_report"]

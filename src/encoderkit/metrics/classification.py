"""Classification metrics, computed by scikit-learn so the numbers are the ones people trust.

``classification_metrics`` returns a flat ``dict[str, float]`` (the primary metric is ``macro_f1``)
plus per-class precision/recall/F1/support and the confusion matrix in ``details``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

PRIMARY_METRIC = "macro_f1"


def classification_metrics(y_true, y_pred, labels: Sequence[str]) -> dict:
    """Accuracy, P/R/F1 (macro, micro, weighted), per class, and the confusion matrix.

    Args:
        y_true: (N,) integer class ids, or (N, C) 0/1 indicator matrix for multi-label data.
        y_pred: same shape as ``y_true``.
        labels: label names in id order.

    Returns:
        {"accuracy", "macro_precision", "macro_recall", "macro_f1", "micro_*", "weighted_*",
         "per_class": {label: {precision, recall, f1, support}}, "confusion_matrix": [[...]]}
        (for multi-label data ``accuracy`` is the exact-match ratio and there is no confusion matrix).
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    ids = list(range(len(labels)))
    multi_label = y_true.ndim == 2
    result: dict = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for average in ("macro", "micro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=ids, average=average, zero_division=0
        )
        result[f"{average}_precision"] = float(precision)
        result[f"{average}_recall"] = float(recall)
        result[f"{average}_f1"] = float(f1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, average=None, zero_division=0
    )
    result["per_class"] = {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    }
    if not multi_label:
        result["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=ids).tolist()
    return result


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """Only the scalar entries (for logs and early stopping)."""
    return {k: v for k, v in metrics.items() if isinstance(v, float)}

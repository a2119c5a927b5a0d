"""Our metrics must be scikit-learn's numbers on the same predictions."""

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

from encoderkit.metrics.classification import classification_metrics


def test_numbers_equal_scikit_learn_report():
    rng = np.random.default_rng(0)
    labels = ["ABBR", "DESC", "ENTY", "HUM"]
    y_true = rng.integers(0, 4, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 4, 300))
    ours = classification_metrics(y_true, y_pred, labels)
    report = classification_report(y_true, y_pred, labels=range(4), target_names=labels, output_dict=True)
    assert ours["accuracy"] == report["accuracy"]
    for average in ("macro", "weighted"):
        theirs = report[f"{average} avg"]
        assert ours[f"{average}_precision"] == theirs["precision"]
        assert ours[f"{average}_recall"] == theirs["recall"]
        assert ours[f"{average}_f1"] == theirs["f1-score"]
    assert ours["micro_f1"] == report["accuracy"]  # single-label micro-F1 is accuracy
    for label in labels:
        assert ours["per_class"][label]["f1"] == report[label]["f1-score"]
        assert ours["per_class"][label]["support"] == report[label]["support"]
    assert ours["confusion_matrix"] == confusion_matrix(y_true, y_pred).tolist()


def test_class_never_predicted_counts_as_zero_not_error():
    ours = classification_metrics([0, 1, 2, 2], [0, 1, 1, 1], ["a", "b", "c"])
    assert ours["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}


def test_multi_label_indicator_matrices():
    y_true = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    y_pred = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    ours = classification_metrics(y_true, y_pred, ["x", "y", "z"])
    assert ours["accuracy"] == 2 / 3  # exact match
    assert "confusion_matrix" not in ours
    assert ours["micro_precision"] == 1.0

"""The recommendation is derived from the numbers: made-up summaries give the sentences they must."""

from __future__ import annotations

from encoderkit.compare.candidates import BASELINE
from encoderkit.compare.report import recommend


def row(name, accuracy, speed, p=None, seed_std=0.0):
    result = {"candidate": name, "accuracy": accuracy, "accuracy_interval": (accuracy - 0.02, accuracy + 0.02),
              "macro_f1": accuracy - 0.01, "sentences_per_second": speed, "accuracy_seed_std": seed_std}
    if p is not None:
        result["versus_best"] = {"difference": None, "p_bootstrap": p}
    return result


def summary(rows, curve=None):
    for r in rows[1:]:
        r["versus_best"]["difference"] = rows[0]["accuracy"] - r["accuracy"]
    return {"rows": rows, "learning_curve": curve or {}}


def test_a_fast_candidate_within_noise_of_the_best_is_recommended():
    lines = recommend(summary([row("trec_minilm", 0.966, 300), row("cnn", 0.962, 7500, p=0.41),
                               row("bow", 0.87, 25000, p=0.0), row(BASELINE, 0.90, 20000, p=0.001)]))
    assert lines[0] == "Most accurate: trec_minilm, 96.6% accuracy (95% interval 94.6-98.6), macro-F1 95.6."
    assert lines[1] == ("cnn is within 0.4 points of trec_minilm, not a significant difference (p = 0.41), at 25x "
                        "its speed: choose cnn unless those points matter to you.")
    assert lines[2] == ("The TF-IDF + linear SVM baseline is 6.6 points behind (p = 0.001): the neural encoder is "
                        "worth it on this data.")


def test_a_clear_winner_and_a_baseline_that_is_enough():
    lines = recommend(summary([row("cnn", 0.95, 8000), row(BASELINE, 0.94, 20000, p=0.2),
                               row("bow", 0.90, 30000, p=0.01)]))
    assert lines[1].startswith(f"{BASELINE} is within 1.0 points of cnn")
    assert lines[2] == ("The TF-IDF + linear SVM baseline is only 1.0 points behind (not significant, p = 0.20): "
                        "a linear model is enough here.")
    lines = recommend(summary([row("cnn", 0.95, 8000), row("bow", 0.90, 30000, p=0.01)]))
    assert lines[1] == ("cnn is significantly more accurate than every other candidate (the next, bow, is 5.0 "
                        "points behind, p = 0.010).")


def test_the_learning_curve_and_the_seed_spread_are_put_in_words():
    curve = {"cnn": {"0.1": {"mean": 0.70}, "1.0": {"mean": 0.95}},
             "trec_minilm": {"0.1": {"mean": 0.90}, "1.0": {"mean": 0.94}}}
    lines = recommend(summary([row("cnn", 0.95, 8000, seed_std=0.015), row("trec_minilm", 0.94, 300, p=0.3)], curve))
    assert ("With 10% of the training data trec_minilm leads (90.0% accuracy); with all of it cnn does: more data "
            "favours cnn.") in lines
    assert lines[-1] == "Between seeds, cnn varies by 1.5 points (standard deviation): judge these by their means, not one run."
    assert lines[1] == "trec_minilm is not significantly less accurate, but none is faster: cnn is the choice."


def test_the_baseline_on_top_is_said_plainly():
    lines = recommend(summary([row(BASELINE, 0.95, 20000), row("cnn", 0.90, 8000, p=0.01)]))
    assert "no neural encoder earns its cost on this data" in lines[-1]

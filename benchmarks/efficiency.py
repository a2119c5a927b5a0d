"""Efficiency benchmark: the training loop's overhead, DDP, mixed precision (and, with the compression
parts, ONNX Runtime and int8), each measured side by side in one run on this machine.

    python benchmarks/efficiency.py                       # every part (takes a while: run it alone)
    python benchmarks/efficiency.py --parts overhead bf16
    python benchmarks/efficiency.py --quick               # small slices: proves every part runs

Parts:

- ``overhead``: encoderkit's training loop (``fit``) against a hand-written PyTorch loop that trains
  the same model (same initial weights) on the same batches in the same order with the same
  optimizer, schedule and clipping. Tokens/s over the training steps only (evaluation excluded on
  both sides), interleaved repeats, medians. LSTM and CNN on TREC (shipped configs), and the CNN on
  SMS spam with a 20,000-word vocabulary (seconds per epoch, and a profile of where the time goes).
- ``ddp``: the shipped CNN config on TREC trained for two epochs in one process and with ``torchrun
  --nproc-per-node 2`` (gloo): wall time of each and their test accuracy.
- ``bf16``: ``train.mixed_precision=bf16`` against float32: training speed and test accuracy, the
  TREC CNN (shipped config) and all-MiniLM-L6-v2 fine-tuned (``configs/trec_minilm.yaml``).
- ``onnx``: each family's shipped TREC config (and MiniLM fine-tuned) trained once, exported to ONNX
  float32 and int8 (``encoderkit export --format onnx [--quantize int8]``) and run through
  ``encoderkit.load``: test accuracy, label agreement with eager PyTorch float32, and sentences/s
  (batch 64, interleaved, medians). MiniLM sentence embeddings: ``benchmarks/onnx_int8.py``.

Writes ``benchmarks/results/efficiency.json`` and the ``## Efficiency`` section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import cpu_name, quick_slice, write_results  # noqa: E402

from encoderkit.config import load_config  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
HEADING = "## Efficiency"
PARTS = ("overhead", "ddp", "bf16", "onnx")
#: Shipped TREC configs of the ONNX table, one per family.
ONNX_FAMILIES = ("bow", "cnn", "rnn", "lstm", "gru", "transformer", "trec_minilm")
#: (name, config, data folder, overrides) of the overhead rows.
OVERHEAD_RUNS = [
    ("LSTM TREC", "lstm", "trec", []),
    ("CNN TREC", "cnn", "trec", []),
    # SMS spam's training messages hold 7,672 distinct words (every one kept): the 15k+ vocabulary
    # needs words from elsewhere, so a second row adds those of GloVe's 12,500 most frequent words it lacks
    # (16,739 words in all, 50-d vectors).
    ("CNN SMS spam", "cnn", "sms_spam", ["tokenizer.vocab_size=20000"]),
    ("CNN SMS spam, vocabulary extended with GloVe words", "cnn", "sms_spam",
     ["tokenizer.vocab_size=20000", f"embedding.pretrained={SHARED / 'glove.6B.50d.txt.bz2'}", "embedding.dim=50",
      "embedding.extend_vocab=12500"]),
]


def data_overrides(folder: Path) -> list[str]:
    return [f"data.train={folder / 'train.jsonl'}", f"data.test={folder / 'test.jsonl'}"]


# -- overhead: fit() against a hand-written loop ------------------------------------------------------


def prepare(config):
    """What the runner builds before ``fit``: model, loaders, loss and parameter groups (no files kept)."""
    from encoderkit.tasks import get_task
    from encoderkit.tasks.runner import build_encoder_with_vectors, parameter_groups, read_pretrained, train_tokenizer

    task = get_task(config.task)
    torch.manual_seed(config.seed)
    data = task.read_data(config)
    pretrained = read_pretrained(config)
    tokenizer = train_tokenizer(task, config, data, pretrained)
    spec = task.spec(config, data)
    text_encoder, _ = build_encoder_with_vectors(task, config, data, tokenizer, pretrained)
    model = task.build_model(config, text_encoder, spec)
    loaders = task.loaders(config, data, spec, tokenizer)
    loss = task.loss_function(config, data, spec)
    return model, loaders.train, loss, (lambda m: parameter_groups(config, m)), tokenizer


def count_tokens(loader) -> int:
    """Real (not padding) tokens in one epoch of a classification loader."""
    return sum(int(batch["mask"].sum()) for batch in loader)


def hand_written_loop(model, loader, compute_loss, groups, train, epochs: int) -> float:
    """The loop a PyTorch user writes by hand: seconds for ``epochs`` epochs of optimizer steps."""
    from encoderkit.training.loop import default_parameter_groups, make_scheduler

    optimizer = torch.optim.AdamW(groups or default_parameter_groups(model, train.weight_decay), lr=train.lr,
                                  weight_decay=train.weight_decay)
    scheduler = make_scheduler(optimizer, train, epochs * len(loader))
    model.train()
    started = time.perf_counter()
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            loss = compute_loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    return time.perf_counter() - started


def encoderkit_loop(model, loader, compute_loss, groups, train, epochs: int, work: Path) -> float:
    """``fit`` on the same pieces, evaluation reduced to nothing; its own count of training seconds."""
    from encoderkit.training.loop import fit

    config = train.model_copy(update={"epochs": epochs, "patience": None, "metric": "loss", "eval_every": None,
                                      "progress": False, "max_steps": None})
    result = fit(model, loader, compute_loss=compute_loss, evaluate=lambda module: {"loss": 0.0}, config=config,
                 run_dir=work, parameter_groups=groups, greater_is_better=False)
    return result.train_seconds


def profile_epoch(model, loader, compute_loss, train) -> list[dict]:
    """The operators that take the time of one hand-written epoch (torch.profiler, self CPU time)."""
    from torch.profiler import ProfilerActivity, profile

    optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for batch in loader:
            loss = compute_loss(model, batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    events = sorted(profiler.key_averages(), key=lambda event: event.self_cpu_time_total, reverse=True)
    total = sum(event.self_cpu_time_total for event in events) or 1
    return [{"operator": event.key, "share": round(event.self_cpu_time_total / total, 3),
             "calls": event.count} for event in events[:10]]


def run_overhead(work: Path, quick: bool, repeats: int, epochs: int) -> list[dict]:
    rows = []
    for name, family, dataset, overrides in OVERHEAD_RUNS:
        folder = quick_slice(SHARED / dataset, work, 400, 50) if quick else SHARED / dataset
        config = load_config(ROOT / "configs" / f"{family}.yaml",
                             [*data_overrides(folder), *overrides, f"output_dir={work / 'unused'}"])
        model, loader, loss, groups, tokenizer = prepare(config)
        initial = copy.deepcopy(model.state_dict())
        tokens = count_tokens(loader) * epochs
        timings = {"encoderkit": [], "hand-written": []}
        for repeat in range(repeats):  # interleaved: each repeat runs both, the same machine state
            for side in timings:
                model.load_state_dict(initial)
                torch.manual_seed(config.seed)
                if side == "encoderkit":
                    seconds = encoderkit_loop(model, loader, loss, groups(model), config.train, epochs,
                                              work / f"fit-{family}-{dataset}-{repeat}")
                else:
                    seconds = hand_written_loop(model, loader, loss, groups(model), config.train, epochs)
                timings[side].append(seconds)
                print(f"  {name} {side}: {tokens / seconds:,.0f} tokens/s", flush=True)
        ours, theirs = statistics.median(timings["encoderkit"]), statistics.median(timings["hand-written"])
        row = {"name": name, "vocabulary": tokenizer.vocab_size, "epochs": epochs, "tokens": tokens,
               "encoderkit_tokens_per_second": round(tokens / ours), "hand_tokens_per_second": round(tokens / theirs),
               "ratio": round(theirs / ours, 3),
               # The fastest repeat of each side: what the code costs when nothing else interferes (timeit's rule).
               "ratio_fastest": round(min(timings["hand-written"]) / min(timings["encoderkit"]), 3),
               "encoderkit_seconds_per_epoch": round(ours / epochs, 2),
               "hand_seconds_per_epoch": round(theirs / epochs, 2), "timings": timings}
        if dataset == "sms_spam":
            model.load_state_dict(initial)
            row["profile"] = profile_epoch(model, loader, loss, config.train)
        rows.append(row)
        print(f"  {name}: encoderkit / hand-written = {row['ratio']:.3f}", flush=True)
    return rows


# -- ddp: one process against two ------------------------------------------------------------------


def train_command(config: Path, overrides: list[str], processes: int) -> list[str]:
    launcher = [sys.executable] if processes == 1 else [sys.executable, "-m", "torch.distributed.run",
                                                          "--standalone", f"--nproc-per-node={processes}"]
    return [*launcher, "-m", "encoderkit", "train", str(config), *overrides, "--overwrite"]


def run_ddp(work: Path, quick: bool, threads: int) -> list[dict]:
    folder = quick_slice(SHARED / "trec", work, 400, 50) if quick else SHARED / "trec"
    rows = []
    for processes in (1, 2):
        output = work / f"ddp-{processes}"
        # One process uses every core; two processes get one thread each (the same cores in all).
        overrides = [*data_overrides(folder), f"output_dir={output}", "train.epochs=2", "train.patience=null",
                     "train.progress=false", f"train.num_threads={max(1, threads // processes)}"]
        started = time.perf_counter()
        result = subprocess.run(train_command(ROOT / "configs" / "cnn.yaml", overrides, processes),
                                capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        wall = time.perf_counter() - started
        if result.returncode:
            raise SystemExit(result.stderr[-3000:])
        results = json.loads((output / "results.json").read_text())
        rows.append({"processes": processes, "wall_seconds": round(wall, 1),
                     "train_seconds": round(results["train_seconds"], 1),
                     "test_accuracy": round(results["test"]["accuracy"], 4)})
        print(f"  {processes} process(es): {wall:.1f} s, test accuracy {rows[-1]['test_accuracy']:.4f}", flush=True)
    return rows


# -- bf16 against float32 ----------------------------------------------------------------------------


def run_bf16(work: Path, quick: bool, minilm_steps: int | None) -> list[dict]:
    from encoderkit.tasks.runner import run

    folder = quick_slice(SHARED / "trec", work, 400, 50) if quick else SHARED / "trec"
    rows = []
    for name, config_name, extra in (("CNN TREC", "cnn", []),
                                     ("MiniLM TREC", "trec_minilm",
                                      [f"train.max_steps={minilm_steps}"] if minilm_steps else [])):
        for precision in ("no", "bf16"):
            config = load_config(ROOT / "configs" / f"{config_name}.yaml",
                                 [*data_overrides(folder), *extra, f"output_dir={work / f'bf16-{config_name}-{precision}'}",
                                  f"train.mixed_precision={precision}", "train.progress=false",
                                  *(["train.epochs=1", "train.max_steps=20"] if quick else [])])
            result = run(config, overwrite=True, echo=lambda *_: None)
            rows.append({"name": name, "precision": "float32" if precision == "no" else "bf16",
                         "examples_per_second": round(result.examples_per_second, 1),
                         "train_seconds": round(result.train_seconds, 1), "steps": result.history[-1]["step"],
                         "test_accuracy": round(result.test_metrics["accuracy"], 4)})
            print(f"  {name} {rows[-1]['precision']}: {rows[-1]['examples_per_second']} ex/s, "
                  f"test accuracy {rows[-1]['test_accuracy']}", flush=True)
    return rows


# -- onnx: ONNX Runtime float32 and int8 against eager PyTorch -----------------------------------------


def trained_model(family: str, folder: Path, work: Path, quick: bool) -> Path:
    """The model directory of ``configs/<family>.yaml`` trained on ``folder`` (reused when present)."""
    from encoderkit.tasks.runner import run

    model_dir = work / f"onnx-{family}" / "model"
    if not (model_dir / "config.json").is_file():
        config = load_config(ROOT / "configs" / f"{family}.yaml",
                             [*data_overrides(folder), f"output_dir={model_dir.parent}", "train.progress=false",
                              *(["train.epochs=1", "train.max_steps=20"] if quick else [])])
        run(config, overwrite=True, echo=lambda *_: None)
    return model_dir


def run_onnx(work: Path, quick: bool, repeats: int, threads: int) -> list[dict]:
    import encoderkit
    from encoderkit.errors import ExportError
    from encoderkit.export import export_model

    folder = quick_slice(SHARED / "trec", work, 400, 50) if quick else SHARED / "trec"
    records = [json.loads(line) for line in (folder / "test.jsonl").read_text(encoding="utf-8").splitlines() if line]
    texts, gold = [r["text"] for r in records], [str(r["label"]) for r in records]
    rows = []
    for family in ONNX_FAMILIES:
        model_dir = trained_model(family, folder, work, quick)
        contenders = {"eager float32": encoderkit.load(model_dir)}
        for name, quantize in (("onnx float32", None), ("onnx int8", "int8")):
            target = work / f"onnx-{family}" / name.replace(" ", "-")
            try:
                export_model(model_dir, "onnx", target, overwrite=True, echo=lambda *_: None, quantize=quantize)
            except ExportError as refusal:  # the parity check refused it: a finding, reported as a row
                rows.append({"family": family, "runtime": name, "refused": str(refusal)})
                print(f"  {family} {name}: refused ({refusal})", flush=True)
                continue
            contenders[name] = encoderkit.load(target)
        torch.set_num_threads(threads)
        seconds = {name: [] for name in contenders}
        predictions = {}
        for _ in range(repeats):  # interleaved
            for name, model in contenders.items():
                started = time.perf_counter()
                predictions[name] = model.predict(texts, batch_size=64)
                seconds[name].append(time.perf_counter() - started)
        eager_speed = len(texts) / statistics.median(seconds["eager float32"])
        for name in contenders:
            speed = len(texts) / statistics.median(seconds[name])
            rows.append({"family": family, "runtime": name,
                         "accuracy": round(sum(p == g for p, g in zip(predictions[name], gold)) / len(gold), 4),
                         "agreement_with_eager": round(sum(p == e for p, e in zip(predictions[name],
                                                       predictions["eager float32"])) / len(gold), 4),
                         "sentences_per_second": round(speed), "speedup": round(speed / eager_speed, 2)})
            print(f"  {family} {name}: accuracy {rows[-1]['accuracy']:.4f}, agreement "
                  f"{rows[-1]['agreement_with_eager']:.4f}, {rows[-1]['speedup']:.2f}x eager", flush=True)
    return rows


# -- report ---------------------------------------------------------------------------------------


def markdown(results: dict) -> str:
    env = results["environment"]
    lines = [f"`python benchmarks/efficiency.py` on {env['cpu']}, {env['threads']} threads, torch {env['torch']}. "
             "Every comparison ran in one process, interleaved, alone on the machine; medians.", ""]
    if "overhead" in results:
        lines += ["### Training-loop overhead: encoderkit `fit` vs a hand-written PyTorch loop",
                  "Same model and initial weights, same batches in the same order, AdamW + schedule + clipping; "
                  "training steps only. Ratio = encoderkit tokens/s / hand-written tokens/s (target >= 0.95), of the "
                  "medians and of the fastest repeat of each side (what the code costs when nothing interferes; "
                  "repeats of one side move by 10-30% on this virtual machine).", "",
                  "| run | vocabulary | encoderkit tokens/s | hand-written tokens/s | ratio (medians) | "
                  "ratio (fastest) | s/epoch (ours / hand) |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for row in results["overhead"]:
            fastest = f"{row['ratio_fastest']:.3f}" if "ratio_fastest" in row else "-"
            lines.append(f"| {row['name']} | {row['vocabulary']:,} | {row['encoderkit_tokens_per_second']:,} | "
                         f"{row['hand_tokens_per_second']:,} | {row['ratio']:.3f} | {fastest} | "
                         f"{row['encoderkit_seconds_per_epoch']} / {row['hand_seconds_per_epoch']} |")
        for profiled in (row for row in results["overhead"] if "profile" in row):
            shares = ", ".join(f"{p['operator']} {p['share']:.0%}" for p in profiled["profile"][:6])
            lines += ["", f"Where an epoch of the {profiled['name']} goes (self CPU time): {shares}."]
        lines.append("")
    if "ddp" in results:
        lines += ["### DDP on CPU processes (gloo): the shipped CNN on TREC, 2 epochs", "",
                  "| processes | wall s | training s | test accuracy |", "|---:|---:|---:|---:|"]
        lines += [f"| {r['processes']} | {r['wall_seconds']} | {r['train_seconds']} | {r['test_accuracy']:.4f} |"
                  for r in results["ddp"]]
        lines += ["", "Equality of 1- and 2-process training is a test (`tests/training/test_distributed.py`).", ""]
    if "bf16" in results:
        lines += ["### bf16 autocast vs float32 training", "",
                  "| model | precision | examples/s | training s | steps | test accuracy |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['name']} | {r['precision']} | {r['examples_per_second']} | {r['train_seconds']} | "
                  f"{r['steps']} | {r['test_accuracy']:.4f} |" for r in results["bf16"]]
        lines.append("")
    if "onnx" in results:
        lines += ["### ONNX Runtime float32 and int8 vs eager PyTorch float32 (TREC test, batch 64)", "",
                  "| model | runtime | test accuracy | agreement with eager | sentences/s | speed-up |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['family']} | {r['runtime']} | refused by the export's parity check: {r['refused']} | | | |"
                  if "refused" in r else
                  f"| {r['family']} | {r['runtime']} | {r['accuracy']:.4f} | {r['agreement_with_eager']:.4f} | "
                  f"{r['sentences_per_second']:,} | {r['speedup']:.2f}x |" for r in results["onnx"]]
        lines += ["", "MiniLM sentence embeddings (cosine to float32, speed vs sentence-transformers): "
                  "`benchmarks/onnx_int8.py`, table in its own section.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--quick", action="store_true", help="Small slices: proves every part runs (numbers differ).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved repeats of the overhead comparison.")
    parser.add_argument("--epochs", type=int, default=2, help="Epochs per overhead measurement.")
    parser.add_argument("--minilm-steps", type=int, help="Cap the MiniLM bf16/float32 trainings at this many steps "
                                                         "(default: the shipped config's full schedule).")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = "efficiency.json"
    previous = ROOT / "benchmarks" / "results" / name
    results = json.loads(previous.read_text()) if previous.is_file() and not args.quick else {}
    results["environment"] = {"torch": torch.__version__, "threads": args.threads, "cpu": cpu_name(),
                              "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if "overhead" in args.parts:
            print("overhead: encoderkit fit vs a hand-written loop", flush=True)
            results["overhead"] = run_overhead(work, args.quick, 1 if args.quick else args.repeats,
                                               1 if args.quick else args.epochs)
        if "ddp" in args.parts:
            print("ddp: 1 vs 2 processes", flush=True)
            results["ddp"] = run_ddp(work, args.quick, args.threads)
        if "bf16" in args.parts:
            print("bf16 vs float32", flush=True)
            results["bf16"] = run_bf16(work, args.quick, args.minilm_steps)
        if "onnx" in args.parts:
            print("onnx: ONNX Runtime float32 / int8 vs eager", flush=True)
            results["onnx"] = run_onnx(work, args.quick, 1 if args.quick else args.repeats, args.threads)
    write_results(name, HEADING, markdown(results), results, args.quick)
    print(markdown(results))


if __name__ == "__main__":
    main()

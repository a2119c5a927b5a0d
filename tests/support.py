"""Helpers shared by the tests: where the real corpora are, slices of them, tiny configs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def run_cli(*args, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    """``encoderkit ARGS...`` in a fresh process (the real entry point, exit codes and output streams)."""
    return subprocess.run([sys.executable, "-m", "encoderkit.cli", *map(str, args)], capture_output=True, text=True,
                          input=stdin, cwd=cwd, timeout=600)


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available (the real corpora live in ../shared/data)")
    return path


def shipped_configs(task: str) -> list[Path]:
    """The configs/*.yaml files of one task (a file without ``task:`` is a classification config)."""
    import yaml

    return [path for path in sorted((ROOT / "configs").glob("*.yaml"))
            if (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("task", "classify") == task]


def write_slice(source: Path, target: Path, count: int, every: int = 1) -> Path:
    """Copy every ``every``-th of the first ``count * every`` lines of a JSONL corpus into ``target``."""
    lines = source.read_text(encoding="utf-8").splitlines()[: count * every : every]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def make_trec_slice(folder: Path) -> dict[str, Path]:
    """600 TREC training questions and 200 test questions (all six coarse labels occur)."""
    return {
        "train": write_slice(shared("trec", "train.jsonl"), folder / "train.jsonl", 600, every=9),
        "test": write_slice(shared("trec", "test.jsonl"), folder / "test.jsonl", 200, every=2),
    }


def tiny_config(trec: dict[str, Path], output_dir: Path, **sections) -> dict:
    """A small but real run config (hidden sizes 16-32, few steps) on TREC slices."""
    raw = {
        "output_dir": str(output_dir),
        "data": {"train": str(trec["train"]), "test": str(trec["test"])},
        "tokenizer": {"kind": "word", "vocab_size": 2000},
        "embedding": {"dim": 32, "dropout": 0.0},
        "encoder": {"kind": "cnn", "kernel_sizes": [1, 2], "num_filters": 16},
        "pooling": "max",
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.005, "progress": False, "num_threads": 2},
    }
    for key, value in sections.items():
        raw[key] = value
    return raw


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def make_multi30k_slice(folder: Path, count: int, splits=("train", "val"), start: int = 0,
                        short: int | None = None) -> dict[str, Path]:
    """Line-aligned de/en slices of Multi30k: ``count`` pairs per split (those of at most ``short``
    German words when given); returns the prefix of each split, e.g. ``{"train": folder / "train"}``."""
    prefixes = {}
    for split in splits:
        german = shared("multi30k", f"{split}.de").read_text(encoding="utf-8").splitlines()
        english = shared("multi30k", f"{split}.en").read_text(encoding="utf-8").splitlines()
        rows = [i for i in range(start, len(german)) if short is None or len(german[i].split()) <= short][:count]
        (folder / f"{split}.de").write_text("".join(german[i] + "\n" for i in rows), encoding="utf-8")
        (folder / f"{split}.en").write_text("".join(english[i] + "\n" for i in rows), encoding="utf-8")
        prefixes[split] = folder / split
    return prefixes


def tiny_translate_config(data: dict[str, Path], output_dir: Path, **sections) -> dict:
    """A tiny Transformer translation run (width 32, one layer each side) on Multi30k slices."""
    raw = {
        "task": "translate",
        "output_dir": str(output_dir),
        "data": {"train": str(data["train"]), "validation": str(data.get("val", data["train"]))},
        "tokenizer": {"kind": "bpe", "vocab_size": 400, "lowercase": False, "max_length": 64},
        "embedding": {"dim": 32, "dropout": 0.0, "scale": True},
        "encoder": {"kind": "transformer", "hidden_size": 32, "num_layers": 1, "num_heads": 2, "ff_size": 64,
                    "dropout": 0.0},
        "translate": {"batch_tokens": None, "label_smoothing": 0.0, "beam_size": 3,
                      "decoder": {"kind": "transformer", "hidden_size": 32, "num_layers": 1, "num_heads": 2,
                                  "ff_size": 64, "dropout": 0.0}},
        "train": {"epochs": 2, "batch_size": 8, "lr": 0.01, "progress": False, "num_threads": 2},
    }
    if "test" in data:
        raw["data"]["test"] = str(data["test"])
    for key, value in sections.items():  # a section is merged into the default one, unless it names another kind
        same_kind = isinstance(raw.get(key), dict) and isinstance(value, dict) and \
            value.get("kind", raw[key].get("kind")) == raw[key].get("kind")
        raw[key] = {**raw[key], **value} if same_kind else value
    return raw


class Killed(Exception):
    """Stands in for SIGKILL: raised from inside the optimizer step."""


def kill_after(monkeypatch, steps: int) -> None:
    """Make the optimizer raise ``Killed`` on its step number ``steps + 1``."""
    import torch

    original = torch.optim.AdamW.step
    calls = {"n": 0}

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > steps:
            raise Killed()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)

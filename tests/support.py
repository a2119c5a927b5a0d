"""Helpers shared by the tests: where the real corpora are, slices of them, tiny configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available (the real corpora live in ../shared/data)")
    return path


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

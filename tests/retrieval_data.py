"""Small real retrieval data for the tests: Multi30k caption pairs, tiny bi-encoder configs."""

from __future__ import annotations

import json
from pathlib import Path

from support import shared


def caption_records(split: str, images: int, every: int = 1) -> list[dict]:
    lines = shared("multi30k_captions", f"{split}.en.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[: images * every : every]]


def write_jsonl(records: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


def caption_pairs(folder: Path, train_images: int = 300, validation_images: int = 60) -> dict[str, Path]:
    """train.jsonl: each caption with the next one of its image; validation.jsonl: caption 1 -> captions 2-5."""
    train = [{"query": r["captions"][i], "positive": r["captions"][(i + 1) % 5]}
             for r in caption_records("train", train_images, every=7) for i in range(5)]
    validation = [{"query": r["captions"][0], "positive": caption}
                  for r in caption_records("val", validation_images) for caption in r["captions"][1:]]
    return {"train": write_jsonl(train, folder / "train.jsonl"),
            "validation": write_jsonl(validation, folder / "validation.jsonl")}


def tiny_retrieval_config(files: dict[str, Path], output_dir: Path, **sections) -> dict:
    """A bag-of-embeddings bi-encoder (dim 32) for a few steps."""
    raw = {
        "task": "retrieve",
        "output_dir": str(output_dir),
        "data": {"train": str(files["train"]), "validation": str(files["validation"])},
        "tokenizer": {"kind": "word", "vocab_size": 3000},
        "embedding": {"dim": 32, "dropout": 0.0},
        "encoder": {"kind": "bow"},
        "pooling": "mean",
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.01, "progress": False, "num_threads": 2},
    }
    for key, value in sections.items():
        raw[key] = value
    return raw

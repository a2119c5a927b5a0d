"""Fault injection: kill -9 a training run at seeded random points, again and again, and resume.

A chain of processes trains one tiny model: each resumes the run its predecessor left and is
killed at a random optimizer step or a random file operation (before a rename, or halfway through
writing a file). The run finally completes and must equal, bit for bit, a run that was never
interrupted. Then the finished run is resumed and killed during its model save: the model
directory must keep loading, with the same predictions, every time.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from support import read_jsonl, shared, write_slice

HARNESS = Path(__file__).with_name("harness.py")
TRAINING_KILLS = 20
SAVE_KILLS = 6


def harness(config: Path, kind: str = "none", limit: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HARNESS), str(config), kind, str(limit)], capture_output=True,
                          text=True, timeout=300)


def write_config(folder: Path, name: str, data: dict) -> Path:
    config = {
        "output_dir": str(folder / name),
        "data": {"train": str(data["train"]), "test": str(data["test"])},
        "tokenizer": {"kind": "word", "vocab_size": 600},
        "embedding": {"dim": 16, "dropout": 0.1},
        "encoder": {"kind": "bow"},
        "pooling": "mean",
        "classify": {"head": {"dropout": 0.2}},
        "train": {"epochs": 3, "batch_size": 32, "lr": 0.01, "eval_every": 4, "patience": None, "progress": False},
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def validation_log(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in read_jsonl(run / "metrics.jsonl")]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    data = {"train": write_slice(shared("trec", "train.jsonl"), folder / "train.jsonl", 320, every=13),
            "test": write_slice(shared("trec", "test.jsonl"), folder / "test.jsonl", 60, every=7)}
    config = write_config(folder, "straight", data)
    result = harness(config)
    assert result.returncode == 0, result.stderr
    return folder, data


def test_a_run_killed_twenty_times_ends_as_if_never_killed(straight):
    folder, data = straight
    config = write_config(folder, "killed", data)
    rng = random.Random(2026)
    outcomes = []
    for _ in range(TRAINING_KILLS):
        kind = rng.choice(["step", "io"])
        # Small limits, counted from each process's start: every process dies a little further on.
        limit = rng.randint(1, 6) if kind == "step" else rng.randint(1, 14)
        result = harness(config, kind, limit)
        outcomes.append((kind, limit, result.returncode))
        assert result.returncode in (0, -9), (kind, limit, result.stderr[-2000:])
    final = harness(config)
    assert final.returncode == 0, (outcomes, final.stderr[-2000:])
    assert sum(code == -9 for *_, code in outcomes) >= TRAINING_KILLS - 3, outcomes  # the points were reached

    a = load_file(str(folder / "straight" / "model" / "model.safetensors"))
    b = load_file(str(folder / "killed" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name].numpy(), b[name].numpy()), (name, outcomes)
    assert validation_log(folder / "straight") == validation_log(folder / "killed"), outcomes
    assert json.loads((folder / "straight" / "results.json").read_text())["test"] == \
        json.loads((folder / "killed" / "results.json").read_text())["test"]


def test_a_model_save_killed_anywhere_leaves_a_loadable_model(straight):
    import encoderkit

    folder, data = straight
    model_dir = folder / "straight" / "model"
    texts = ["Who wrote Hamlet ?", "How far is the Moon ?", "What is a prism ?"]
    expected = encoderkit.load(model_dir).predict_proba(texts)
    config = folder / "straight.json"
    for limit in range(1, SAVE_KILLS + 1):
        # The finished run, resumed, reloads its best weights and writes its model directory again.
        result = harness(config, "io", limit)
        assert result.returncode in (0, -9), result.stderr[-2000:]
        np.testing.assert_allclose(encoderkit.load(model_dir).predict_proba(texts), expected, atol=1e-6)
    assert harness(config).returncode == 0
    assert not [p for p in (folder / "straight").iterdir() if ".tmp-" in p.name]

"""Two processes with the gloo backend (``torchrun``) train what one process trains.

The same tiny model, data and global batch, trained by ``python`` and by ``torchrun
--nproc-per-node 2``, ends with the same weights (to float tolerance: the gradient is summed in
another order) and the same validation and test metrics; the validation set and the last training
batch do not split evenly over the two processes. A 2-process run killed mid-training resumes to
the weights of an uninterrupted one. A global batch that two processes cannot share is refused
with one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from support import read_jsonl, shared, write_slice

HARNESS = Path(__file__).parents[1] / "faults" / "harness.py"


def launch(config: Path, processes: int, kind: str = "none", limit: int = 0,
           mode: str = "fresh") -> subprocess.CompletedProcess:
    """One run of the fault harness, in one process or under torchrun."""
    command = [sys.executable, str(HARNESS), str(config), kind, str(limit), mode]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                   *command[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**_environment(), "OMP_NUM_THREADS": "1"})


def _environment() -> dict:
    import os

    return dict(os.environ)


def write_config(folder: Path, name: str, data: dict, **train) -> Path:
    config = {
        "output_dir": str(folder / name),
        "seed": 3,
        "data": {"train": str(data["train"]), "test": str(data["test"])},
        "tokenizer": {"kind": "word", "vocab_size": 600},
        # No dropout: each process draws its own masks, so only a deterministic model can match.
        "embedding": {"dim": 16, "dropout": 0.0},
        "encoder": {"kind": "gru", "hidden_size": 16},
        "pooling": "mean",
        "classify": {"head": {"dropout": 0.0}},
        "train": {"epochs": 2, "batch_size": 16, "eval_batch_size": 24, "lr": 0.01, "eval_every": 7,
                  "patience": None, "progress": False, "num_threads": 1, **train},
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def validation(run: Path) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in ("time", "examples_per_second")}
            for record in read_jsonl(run / "metrics.jsonl") if record["split"] == "validation"]


def max_difference(first: Path, second: Path) -> float:
    a, b = load_file(str(first / "model" / "model.safetensors")), load_file(str(second / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    return max(float((a[name] - b[name]).abs().max()) for name in a)


def assert_close_records(first: list[dict], second: list[dict], tolerance: float = 1e-4) -> None:
    assert [r["step"] for r in first] == [r["step"] for r in second]
    for one, other in zip(first, second):
        for key, value in one.items():
            if isinstance(value, float):
                assert other[key] == pytest.approx(value, abs=tolerance), (key, one["step"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    # 301 training texts: 271 train after the 10% validation split, so the last global batch has
    # 15 examples (8 + 7 over two processes), and 30 validation texts split 24 + 6 into batches.
    data = {"train": write_slice(shared("trec", "train.jsonl"), folder / "train.jsonl", 301, every=11),
            "test": write_slice(shared("trec", "test.jsonl"), folder / "test.jsonl", 50, every=7)}
    one = write_config(folder, "one", data)
    two = write_config(folder, "two", data)
    results = {"one": launch(one, 1), "two": launch(two, 2)}
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    return folder, data


def test_two_processes_train_the_weights_one_process_trains(runs):
    folder, _ = runs
    assert max_difference(folder / "one", folder / "two") < 1e-5
    assert_close_records(validation(folder / "one"), validation(folder / "two"))


def test_two_processes_give_the_test_metrics_of_one(runs):
    folder, _ = runs
    one = json.loads((folder / "one" / "results.json").read_text())
    two = json.loads((folder / "two" / "results.json").read_text())
    assert two["test"]["accuracy"] == pytest.approx(one["test"]["accuracy"], abs=1e-9)
    assert two["test"]["macro_f1"] == pytest.approx(one["test"]["macro_f1"], abs=1e-6)
    # Every validation record was logged once (only the main process writes).
    assert len(validation(folder / "two")) == len(validation(folder / "one"))


def test_a_killed_two_process_run_resumes_to_the_same_weights(runs):
    folder, data = runs
    config = write_config(folder, "killed", data)
    killed = launch(config, 2, kind="step", limit=17)
    assert killed.returncode != 0
    assert (folder / "killed" / "checkpoint").is_dir()
    resumed = launch(config, 2, mode="resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert max_difference(folder / "two", folder / "killed") < 1e-6
    assert_close_records(validation(folder / "two"), validation(folder / "killed"), tolerance=1e-6)


def test_a_global_batch_the_processes_cannot_share_is_refused(runs):
    folder, data = runs
    config = write_config(folder, "odd", data, batch_size=15)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                             "-m", "encoderkit", "train", str(_as_yaml(config))], capture_output=True, text=True,
                            timeout=600, env={**_environment(), "OMP_NUM_THREADS": "1"})
    assert result.returncode != 0
    # One line from encoderkit (torchrun then adds its own failure report, which names the exit code).
    assert result.stderr.count("error: train.batch_size=15 is the global batch and must divide by the 2 "
                               "processes; use a multiple of 2") == 1
    frames = [line for line in result.stderr.splitlines() if line.strip().startswith("File ")]
    assert not [frame for frame in frames if "/encoderkit/" in frame], "a traceback from encoderkit's code"
    assert not (folder / "odd").exists()


def _as_yaml(config: Path) -> Path:
    import yaml

    path = config.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(json.loads(config.read_text())))
    return path


def test_embed_and_index_build_shard_over_processes_and_merge_in_order(runs):
    import numpy as np

    folder, data = runs
    model = folder / "one" / "model"
    outputs = {}
    for processes in (1, 2):
        launcher = [sys.executable] if processes == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                              "--nproc-per-node=2"]
        embedded, index = folder / f"embedded-{processes}.npy", folder / f"index-{processes}"
        for command in (["embed", str(model), str(data["test"]), "-o", str(embedded), "--batch-size", "8"],
                        ["index", "build", str(model), str(data["test"]), "-o", str(index), "--batch-size", "8"]):
            result = subprocess.run([*launcher, "-m", "encoderkit", *command], capture_output=True, text=True,
                                    timeout=600, env={**_environment(), "OMP_NUM_THREADS": "1"})
            assert result.returncode == 0, result.stderr[-3000:]
        outputs[processes] = (np.load(embedded), (index / "dense.faiss").read_bytes(),
                              (index / "documents.jsonl").read_text())
    assert outputs[1][0].shape == outputs[2][0].shape == (50, 32)  # bidirectional GRU, 2 x 16
    np.testing.assert_allclose(outputs[2][0], outputs[1][0], atol=1e-6)
    assert outputs[2][1] == outputs[1][1] and outputs[2][2] == outputs[1][2]

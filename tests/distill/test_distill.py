"""Distillation end to end on TREC slices: a tiny bag-of-embeddings teacher, a tiny CNN student."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import encoderkit
from encoderkit.config import validate_config
from encoderkit.errors import ConfigError, ModelDirectoryError
from encoderkit.tasks.runner import run
from support import Killed, kill_after, make_trec_slice, run_cli, shared, tiny_config, write_slice

QUIET = lambda *args, **kwargs: None  # noqa: E731


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> dict:
    """A bag-of-embeddings classifier trained for two epochs on 540 TREC questions."""
    folder = tmp_path_factory.mktemp("teacher")
    trec = make_trec_slice(folder)
    raw = tiny_config(trec, folder / "run", encoder={"kind": "bow"}, pooling="mean")
    return {"trec": trec, "model": run(validate_config(raw), echo=QUIET).model_dir}


def student_config(teacher: dict, output_dir: Path, **distill) -> dict:
    raw = tiny_config(teacher["trec"], output_dir)
    raw["distill"] = {"teacher": str(teacher["model"]), "augment": {"n_iter": 2}, **distill}
    return raw


def test_a_distilled_student_is_an_ordinary_classifier(teacher, tmp_path):
    copy = shutil.copytree(teacher["model"], tmp_path / "teacher")
    unlabelled = tmp_path / "unlabelled.txt"
    lines = shared("trec", "train.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(lines[i])["text"] for i in range(4000, 4200) if i % 9][:100]  # none in the slice
    unlabelled.write_text("\n".join(questions) + "\n", encoding="utf-8")
    config = tmp_path / "student.yaml"
    raw = tiny_config(teacher["trec"], tmp_path / "student")
    raw["distill"] = {"alpha": 0.7}
    config.write_text(json.dumps(raw), encoding="utf-8")

    done = run_cli("distill", copy, config, "distill.augment.n_iter=2", "train.max_steps=20", "--unlabelled", unlabelled)
    assert done.returncode == 0, done.stderr
    assert "transfer set" in done.stderr and "teacher outputs" in done.stderr
    shutil.rmtree(copy)  # the student needs no teacher once trained

    model_dir = tmp_path / "student" / "model"
    student = encoderkit.load(model_dir)
    assert student.task == "classify" and student.predict("Who wrote Hamlet ?") in student.labels
    meta = json.loads((model_dir / "config.json").read_text())
    summary = meta["distillation"]
    assert meta["task"] == "classify" and meta["config"]["distill"]["alpha"] == 0.7
    assert summary["teacher"] == str(copy) and summary["temperature"] == 2.0 and summary["alpha"] == 0.7
    assert summary["teacher_parameters"] > 0 and summary["student_parameters"] == sum(
        t.numel() for t in load_file(str(model_dir / "model.safetensors")).values())
    transfer = summary["transfer_set"]
    assert (transfer["labelled"], transfer["unlabelled"]) == (540, 100) and 500 < transfer["augmented"] <= 1080
    assert transfer["texts"] == 640 + transfer["augmented"]
    report = (tmp_path / "student" / "report.md").read_text()
    assert f"**distilled**: from teacher {copy}" in report and "alpha 0.7" in report
    assert (tmp_path / "student" / "teacher_logits.safetensors").is_file()


def test_a_resumed_run_reuses_the_teacher_outputs_and_ends_where_an_uninterrupted_one_does(teacher, tmp_path,
                                                                                           monkeypatch):
    def config(name):
        raw = student_config(teacher, tmp_path / name, kind="mse")
        raw["train"].update(max_steps=30, eval_every=10, patience=None)
        return validate_config(raw)

    whole = run(config("whole"), echo=QUIET)
    with monkeypatch.context() as patch:
        kill_after(patch, 15)
        with pytest.raises(Killed):
            run(config("resumed"), echo=QUIET)
    assert (tmp_path / "resumed" / "teacher_logits.safetensors").is_file()

    def recompute(*args, **kwargs):
        raise AssertionError("the teacher's outputs were computed again")

    monkeypatch.setattr("encoderkit.distill.task.teacher_logits", recompute)
    resumed = run(config("resumed"), resume=True, echo=QUIET)
    assert resumed.test_metrics["accuracy"] == whole.test_metrics["accuracy"]
    first, second = (load_file(str(r.model_dir / "model.safetensors")) for r in (whole, resumed))
    assert all((first[name] == second[name]).all() for name in first)


def test_an_overwritten_run_keeps_the_teacher_outputs_and_nothing_else(teacher, tmp_path, monkeypatch):
    from encoderkit.distill.teacher import TEACHER_LOGITS
    from encoderkit.tasks.runner import KEPT_CACHES

    assert TEACHER_LOGITS in KEPT_CACHES
    raw = student_config(teacher, tmp_path / "run")
    raw["train"].update(max_steps=5)
    first = run(validate_config(raw), echo=QUIET)
    (tmp_path / "run" / "stale.txt").write_text("from the run before", encoding="utf-8")
    monkeypatch.setattr("encoderkit.distill.task.teacher_logits", lambda *a, **k: pytest.fail("computed again"))
    lines = []
    raw["train"].update(max_steps=6)
    second = run(validate_config(raw), overwrite=True, echo=lines.append)
    assert any("read back from" in str(line) for line in lines)
    assert not (tmp_path / "run" / "stale.txt").exists() and second.model_dir == first.model_dir
    # Other teacher settings, other texts: the cache no longer matches and is computed afresh.
    monkeypatch.undo()
    raw["distill"]["augment"]["n_iter"] = 1
    lines.clear()
    run(validate_config(raw), overwrite=True, echo=lines.append)
    assert any("computed in" in str(line) for line in lines)


def test_a_missing_teacher_is_one_line(teacher, tmp_path):
    config = tmp_path / "student.yaml"
    config.write_text(json.dumps(tiny_config(teacher["trec"], tmp_path / "student")), encoding="utf-8")
    done = run_cli("distill", tmp_path / "nowhere", config)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: teacher not found: {tmp_path / 'nowhere'}; distill.teacher "
                                                "must be the model directory of a trained classifier (the 'model' "
                                                "folder inside its run)"]
    assert not (tmp_path / "student").exists()


def test_a_teacher_of_another_task_or_other_labels_is_refused(teacher, tmp_path):
    retrieval = shutil.copytree(teacher["model"], tmp_path / "retrieval")
    meta = json.loads((retrieval / "config.json").read_text())
    (retrieval / "config.json").write_text(json.dumps({**meta, "task": "retrieve"}))
    with pytest.raises(ConfigError, match="is a retrieve model; distillation needs a classification teacher"):
        run(validate_config(student_config({**teacher, "model": retrieval}, tmp_path / "a")), echo=QUIET)

    spam_file = write_slice(shared("sms_spam", "train.jsonl"), tmp_path / "spam.jsonl", 200)
    spam = {"train": spam_file, "test": spam_file}
    raw = tiny_config(spam, tmp_path / "b")
    raw["distill"] = {"teacher": str(teacher["model"])}
    with pytest.raises(ConfigError, match=r"other labels than the student's training data \(teacher only: ABBR, "
                                          r"DESC, ENTY, HUM, LOC, NUM; data only: ham, spam\)"):
        run(validate_config(raw), echo=QUIET)

    multi = student_config(teacher, tmp_path / "c")
    multi["classify"] = {"multi_label": True}
    with pytest.raises(ConfigError, match="is single-label but the student is multi-label"):
        run(validate_config(multi), echo=QUIET)

    damaged = shutil.copytree(teacher["model"], tmp_path / "damaged")
    (damaged / "labels.json").unlink()
    with pytest.raises(ModelDirectoryError, match="^teacher: .* missing labels.json"):
        run(validate_config(student_config({**teacher, "model": damaged}, tmp_path / "d")), echo=QUIET)
    assert not any((tmp_path / name).exists() for name in "abcd")


def test_alpha_zero_without_extra_texts_trains_exactly_the_plain_model(teacher, tmp_path):
    """The transfer set is then the training set and the loss plain cross-entropy: the same weights."""
    plain = tiny_config(teacher["trec"], tmp_path / "plain")
    plain["train"]["max_steps"] = 12
    distilled = {**plain, "output_dir": str(tmp_path / "distilled"),
                 "distill": {"teacher": str(teacher["model"]), "alpha": 0.0}}
    results = [run(validate_config(raw), echo=QUIET) for raw in (plain, distilled)]
    first, second = (load_file(str(r.model_dir / "model.safetensors")) for r in results)
    assert all(torch.equal(first[name], second[name]) for name in first)

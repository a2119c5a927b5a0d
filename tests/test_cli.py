"""The command line on real data: train, evaluate, predict, and one-line errors for bad input."""

import json
import subprocess
import sys

import pytest
import yaml

from support import ROOT, tiny_config


def run_cli(*args, stdin: str | None = None, cwd=None):
    return subprocess.run([sys.executable, "-m", "encoderkit.cli", *map(str, args)], capture_output=True,
                          text=True, input=stdin, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from support import make_trec_slice

    folder = tmp_path_factory.mktemp("cli")
    config_path = folder / "run.yaml"
    config_path.write_text(yaml.safe_dump(tiny_config(make_trec_slice(folder), folder / "run")))
    result = run_cli("train", config_path, "train.epochs=3", "train.lr=0.02")
    assert result.returncode == 0, result.stderr
    return folder


def test_train_prints_metrics_and_saves_resolved_config(trained_run):
    saved = yaml.safe_load((trained_run / "run" / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 3 and saved["train"]["lr"] == 0.02  # overrides resolved and saved
    assert (trained_run / "run" / "model" / "model.safetensors").is_file()


def test_evaluate_prints_table_and_writes_json(trained_run):
    out = trained_run / "metrics.json"
    result = run_cli("evaluate", trained_run / "run" / "model", trained_run / "test.jsonl", "--json", out)
    assert result.returncode == 0, result.stderr
    assert "macro_f1" in result.stderr
    metrics = json.loads(out.read_text())
    results = json.loads((trained_run / "run" / "results.json").read_text())
    assert metrics["accuracy"] == pytest.approx(results["test"]["accuracy"])


def test_predict_from_arguments_and_stdin(trained_run):
    model = trained_run / "run" / "model"
    result = run_cli("predict", model, "Who wrote Hamlet ?", "How far is the Moon ?")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["Who wrote Hamlet ?", "How far is the Moon ?"]
    assert set(lines[0]["probabilities"]) == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    assert lines[0]["label"] == max(lines[0]["probabilities"], key=lines[0]["probabilities"].get)
    piped = run_cli("predict", model, stdin="Who wrote Hamlet ?\n")
    assert json.loads(piped.stdout)["label"] == lines[0]["label"]


def one_line_error(result, pattern: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error:"), result.stderr
    assert pattern in " ".join(result.stderr.split()), result.stderr


def test_unknown_label_at_evaluation(trained_run, tmp_path):
    data = tmp_path / "odd.jsonl"
    data.write_text(json.dumps({"text": "Is this a question ?", "label": "YESNO"}) + "\n")
    one_line_error(run_cli("evaluate", trained_run / "run" / "model", data), "labels the model never saw")


def test_bad_config_key_and_encoder_name(trained_run):
    config = trained_run / "run.yaml"
    one_line_error(run_cli("train", config, "train.epoch=3"), "unknown config key 'train.epoch'")
    one_line_error(run_cli("train", config, "encoder.kind=lstmm"), "unknown encoder kind 'lstmm'")
    one_line_error(run_cli("train", config, "pooling=avg"), "pooling")


def test_non_utf8_and_missing_file(trained_run, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text": "ok ?", "label": "HUM"}\n{"text": "caf\xe9 ?", "label": "HUM"}\n')
    one_line_error(run_cli("evaluate", trained_run / "run" / "model", bad), "bad.jsonl:2: not valid UTF-8")
    one_line_error(run_cli("evaluate", trained_run / "run" / "model", tmp_path / "none.jsonl"),
                   "data file not found")


def test_debug_shows_traceback(trained_run, tmp_path):
    result = run_cli("--debug", "evaluate", trained_run / "run" / "model", tmp_path / "none.jsonl")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_help_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("train", "evaluate", "predict", "quickstart"):
        assert command in result.stdout


def test_quickstart_on_a_local_folder(tmp_path):
    from support import make_trec_slice

    make_trec_slice(tmp_path)
    result = run_cli("quickstart", "--data", tmp_path, "--output-dir", tmp_path / "qs", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert "predictions from the saved model" in result.stderr
    assert (tmp_path / "qs" / "model" / "model.safetensors").is_file()
    assert (tmp_path / "qs" / "report.md").is_file()


def test_quickstart_uses_the_shipped_cnn_settings(tmp_path):
    from encoderkit.cli import quickstart_config
    from encoderkit.config import load_config, validate_config

    shipped = load_config(ROOT / "configs" / "cnn.yaml")
    quick = validate_config(quickstart_config(tmp_path, tmp_path / "out", shipped.train.epochs))
    for section in ("tokenizer", "embedding", "encoder", "pooling", "classify"):
        assert getattr(quick, section) == getattr(shipped, section), section
    assert quick.train.model_dump(exclude={"num_threads"}) == shipped.train.model_dump(exclude={"num_threads"})

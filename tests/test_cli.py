"""The command line on real data: train, evaluate, predict, and one-line errors for bad input."""

import json
import subprocess
import sys

import pytest
import yaml

from support import ROOT, run_cli, tiny_config


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
    for command in ("train", "distill", "evaluate", "predict", "quickstart"):
        assert command in result.stdout


def test_usage_mistakes_show_usage_not_a_traceback():
    """Unknown options and missing arguments: click's usage message and exit code 2 (whichever copy of
    click Typer runs on: recent releases carry their own)."""
    for arguments, message in ((("embed", "model", "in.jsonl", "--no-such-flag"), "No such option: --no-such-flag"),
                               (("train",), "Missing argument")):
        result = run_cli(*arguments)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr


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


def test_predict_file_keeps_one_row_per_line_with_its_number(trained_run, tmp_path):
    model = trained_run / "run" / "model"
    texts = tmp_path / "texts.txt"
    texts.write_text("Who wrote Hamlet ?\nHow far is the Moon ?\nWhat is a prism ?\n")
    result = run_cli("predict", model, "--file", texts)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["line"], r["text"]) for r in rows] == [(1, "Who wrote Hamlet ?"), (2, "How far is the Moon ?"),
                                                      (3, "What is a prism ?")]
    texts.write_text("Who wrote Hamlet ?\n\nWhat is a prism ?\n")
    one_line_error(run_cli("predict", model, "--file", texts), "texts.txt:2: the text is empty")
    one_line_error(run_cli("predict", model, "Who ?", "  "), "argument 2 is empty")
    one_line_error(run_cli("predict", model, stdin="Who ?\n\n"), "stdin:2 is empty")


def test_evaluate_json_into_a_missing_folder_fails_before_the_work(trained_run, tmp_path):
    result = run_cli("evaluate", trained_run / "run" / "model", trained_run / "test.jsonl",
                     "--json", tmp_path / "nowhere" / "m.json")
    one_line_error(result, "the folder")
    assert "macro_f1" not in result.stderr  # refused before printing metrics


def test_debug_is_accepted_after_the_command_and_brackets_survive(trained_run, tmp_path):
    missing = tmp_path / "caps[v2].jsonl"
    result = run_cli("evaluate", trained_run / "run" / "model", missing)
    one_line_error(result, "caps[v2].jsonl")
    result = run_cli("evaluate", trained_run / "run" / "model", missing, "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_training_into_an_existing_run_names_the_flags(trained_run):
    one_line_error(run_cli("train", trained_run / "run.yaml"), "pass --resume to continue it, --overwrite to replace it")


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(trained_run, tmp_path):
    import signal
    import time

    config = yaml.safe_load((trained_run / "run.yaml").read_text())
    config["output_dir"] = str(tmp_path / "run")
    config["train"].update(epochs=200, patience=None)
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen([sys.executable, "-m", "encoderkit.cli", "train", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (tmp_path / "run" / "checkpoint").is_dir() and time.monotonic() < deadline:
        time.sleep(0.2)  # the first evaluation's checkpoint shows that the loop is running
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"interrupted; the run in {tmp_path / 'run'} continues from its last checkpoint with: " \
           f"encoderkit train {path} --resume" in " ".join(stderr.split())
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert 0 < state["step"] < 200 * 17 and not state.get("finished")

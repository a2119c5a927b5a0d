"""``encoderkit translate``: arguments, files and stdin in input order, JSON lines, scoring against
references, and one-line errors (another task's model, a blank line, a missing file, too long)."""

from __future__ import annotations

import json

import pytest

import encoderkit
from encoderkit.config import validate_config
from encoderkit.tasks.runner import run
from support import make_multi30k_slice, make_trec_slice, run_cli, tiny_config, tiny_translate_config


def one_line_error(result, pattern: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert pattern in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("translate-cli")
    data = make_multi30k_slice(folder, 30, splits=("train", "val"))
    result = run(validate_config(tiny_translate_config(data, folder / "run", train={"epochs": 3},
                                                       tokenizer={"max_length": 128})), echo=lambda *_: None)
    return folder, result.model_dir


def test_arguments_file_and_stdin_come_out_in_input_order(trained):
    folder, model_dir = trained
    sources = (folder / "val.de").read_text(encoding="utf-8").splitlines()[:7]
    expected = encoderkit.load(model_dir).translate(sources, beam=2)
    from_arguments = run_cli("translate", model_dir, *sources[:3], "--beam", "2")
    assert from_arguments.returncode == 0, from_arguments.stderr
    assert from_arguments.stdout.splitlines() == expected[:3]
    source_file = folder / "sources.de"
    source_file.write_text("".join(s + "\n" for s in sources), encoding="utf-8")
    from_file = run_cli("translate", model_dir, "--file", source_file, "--beam", "2", "--batch-size", "3", "--json")
    assert from_file.returncode == 0, from_file.stderr
    records = [json.loads(line) for line in from_file.stdout.splitlines()]
    assert [r["line"] for r in records] == list(range(1, 8)) and [r["source"] for r in records] == sources
    assert [r["translation"] for r in records] == expected
    piped = run_cli("translate", model_dir, "--beam", "2", "--batch-size", "2", stdin="".join(s + "\n" for s in sources))
    assert piped.stdout.splitlines() == expected


def test_reference_scores_with_sacrebleu_signatures(trained):
    folder, model_dir = trained
    result = run_cli("translate", model_dir, "--file", folder / "val.de", "--reference", folder / "val.en", "--beam", "1")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 30
    assert "BLEU " in result.stderr and "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp" in result.stderr
    assert "case:lc" in result.stderr and "chrF " in result.stderr
    short = folder / "short.en"
    short.write_text("One line.\n", encoding="utf-8")
    one_line_error(run_cli("translate", model_dir, "--file", folder / "val.de", "--reference", short),
                   "short.en has 1 lines but 30 texts were translated")


def test_bad_inputs_are_one_line(trained, tmp_path):
    folder, model_dir = trained
    blank = tmp_path / "blank.de"
    blank.write_text("Ein Hund.\n\nEine Katze.\n", encoding="utf-8")
    one_line_error(run_cli("translate", model_dir, "--file", blank), f"{blank}:2: the text is empty")
    one_line_error(run_cli("translate", model_dir, "--file", tmp_path / "missing.de"), "input file not found")
    one_line_error(run_cli("translate", model_dir, stdin="Ein Hund.\n \n"), "stdin:2 is empty")
    long = run_cli("translate", model_dir, " ".join(["Ein Hund rennt über die Wiese."] * 30), "--beam", "1")
    assert long.returncode == 0 and len(long.stdout.splitlines()) == 1
    assert long.stderr.startswith("warning: argument 1 has ") and "reads at most 128 (tokenizer.max_length)" in long.stderr


def test_models_of_other_tasks_are_refused_in_one_line(trained, tmp_path):
    _, model_dir = trained
    classifier = run(validate_config(tiny_config(make_trec_slice(tmp_path), tmp_path / "clf", encoder={"kind": "bow"},
                                                 pooling="mean", train={"epochs": 1, "progress": False})),
                     echo=lambda *_: None)
    one_line_error(run_cli("translate", classifier.model_dir, "Who wrote Hamlet ?"),
                   "is a classify model; encoderkit translate needs a model trained with task: translate")
    one_line_error(run_cli("predict", model_dir, "Ein Hund."),
                   f"{model_dir} is a translate model; encoderkit predict takes classifiers; use encoderkit translate")

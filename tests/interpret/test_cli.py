"""``encoderkit explain`` on a saved model: the shaded text, an HTML page, JSON, one-line errors."""

from __future__ import annotations

import json

import pytest

from support import run_cli
from support_models import FAMILIES, build_classifier, save_classifier


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain")
    save_classifier(build_classifier(FAMILIES["transformer"]), folder / "transformer")
    save_classifier(build_classifier(FAMILIES["cnn"]), folder / "cnn")
    return folder


def test_explain_prints_the_text_and_writes_html_and_json(saved):
    page, scores = saved / "page.html", saved / "scores.json"
    texts = saved / "texts.txt"
    texts.write_text("Who wrote [red]Hamlet ?\nWhere is Rome ?\n", encoding="utf-8")
    result = run_cli("explain", saved / "transformer", "--file", texts, "--method", "attention",
                     "--html", page, "--json", scores)
    assert result.returncode == 0, result.stderr
    assert "Who wrote [red]Hamlet ?" in result.stdout and "#2 prediction:" in result.stdout
    assert page.is_file() and "data:image/png;base64," in page.read_text(encoding="utf-8")
    records = json.loads(scores.read_text(encoding="utf-8"))
    assert [r["text"] for r in records] == ["Who wrote [red]Hamlet ?", "Where is Rome ?"]
    assert [u["text"] for u in records[1]["units"]] == ["Where", "is", "Rome", "?"]
    again = run_cli("explain", saved / "transformer", "x", "--html", page)
    assert again.returncode == 2 and again.stderr.strip().endswith("already exists; pass --overwrite to replace it")
    replaced = run_cli("explain", saved / "transformer", "Who ?", "--html", page, "--overwrite", "--quiet")
    assert replaced.returncode == 0 and replaced.stdout == ""  # --quiet: the page only
    assert ">Who</span>" in page.read_text(encoding="utf-8") and "Rome" not in page.read_text(encoding="utf-8")


@pytest.mark.parametrize(("args", "message"), [
    (["cnn", "Who ?", "--method", "attention"],
     "a cnn encoder with max pooling has no attention weights; methods it can give: ig, grad-input, occlusion"),
    (["cnn", "Who ?", "--target", "[PERSON]"],
     "unknown target label '[PERSON]'; the model's labels: ABBR, DESC, ENTY, HUM, LOC, NUM"),
    (["cnn", "Who ?", "  "], "argument 2 is empty; a model needs some text to read (remove it or fill it in)"),
    (["cnn"], "nothing to explain: pass a text (encoderkit explain MODEL \"text\") or --file"),
    (["cnn", "Who ?", "--html", "missing/page.html"], "the folder missing does not exist; create it first"),
])
def test_bad_input_is_one_line(saved, args, message):
    args = [saved / args[0], *args[1:]]
    if "--html" in args:
        args[-1] = saved / args[-1]
        message = message.replace("folder missing", f"folder {saved / 'missing'}")
    result = run_cli("explain", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.strip().splitlines() == [f"error: {message}"] or result.stderr.strip().endswith(message)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1

"""Explaining a translation: the decoder's cross-attention as an alignment, for the model's own
translation and for a given sentence pair (teacher forcing), in Python and through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import encoderkit
from encoderkit.config import validate_config
from encoderkit.errors import ConfigError, DataError
from encoderkit.tasks.runner import run
from support import make_multi30k_slice, run_cli, tiny_translate_config


@pytest.fixture(scope="module", params=["transformer", "gru"])
def trained(request, tmp_path_factory):
    """A tiny model of each decoder kind trained on 8 short pairs until it repeats them."""
    folder = tmp_path_factory.mktemp(f"align-{request.param}")
    data = make_multi30k_slice(folder, 8, splits=("train",), short=8)
    sections = {"train": {"epochs": 60, "eval_every": 60, "patience": None, "schedule": "constant"}}
    if request.param == "gru":
        sections["encoder"] = {"kind": "gru", "hidden_size": 16, "bidirectional": True}
        sections["translate"] = {"batch_tokens": None, "label_smoothing": 0.0, "beam_size": 3,
                                 "decoder": {"kind": "rnn", "cell": "gru", "embedding_dim": 32, "hidden_size": 32,
                                             "attention": "bahdanau", "dropout": 0.0}}
    result = run(validate_config(tiny_translate_config(data, folder / "run", **sections)), echo=lambda *_: None)
    sources = (folder / "train.de").read_text(encoding="utf-8").splitlines()
    targets = (folder / "train.en").read_text(encoding="utf-8").splitlines()
    return encoderkit.load(result.model_dir), result.model_dir, sources, targets


def test_the_alignment_of_a_translation_is_its_attention_rows(trained):
    model, _, sources, _ = trained
    alignment = model.explain(sources[0], beam=1)
    searched = model.translate(sources[0], beam=1, attention=True)
    assert alignment.translation == searched.text and not alignment.forced
    assert alignment.weights.shape == (len(alignment.target_tokens), len(alignment.source_tokens))
    np.testing.assert_allclose(alignment.weights, searched.attention, atol=1e-6)
    np.testing.assert_allclose(alignment.weights.sum(axis=1), 1.0, atol=1e-4)


def test_teacher_forcing_the_models_own_output_gives_the_same_attention_and_its_score(trained):
    model, _, sources, _ = trained
    for source in sources[:3]:
        searched = model.explain(source, beam=1)
        forced = model.explain(source, target=searched.translation)
        assert forced.forced and forced.target_tokens == searched.target_tokens
        np.testing.assert_allclose(forced.weights, searched.weights, atol=1e-5)
        assert forced.score == pytest.approx(searched.score, abs=1e-3)  # greedy's score is the log-probability


def test_a_learned_pair_is_likely_and_a_mismatched_one_is_not(trained):
    model, _, sources, targets = trained
    learned = model.explain(sources[0], target=targets[0])
    mismatched = model.explain(sources[0], target=targets[1])
    assert learned.score > mismatched.score + 5.0
    assert learned.translation == targets[0]


def test_bad_requests_get_one_line(trained):
    model, _, sources, targets = trained
    with pytest.raises(ConfigError, match="cross-attention; method 'ig' does not apply"):
        encoderkit.interpret.explain_translation(model, sources[0], method="ig")
    with pytest.raises(DataError, match="a target aligns one sentence pair; got 2"):
        model.explain(sources[:2], target=targets[0])
    with pytest.raises(DataError, match="the target is empty"):
        model.explain(sources[0], target=" ")


def test_cli_writes_the_alignment_heatmap_and_the_weights(trained, tmp_path):
    _, model_dir, sources, targets = trained
    page, scores = tmp_path / "align.html", tmp_path / "align.json"
    done = run_cli("explain", model_dir, sources[0], "--target", targets[0], "--html", page, "--json", scores)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cross-attention" in done.stdout and "aligned:" in done.stdout
    assert "data:image/png;base64," in page.read_text(encoding="utf-8")
    record = json.loads(scores.read_text(encoding="utf-8"))[0]
    assert record["forced"] and record["translation"] == targets[0]
    assert np.asarray(record["attention"]).shape == (len(record["target_tokens"]), len(record["source_tokens"]))

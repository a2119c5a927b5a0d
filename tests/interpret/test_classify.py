"""``ClassifierModel.explain`` for every family and method, and one line for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from support import ROOT
from support_models import FAMILIES, TEXTS, build_classifier, build_pretrained_classifier

from encoderkit.errors import ConfigError, DataError
from encoderkit.interpret import DEFAULT_METHOD, METHODS, Explanation, available_methods

SUPPORTED = {
    "bow": ["ig", "grad-input", "occlusion"],
    "cnn": ["ig", "grad-input", "occlusion"],
    "gru": ["ig", "grad-input", "occlusion"],
    "lstm-attention": ["ig", "grad-input", "occlusion", "attention"],
    "transformer": ["ig", "grad-input", "occlusion", "attention"],
}


@pytest.mark.parametrize("family", sorted(SUPPORTED))
def test_every_family_gives_every_method_it_supports(family_models, family):
    pytest.importorskip("captum")
    model = family_models[family]
    assert available_methods(model) == SUPPORTED[family]
    for method in SUPPORTED[family]:
        explanations = model.explain(TEXTS, method=method, steps=8)
        assert [e.text for e in explanations] == TEXTS
        for explanation in explanations:
            assert explanation.method == method
            assert explanation.units == explanation.text.split()  # TREC is tokenized: one unit per word
            assert explanation.scores.shape == (len(explanation.units),)
            assert np.isfinite(explanation.scores).all() and np.abs(explanation.scores).max() > 0
            assert explanation.probability == pytest.approx(model.predict_proba(explanation.text).max(), rel=1e-5)
            assert explanation.target == explanation.prediction == model.predict(explanation.text)


def test_a_pretrained_encoder_gives_every_method(tiny_bert):
    pytest.importorskip("captum")
    model = build_pretrained_classifier(tiny_bert)
    assert available_methods(model) == list(METHODS)
    for method in METHODS:
        explanation = model.explain("Who wrote Hamletesque ?", method=method, steps=8)
        assert explanation.units == ["Who", "wrote", "Hamletesque", "?"]
        assert np.abs(explanation.scores).max() > 0


def test_a_frozen_pretrained_encoder_still_passes_gradients(tiny_bert):
    model = build_pretrained_classifier(tiny_bert, freeze=True)
    explanation = model.explain(TEXTS[0], method="grad-input")
    assert np.abs(explanation.scores).max() > 0
    assert model.model.text_encoder.encoder.freeze is True
    assert not any(p.requires_grad for p in model.model.text_encoder.encoder.parameters())


def test_a_single_text_gives_one_explanation_and_a_list_gives_a_list(family_models):
    model = family_models["cnn"]
    single = model.explain("Who wrote Hamlet ?", method="occlusion")
    assert isinstance(single, Explanation)
    listed = model.explain(["Who wrote Hamlet ?"], method="occlusion")
    assert isinstance(listed, list) and len(listed) == 1
    np.testing.assert_allclose(listed[0].scores, single.scores)
    assert DEFAULT_METHOD in METHODS
    assert model.explain("Who wrote Hamlet ?").method == DEFAULT_METHOD


def test_a_named_target_is_explained_instead_of_the_prediction(family_models):
    model = family_models["bow"]
    probabilities = model.predict_proba(TEXTS[0])
    least = model.labels[int(probabilities.argmin())]
    explanation = model.explain(TEXTS[0], method="grad-input", target=least)
    assert explanation.target == least and explanation.prediction != least
    assert explanation.probability == pytest.approx(float(probabilities.min()), rel=1e-5)


def test_multi_label_models_explain_the_label_probability():
    model = build_classifier(FAMILIES["cnn"], multi_label=True)
    explanation = model.explain(TEXTS[0], method="occlusion", target="HUM")
    assert explanation.probability == pytest.approx(float(model.predict_proba(TEXTS[0])[3]), rel=1e-5)
    assert isinstance(explanation.prediction, list)


def test_long_texts_are_explained_on_their_first_window_and_say_so():
    model = build_classifier(FAMILIES["bow"])
    model.tokenizer.backend.enable_truncation(8)
    explanation = model.explain("one two three four five six seven eight nine ten eleven twelve", method="occlusion")
    assert explanation.truncated and "first window" in explanation.facts()["note"]
    assert len(explanation.units) == 7  # [CLS] + 7 words
    model.tokenizer.backend.enable_truncation(model.tokenizer.max_length)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda m: m.explain("Who ?", target="PERSON"), DataError,
     r"^unknown target label 'PERSON'; the model's labels: ABBR, DESC, ENTY, HUM, LOC, NUM$"),
    (lambda m: m.explain(["Who ?", "  "]), DataError, r"^texts\[1\] is empty"),
    (lambda m: m.explain(""), DataError, r"^texts\[0\] is empty"),
    (lambda m: m.explain("Who ?", method="lime"), ConfigError,
     r"^unknown method 'lime'; methods this model can give: ig, grad-input, occlusion$"),
    (lambda m: m.explain("Who ?", method="attention"), ConfigError,
     r"^a cnn encoder with max pooling has no attention weights; methods it can give: ig, grad-input, occlusion$"),
    (lambda m: m.explain("Who ?", level="sentence"), ConfigError, r"^unknown level 'sentence'; valid levels: word, token$"),
    (lambda m: m.explain([None]), TypeError, r"^texts\[0\] is NoneType, not str$"),
])
def test_bad_input_is_one_line(family_models, call, error, message):
    with pytest.raises(error, match=message) as raised:
        call(family_models["cnn"])
    assert "\n" not in str(raised.value)


def test_the_core_works_without_captum_and_ig_names_the_extra(tmp_path):
    """captum is an extra: import and the other methods work without it; ig is one line naming the install."""
    script = f"""
import sys
sys.modules["captum"] = None  # as if not installed
sys.path[:0] = [{str(ROOT / 'tests')!r}, {str(ROOT / 'src')!r}]
import encoderkit, encoderkit.interpret
from support_models import FAMILIES, build_classifier
from encoderkit.errors import EncoderkitError
model = build_classifier(FAMILIES["cnn"])
print(model.explain("Who wrote Hamlet ?", method="occlusion").units)
try:
    model.explain("Who wrote Hamlet ?", method="ig")
except EncoderkitError as error:
    print("error:", error)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "['Who', 'wrote', 'Hamlet', '?']" in result.stdout
    assert "error: integrated gradients need captum: pip install 'encoderkit[interpret]'" in result.stdout


def test_default_is_the_most_faithful_measured():
    """``DEFAULT_METHOD`` follows benchmarks/results/interpret.json once the benchmark has been run."""
    path = ROOT / "benchmarks" / "results" / "interpret.json"
    if not path.is_file():
        pytest.skip("benchmarks/interpret.py has not been run yet")
    results = json.loads(path.read_text(encoding="utf-8"))
    if results.get("quick"):
        pytest.skip("only a --quick run is recorded")
    assert results["most_faithful"] == DEFAULT_METHOD

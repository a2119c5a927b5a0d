"""Exports that cannot or must not be made are one line each, and leave nothing on disk."""

from __future__ import annotations

import shutil
import sys
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from support import run_cli  # noqa: E402
from support_models import FAMILIES, build_classifier, save_classifier  # noqa: E402


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_classifier(build_classifier(FAMILIES["cnn"]), tmp_path_factory.mktemp("refusals") / "model")


def test_an_incomplete_model_directory_is_named(model_dir, tmp_path):
    from encoderkit.errors import ModelDirectoryError
    from encoderkit.export import export_model

    broken = shutil.copytree(model_dir, tmp_path / "broken")
    (broken / "model.safetensors").unlink()
    with pytest.raises(ModelDirectoryError, match="not a complete encoderkit model: missing model.safetensors"):
        export_model(broken, "onnx", tmp_path / "out", echo=quiet)
    assert not (tmp_path / "out").exists()


def test_unknown_format_quantization_and_misplaced_options_are_one_line(model_dir, tmp_path):
    from encoderkit.errors import ConfigError
    from encoderkit.export import export_model

    with pytest.raises(ConfigError, match="unknown export format 'tflite'; valid formats: sentence-transformers, onnx"):
        export_model(model_dir, "tflite", tmp_path / "out")
    with pytest.raises(ConfigError, match="--quantize does not apply to --format sentence-transformers; it works "
                                          "with --format onnx"):
        export_model(model_dir, "sentence-transformers", tmp_path / "out", quantize="int8")
    result = run_cli("export", model_dir, "-o", tmp_path / "out", "--format", "onnx", "--quantize", "int4")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: unknown quantization 'int4'; valid choices: int8"
    assert not (tmp_path / "out").exists()


def test_a_failed_parity_check_names_the_difference_and_the_text(model_dir, tmp_path, monkeypatch):
    import encoderkit.onnx.export as onnx_export
    from encoderkit.errors import ExportError
    from encoderkit.export import export_model

    texts = ["Who wrote Hamlet ?", "How far is the Moon ?", "What does NASA stand for ?"]
    check = tmp_path / "check.txt"
    check.write_text("\n".join(texts) + "\n", encoding="utf-8")
    original = onnx_export.eager_outputs

    def off_by_a_little(*args):  # stands in for a graph that drifts from the model on one text
        outputs = original(*args)
        outputs["logits"] = outputs["logits"] + np.array([[0.0], [0.01], [0.0]], dtype=np.float32)
        return outputs

    monkeypatch.setattr(onnx_export, "eager_outputs", off_by_a_little)
    with pytest.raises(ExportError, match=r"ONNX float32 parity check failed: max \|logit difference\| 1.00e-02 > "
                                          r"\d\.\de-04 on 'How far is the Moon \?' \(3 texts from .*check.txt\); "
                                          "nothing was written"):
        export_model(model_dir, "onnx", tmp_path / "out", echo=quiet, check_texts=check)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["check.txt"]  # no output, no temporary folder


def _classifier_outputs(probabilities: np.ndarray) -> dict:
    return {"logits": np.log(probabilities), "probabilities": probabilities,
            "sentence_embedding": np.ones((len(probabilities), 4), dtype=np.float32)}


def test_int8_classifier_parity_judges_the_labels_and_the_mean_move_not_one_text():
    from encoderkit.errors import ExportError
    from encoderkit.onnx.parity import compare

    rng = np.random.default_rng(0)
    texts = [f"text {i}" for i in range(64)]
    eager = np.full((64, 3), 0.02, dtype=np.float32)
    eager[np.arange(64), rng.integers(0, 3, 64)] = 0.96
    # One sharp text flips (moves by 0.6), as int8 does to a few texts of a fine-tuned classifier: accepted.
    flipped = eager.copy()
    flipped[5] = np.roll(flipped[5], 1)
    parity = compare("classify", "int8", texts, "test", _classifier_outputs(eager), _classifier_outputs(flipped))
    assert parity.label_agreement == pytest.approx(63 / 64) and parity.max_probability_diff == pytest.approx(0.94)
    # A broken graph (outputs unrelated to the inputs) disagrees on most labels: refused, naming a text.
    broken = eager[rng.permutation(64)]
    with pytest.raises(ExportError, match=r"ONNX int8 parity check failed: labels agree on \d+\.\d% of the texts "
                                          r"< 95% on 'text \d+' \(64 texts from test\)"):
        compare("classify", "int8", texts, "test", _classifier_outputs(eager), _classifier_outputs(broken))
    # Every text nudged by 0.03: the labels hold, the mean move is past its bound.
    nudged, rows, top = eager.copy(), np.arange(64), eager.argmax(1)
    nudged[rows, top] -= 0.03
    nudged[rows, (top + 1) % 3] += 0.03
    with pytest.raises(ExportError, match=r"the probabilities moved by 0\.0\d\d on average > 0\.02"):
        compare("classify", "int8", texts, "test", _classifier_outputs(eager), _classifier_outputs(nudged))


def test_translation_models_are_not_exported_yet():
    from encoderkit.errors import ExportError
    from encoderkit.onnx.export import graphs_of

    with pytest.raises(ExportError, match="exporting a translate model to ONNX is not supported yet"):
        graphs_of(SimpleNamespace(task="translate"))


def test_an_export_is_not_exported_again(model_dir, tmp_path):
    from encoderkit.errors import ExportError
    from encoderkit.export import export_model

    first = export_model(model_dir, "onnx", tmp_path / "first", echo=quiet)
    with pytest.raises(ExportError, match="is already an export; export the model directory it came from"):
        export_model(first, "onnx", tmp_path / "second", echo=quiet)


def test_loading_an_export_without_onnxruntime_says_what_to_install(model_dir, tmp_path, monkeypatch):
    import encoderkit
    from encoderkit.errors import EncoderkitError
    from encoderkit.export import export_model

    exported = export_model(model_dir, "onnx", tmp_path / "onnx", echo=quiet)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(EncoderkitError, match=r"onnxruntime, which is not installed: pip install onnxruntime"):
        encoderkit.load(exported)

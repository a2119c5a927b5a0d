"""int8 graphs with onnxruntime's dynamic quantization, and the recipe ``--quantize int8`` uses.

Dynamic quantization: each MatMul with a constant weight W (K,N) becomes

    y = (x_q - z_x) s_x  @  W_q s_W        x_q = round(x / s_x) + z_x  (uint8, s_x, z_x per call)

with W_q 8-bit and ``s_W`` one scale per output column (``per_channel``), so a column of small
weights is not rounded on the scale of the largest. ``s_x`` is one scale for the whole (B*T, K)
input of the call: a few large activations (outlier channels, the tail of GELU) coarsen it for
every other value, and some layers pass that error on more than others.

The recipe (``quantize_graph``), measured on all-MiniLM-L6-v2 (docs/export.md, benchmarks/onnx_int8.py):

1. Pretrained BERT-like encoders are traced with eager attention (``export.plain_attention``) and
   fused by ``onnxruntime.transformers.optimizer``: one ``Attention`` node per layer (Q, K, V
   projections in one matrix), SkipLayerNormalization, BiasGelu.
2. Every weight is quantized: each MatMul with a constant weight (``MatMulConstBOnly``) and each
   fused attention's Q, K, V projection (``QAttention``; the Q K^T and softmax V products stay
   float), weights uint8 per output channel (``WEIGHT_TYPE``), activations uint8.
3. The MatMuls that move the embedding most when quantized alone stay float32 (``KEEP_FLOAT``):
   the first layer's FFN down-projection (``output.dense``, whose input is GELU's long-tailed
   output) and the most sensitive FFN up-projection. Found by quantizing one node at a time
   (``sensitivity``). On MiniLM, with int8 weights on an AVX512-VNNI CPU, every weight quantized
   gives mean cosine 0.9939; these 2 float 0.9958, the fewest that keeps the mean >= 0.995.
   Quantizing the fused attention is what makes it fast: 3.2x sentence-transformers' float32
   speed there, against 2.5x with Q, K, V float (one run alone).

Why uint8 weights (U8U8) and not int8 (U8S8, onnxruntime's default): on x86 CPUs without VNNI
(AVX2 only, or AVX-512 without VNNI) onnxruntime multiplies uint8 by int8 with ``vpmaddubsw``,
which adds pairs of products into int16 and saturates: the same int8 graph gives a different,
worse answer there (MiniLM mean cosine 0.9946, a tiny classifier's probabilities moved 0.031 on
average, measured on an AVX2 machine) than on a VNNI CPU. uint8 x uint8 does not saturate: on that
AVX2 machine (1,500 texts) worst/mean cosine 0.9922/0.9960 at 2.0x sentence-transformers' speed,
against 0.9893/0.9952 at 2.3x for 7-bit int8 weights (``reduce_range``, also exact). An exported
file runs wherever it is copied, so it takes the type that is right, with a margin, on every CPU.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

#: Name patterns of MatMuls the recipe keeps float32 (matched against the exported node names).
KEEP_FLOAT = (r"layer\.0/output/dense/MatMul", r"layer\.4/intermediate/dense/MatMul")
#: Weight type: uint8 (U8U8) is exact on every x86 CPU; int8 (U8S8) saturates without VNNI (above).
WEIGHT_TYPE = "uint8"
#: Operators quantized: weight MatMuls and fused attention (``QAttention``).
QUANTIZED_OPS = ("MatMul", "Attention")


def quantizable_nodes(path: str | Path) -> list[str]:
    """Names of the nodes int8 can quantize: MatMuls whose second input is a constant weight, and
    fused ``Attention`` nodes (their Q, K, V projection is one constant weight)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {tensor.name for tensor in graph.initializer}
    return [node.name for node in graph.node
            if node.op_type in QUANTIZED_OPS and len(node.input) > 1 and node.input[1] in constants]


def fuse_bert(source: str | Path, target: str | Path, num_heads: int, hidden_size: int) -> None:
    """``onnxruntime.transformers.optimizer`` fusions for a BERT-like encoder (no float16, CPU)."""
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(str(source), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                                     opt_level=0)
    fused.save_model_to_file(str(target))


def quantize_file(source: str | Path, target: str | Path, *, per_channel: bool = True, reduce_range: bool = False,
                  weight_type: str = WEIGHT_TYPE, keep_float: Sequence[str] = (),
                  only: Sequence[str] | None = None) -> None:
    """Dynamic 8-bit quantization of the weight MatMuls of ``source`` into ``target``.

    Args:
        weight_type: ``"uint8"`` (U8U8, the default) or ``"int8"`` (U8S8: saturates on CPUs without VNNI).
        keep_float: node names left float32.
        only: quantize just these nodes (``sensitivity``); None: all weight MatMuls.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs advice for image models ("run pre-processing")
    try:
        quantize_dynamic(str(source), str(target), per_channel=per_channel, reduce_range=reduce_range,
                         weight_type={"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[weight_type],
                         op_types_to_quantize=list(QUANTIZED_OPS),
                         nodes_to_quantize=list(only) if only is not None else None,
                         nodes_to_exclude=list(keep_float),
                         # Only weights: products of two activations (attention scores) keep float32.
                         # DefaultTensorType: fused contrib ops have no inferred output types.
                         extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)


def matching(names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    return [name for name in names if any(re.search(pattern, name) for pattern in patterns)]


def sensitivity(source: str | Path, work: Path, embed: Callable[[Path], "object"]) -> dict[str, tuple[float, float]]:
    """Quantize one node at a time; node -> (worst, mean) cosine of ``embed`` to float32.

    Args:
        embed: graph file -> (N,H) embeddings of fixed texts.
    """
    from encoderkit.onnx.parity import cosines

    reference = embed(Path(source))
    result = {}
    for name in quantizable_nodes(source):
        target = work / "one.onnx"
        quantize_file(source, target, only=[name])
        cos = cosines(reference, embed(target))
        result[name] = (float(cos.min()), float(cos.mean()))
    return result


def quantize_graph(path: Path, loaded, keep_float_patterns: Sequence[str] = KEEP_FLOAT) -> None:
    """Replace the float32 graph file ``path`` of ``loaded`` by its int8 version (the recipe above)."""
    source = path.with_name(path.stem + ".float32.onnx")
    fused = path.with_name(path.stem + ".fused.onnx")
    path.replace(source)
    try:
        hf_config = _bert_like_config(loaded)
        if hf_config is not None:
            fuse_bert(source, fused, hf_config.num_attention_heads, hf_config.hidden_size)
            source.unlink()
            source = fused
        keep = matching(quantizable_nodes(source), keep_float_patterns)
        quantize_file(source, path, keep_float=keep)
    finally:
        source.unlink(missing_ok=True)
        fused.unlink(missing_ok=True)


def _bert_like_config(loaded):
    """The Hugging Face config of a pretrained BERT-family encoder (what the fusions recognise), else None."""
    encoder = loaded.model.text_encoder.encoder
    config = getattr(getattr(encoder, "model", None), "config", None)
    if config is None or getattr(config, "model_type", "") not in ("bert", "roberta", "xlm-roberta", "distilbert",
                                                                   "electra", "mpnet"):
        return None
    return config

"""A loaded classification or retrieval model -> ONNX graph(s), checked against eager PyTorch.

Exporter: ``torch.onnx.export(..., dynamo=False)``, the TorchScript tracer. The dynamo exporter
(torch.export) refuses every recurrent encoder, whose ``pack_padded_sequence`` sorts by lengths
only known at run time, and the pretrained encoder, which skips its attention mask when a batch
has no padding (a data-dependent branch); the tracer records the path the example batch takes
and ONNX's ops replay it at any batch size and length (checked by the parity test at shapes
other than the example's). The example batch therefore always holds padding, so the traced path
is the masked one, which is also right for a batch without padding.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

import encoderkit
from encoderkit.errors import ExportError
from encoderkit.onnx import CONFIG_FILE, EMBEDDING, FORMAT, FORMAT_VERSION, GRAPH_FILES, INPUT_NAMES, LOGITS
from encoderkit.onnx.parity import CHECK_BATCH_SIZE, Parity, check_texts, compare
from encoderkit.onnx.runtime import open_session, run_graph
from encoderkit.outputs import softmax_or_sigmoid
from encoderkit.text_encoder import run_in_length_order

OPSET = 17
#: Two texts of different token counts: the traced batch must hold padding (see the module docstring).
EXAMPLE_TEXTS = ("Hello.", "How far is the Moon from the Earth, in kilometres?")
QUANTIZATIONS = ("int8",)


class ClassifierGraph(nn.Module):
    """input_ids (B,T) int64, attention_mask (B,T) int64 -> logits (B,C), sentence vectors (B,H)."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.text_encoder = classifier.text_encoder
        self.head = classifier.head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        vectors = self.text_encoder(input_ids, attention_mask.bool())  # (B,H)
        return self.head(vectors), vectors


class EmbeddingGraph(nn.Module):
    """input_ids (B,T) int64, attention_mask (B,T) int64 -> sentence vectors (B,H), normalised
    when the text encoder normalises."""

    def __init__(self, text_encoder: nn.Module):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids, attention_mask.bool())


def graphs_of(loaded) -> dict[str, tuple[nn.Module, tuple[str, ...]]]:
    """graph name -> (module to trace, output names), or a one-line refusal for what cannot be exported."""
    if loaded.task not in ("classify", "retrieve"):
        raise ExportError(f"exporting a {loaded.task} model to ONNX is not supported yet (only classification "
                          "and retrieval models); use the model directory with encoderkit itself")
    if getattr(loaded.tokenizer, "max_chunks", 1) > 1:
        raise ExportError("models that split long texts into windows (encoder.max_chunks > 1) cannot be "
                          "exported to ONNX yet: the windows are pooled outside one forward pass")
    if loaded.task == "classify":
        return {"model": (ClassifierGraph(loaded.model), (LOGITS, EMBEDDING))}
    bi_encoder = loaded.model
    graphs = {"model": (EmbeddingGraph(bi_encoder.text_encoder), (EMBEDDING,))}
    if bi_encoder.towers == "separate":  # queries and documents each get their own graph
        graphs["documents"] = (EmbeddingGraph(bi_encoder.document_encoder), (EMBEDDING,))
    return graphs


def example_batch(tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded (2,T) batch: ids and attention_mask, int64."""
    from encoderkit.data.batching import pad_batch

    ids, mask = pad_batch(tokenizer.encode_batch(list(EXAMPLE_TEXTS)), tokenizer.pad_id)
    if bool(mask.all()):
        raise ExportError("the example texts tokenize to the same length, so the traced graph would not see "
                          "padding; please report this tokenizer")
    return ids, mask.long()


def trace_to_onnx(module: nn.Module, example: tuple[torch.Tensor, torch.Tensor], outputs: tuple[str, ...],
                  path: Path) -> None:
    """Write ``module`` as an ONNX graph with dynamic batch and length axes."""
    axes = {name: {0: "batch", 1: "length"} for name in INPUT_NAMES}
    axes.update({name: {0: "batch"} for name in outputs})
    module.eval()
    with warnings.catch_warnings(), torch.no_grad(), _native_warnings_kept_back(), plain_attention(module):
        # The tracer warns at every Python branch on a tensor value, and its C++ shape inference
        # about PackPadded; the module docstring says why each is safe, and the parity check
        # verifies the graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(path), input_names=list(INPUT_NAMES), output_names=list(outputs),
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)


@contextlib.contextmanager
def plain_attention(module: nn.Module):
    """Hugging Face encoders inside ``module`` traced with their plain ("eager") attention.

    Transformers runs BERT's attention through ``scaled_dot_product_attention`` by default; traced,
    it becomes a tangle of IsNaN/Where nodes that onnxruntime's optimizer does not recognise. The
    eager path (softmax(QK^T/sqrt(d) + mask) V, the same function) is fused into one ``Attention``
    node per layer, whose Q, K, V projections int8 then quantizes as one matrix (``QAttention``).
    """
    switched = []
    for child in module.modules():
        config = getattr(child, "config", None)
        if hasattr(child, "set_attn_implementation") and getattr(config, "_attn_implementation", "eager") != "eager":
            switched.append((child, config._attn_implementation))
            child.set_attn_implementation("eager")
    try:
        yield
    finally:
        for child, implementation in reversed(switched):
            child.set_attn_implementation(implementation)


@contextlib.contextmanager
def _native_warnings_kept_back():
    """Hold back what C++ code writes to stderr (file descriptor 2); shown only if the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def eager_outputs(loaded, graph: str, ids: list[list[int]], batch_size: int) -> dict:
    """The eager model's outputs for one graph, batched as the exported side batches them."""
    pad_id = loaded.tokenizer.pad_id
    if loaded.task == "classify":
        model = loaded.model
        logits = run_in_length_order(model, ids, pad_id, batch_size, len(loaded.labels))
        vectors = run_in_length_order(model.text_encoder, ids, pad_id, batch_size, model.text_encoder.output_dim)
        return {LOGITS: logits, EMBEDDING: vectors, "probabilities": softmax_or_sigmoid(logits, loaded.multi_label)}
    tower = loaded.model.document_tower if graph == "documents" else loaded.model.text_encoder
    return {EMBEDDING: run_in_length_order(tower, ids, pad_id, batch_size, tower.output_dim)}


def exported_outputs(loaded, session, outputs: tuple[str, ...], ids: list[list[int]], batch_size: int) -> dict:
    values = dict(zip(outputs, run_graph(session, ids, loaded.tokenizer.pad_id, batch_size, outputs)))
    if LOGITS in values:
        values["probabilities"] = softmax_or_sigmoid(values[LOGITS], loaded.multi_label)
    return values


def export_onnx(loaded, directory: Path, quantize: str | None = None, check_texts_file: str | Path | None = None,
                echo=print) -> dict[str, Parity]:
    """Write the ONNX export of ``loaded`` (a loaded model directory) into the empty folder ``directory``.

    Args:
        quantize: None (float32) or ``"int8"`` (``encoderkit.onnx.int8``).
        check_texts_file: texts for the parity check (one per line, or JSONL/CSV with a ``text`` field);
            default: see ``encoderkit.onnx.parity``.
        echo: prints the parity lines.

    Returns:
        graph name -> the parity measured.

    Raises:
        ExportError: a model that cannot be exported, or a graph that fails the parity check.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantize!r}; valid choices: {', '.join(QUANTIZATIONS)}")
    graphs = graphs_of(loaded)
    texts, source = check_texts(loaded, check_texts_file)
    ids = loaded.tokenizer.encode_batch(texts)
    example = example_batch(loaded.tokenizer)
    precision = quantize or "float32"
    parities = {}
    for name, (module, outputs) in graphs.items():
        path = directory / GRAPH_FILES[name]
        trace_to_onnx(module, example, outputs, path)
        if quantize == "int8":
            from encoderkit.onnx.int8 import quantize_graph

            quantize_graph(path, loaded)
        eager = eager_outputs(loaded, name, ids, CHECK_BATCH_SIZE)
        exported = exported_outputs(loaded, open_session(path), outputs, ids, CHECK_BATCH_SIZE)
        parities[name] = compare(loaded.task, precision, texts, source, eager, exported)
        echo(f"{name}: {parities[name].line()}")
    loaded.tokenizer.save(directory)
    meta = describe(loaded, graphs, quantize, parities)
    # config.json last: a directory is only an export once it names its format.
    (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return parities


def describe(loaded, graphs: dict, quantize: str | None, parities: dict[str, Parity]) -> dict:
    """config.json of an export: what the graphs are, how to feed them, where they came from."""
    config = loaded.config
    text_encoder = loaded.model.text_encoder
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "encoderkit_version": encoderkit.__version__,
        "task": loaded.task,
        "graphs": {name: GRAPH_FILES[name] for name in graphs},
        "inputs": list(INPUT_NAMES),
        "outputs": {name: list(outputs) for name, (_, outputs) in graphs.items()},
        "opset": OPSET,
        "exporter": f"torch.onnx TorchScript tracer (torch {torch.__version__})",
        "quantize": quantize,
        "dim": int(text_encoder.output_dim),
        "max_length": int(loaded.tokenizer.max_length),
        "encoder": config.encoder.kind,
        "pooling": config.pooling,
        "normalize": bool(text_encoder.normalize),
        "source": source_of(loaded),
        "parity": {name: parity.as_dict() for name, parity in parities.items()},
    }
    if loaded.task == "classify":
        meta.update(labels=list(loaded.labels), multi_label=bool(loaded.multi_label), threshold=float(loaded.threshold))
    else:
        meta["towers"] = loaded.model.towers
    return meta


def source_of(loaded) -> dict:
    """The model directory exported and the SHA-256 of its weights file."""
    directory = getattr(loaded, "directory", None)
    if directory is None:
        return {}
    weights = Path(directory) / "model.safetensors"
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"model_dir": str(Path(directory).resolve()), "weights_sha256": digest.hexdigest()}

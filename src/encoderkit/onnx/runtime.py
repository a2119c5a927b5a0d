"""Running an exported graph on onnxruntime, torch-free: sessions, padding, length-ordered batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from encoderkit.errors import EncoderkitError, ModelDirectoryError
from encoderkit.onnx import INPUT_NAMES


def require_onnxruntime():
    """The ``onnxruntime`` module, or a one-line error saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise EncoderkitError("ONNX models run on onnxruntime, which is not installed: pip install onnxruntime "
                              "(or pip install 'encoderkit[onnx]')") from None
    return onnxruntime


def open_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session on the graph file ``path`` (``threads``: intra-op threads, None = all cores)."""
    ort = require_onnxruntime()
    path = Path(path)
    if not path.is_file():
        raise ModelDirectoryError(f"{path} is missing; copy the whole exported folder again")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own classes for a damaged or foreign file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelDirectoryError(f"{path} cannot be loaded by onnxruntime ({first}); export the model again") \
            from None


def pad_ids(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id lists to the longest: ids (B,T) int64 and attention_mask (B,T) int64, 1 at real tokens."""
    longest = max(len(ids) for ids in sequences)
    ids = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    return ids, mask


def run_graph(session, id_lists: Sequence[Sequence[int]], pad_id: int, batch_size: int,
              outputs: Sequence[str]) -> list[np.ndarray]:
    """The graph's ``outputs`` for tokenized texts, each (N, ...) float32 in input order.

    Batches are cut in length order, as ``encoderkit.text_encoder.run_in_length_order`` cuts them
    (the short batch first, padded to the longest text), so a batch pads to nearly its own length.
    """
    lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
    order = np.argsort(-lengths, kind="stable")
    starts = [0, *range(len(order) % batch_size or batch_size, len(order), batch_size)] if len(order) else []
    results: list[np.ndarray | None] = [None] * len(outputs)
    for start, end in zip(starts, [*starts[1:], len(order)]):
        rows = order[start:end]
        ids, mask = pad_ids([id_lists[i] for i in rows], pad_id)
        values = session.run(list(outputs), dict(zip(INPUT_NAMES, (ids, mask))))
        for position, value in enumerate(values):
            if results[position] is None:
                results[position] = np.empty((len(order), *value.shape[1:]), dtype=np.float32)
            results[position][rows] = value
    return [result if result is not None else np.empty((0,), dtype=np.float32) for result in results]

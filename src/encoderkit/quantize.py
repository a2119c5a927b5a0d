"""Faster CPU inference: int8 dynamic quantization and bfloat16, each measured against float32.

* ``int8``: every ``nn.Linear`` gets int8 weights (per output channel by default) and activations
  quantized on the fly per batch (``torch.ao.quantization.quantize_dynamic``). Linear layers hold
  almost all of a Transformer's FLOPs, so this is most of the speed-up; embeddings, LayerNorm and
  softmax stay float32, which keeps the cosine with float32 high.
* ``bf16``: the whole module is cast to bfloat16. Worth it on CPUs with AVX512-BF16/AMX (oneDNN
  kernels); elsewhere it can be slower, which is why ``compare_precision`` reports the speed-up
  measured here rather than assuming one.

``torch.ao.quantization`` is deprecated in favour of torchao; it still ships with torch and needs
no extra package, and its deprecation warnings are silenced here (they are not actionable by users).
"""

from __future__ import annotations

import copy
import statistics
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Literal, Sequence

import numpy as np
import torch
from torch import nn

Precision = Literal["float32", "int8", "bf16"]
PRECISIONS: tuple[str, ...] = ("float32", "int8", "bf16")


def quantize_int8(module: nn.Module, per_channel: bool = True) -> nn.Module:
    """A copy of ``module`` with int8 dynamically quantized Linear layers (CPU inference only).

    Args:
        module: a float32 module (left unchanged).
        per_channel: one weight scale per output row (more accurate) instead of one per matrix.

    Returns:
        The quantized copy, in eval mode.
    """
    from torch.ao import quantization as tq

    qconfig = tq.per_channel_dynamic_qconfig if per_channel else tq.default_dynamic_qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel).*")
        # quantize_dynamic would otherwise quantize the caller's module in place on some versions.
        return tq.quantize_dynamic(copy.deepcopy(module).eval(), {nn.Linear: qconfig}, dtype=torch.qint8)


def to_bfloat16(module: nn.Module) -> nn.Module:
    """A bfloat16 copy of ``module`` in eval mode (the original is left unchanged)."""
    return copy.deepcopy(module).eval().to(torch.bfloat16)


def convert_precision(module: nn.Module, precision: Precision) -> nn.Module:
    """``module`` itself for ``float32``, else its int8 or bf16 copy.

    Raises:
        ValueError: an unknown precision name.
    """
    if precision == "float32":
        return module
    if precision == "int8":
        return quantize_int8(module)
    if precision == "bf16":
        return to_bfloat16(module)
    raise ValueError(f"unknown precision {precision!r}; valid choices: {', '.join(PRECISIONS)}")


@dataclass
class PrecisionReport:
    """Speed and agreement of a reduced-precision encoder against float32 on the same texts.

    ``speedup`` is the ratio of median wall times (float32 / candidate); the cosine figures compare
    each text's vector from both encoders.
    """

    precision: str
    texts: int
    float32_texts_per_second: float
    texts_per_second: float
    speedup: float
    min_cosine: float
    mean_cosine: float

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        return (
            f"{self.precision}: {self.texts_per_second:.0f} texts/s vs float32 {self.float32_texts_per_second:.0f} "
            f"(x{self.speedup:.2f}); cosine with float32 min {self.min_cosine:.4f} mean {self.mean_cosine:.5f}"
        )


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of matching rows of two (N,H) arrays: (N,)."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def compare_precision(
    reference: Callable[[Sequence[str]], np.ndarray],
    candidate: Callable[[Sequence[str]], np.ndarray],
    texts: Sequence[str],
    precision: str,
    repeats: int = 3,
) -> PrecisionReport:
    """Time two encode functions on the same texts, interleaved, and compare their vectors.

    Args:
        reference: float32 ``encode(texts) -> (N,H)``.
        candidate: the reduced-precision ``encode``.
        texts: the sample both embed (a few hundred is enough for a stable ratio).
        precision: the name written into the report.
        repeats: timed runs of each, alternating, after one untimed warm-up each; medians are used.

    Returns:
        A ``PrecisionReport``.
    """
    ref_vectors = reference(texts)  # warm-up, and the vectors compared below
    cand_vectors = candidate(texts)
    ref_times, cand_times = [], []
    for _ in range(repeats):
        ref_times.append(_timed(reference, texts))
        cand_times.append(_timed(candidate, texts))
    cosine = rowwise_cosine(ref_vectors, cand_vectors)
    ref_median, cand_median = statistics.median(ref_times), statistics.median(cand_times)
    return PrecisionReport(
        precision=precision,
        texts=len(texts),
        float32_texts_per_second=len(texts) / ref_median,
        texts_per_second=len(texts) / cand_median,
        speedup=ref_median / cand_median,
        min_cosine=float(cosine.min()),
        mean_cosine=float(cosine.mean()),
    )


def _timed(function: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str]) -> float:
    start = time.perf_counter()
    function(texts)
    return time.perf_counter() - start

"""``train.mixed_precision: auto``: bfloat16 autocast only where the hardware computes in bfloat16.

On a CPU, bfloat16 pays off only with native bfloat16 instructions (``avx512_bf16`` or ``amx_bf16``:
Intel Cooper Lake / Sapphire Rapids and later, AMD Zen 4 and later). Elsewhere oneDNN emulates it,
and emulation is slower than float32, not faster. Measured with torch 2.13 (CPU build, 2 threads) on
an AVX2-only AMD EPYC: ``nn.Linear(512, 8000)`` on 2,000 rows, forward + backward, 0.75 s in float32
against 45.6 s under bfloat16 autocast (60x slower); the GRU translation model trained at 1.17 s a
step in float32 against 12.6 s. On an AVX512-BF16 CPU the same translation Transformer trained 1.45x
faster in bfloat16. So the shipped configs say ``auto`` and a run decides on its own machine:

- ``auto`` -> ``bf16`` on a CUDA GPU that supports it and on a CPU with native bfloat16, else ``no``;
- ``bf16`` asked for explicitly on a CPU without native bfloat16 still runs, with a warning.
"""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path

import torch

#: /proc/cpuinfo flags of CPUs that multiply in bfloat16 natively.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The words of Linux's /proc/cpuinfo, its instruction-set flags among them; empty where unknown."""
    if not sys.platform.startswith("linux"):
        return frozenset()
    try:
        return frozenset(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return frozenset()


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU advertises bfloat16 instructions (False where unknown)."""
    return any(flag in cpu_flags(cpuinfo) for flag in NATIVE_BF16_FLAGS)


def resolve_mixed_precision(mixed_precision: str, on_cpu: bool) -> str:
    """The precision a run uses: ``auto`` made concrete for this machine; a warning for emulated bf16."""
    if mixed_precision == "auto":
        if on_cpu:
            return "bf16" if cpu_has_native_bf16() else "no"
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    if mixed_precision == "bf16" and on_cpu and not cpu_has_native_bf16():
        warnings.warn("train.mixed_precision=bf16 on a CPU without bfloat16 instructions (no avx512_bf16 or "
                      "amx_bf16 in /proc/cpuinfo): bfloat16 is emulated and usually much slower than float32 "
                      "here; use train.mixed_precision=auto (bf16 only where it is native) or no", stacklevel=2)
    return mixed_precision

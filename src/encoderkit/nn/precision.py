"""Recurrent kernels in float32 under CPU autocast.

CPU autocast (``train.mixed_precision: bf16``) speeds up linear layers and attention, but it also
casts torch's fused recurrent kernels (``nn.RNN/LSTM/GRU``, ``torch.gru_cell``, ``torch.lstm_cell``)
to bfloat16, and oneDNN's bfloat16 recurrences are slow or missing. Measured with torch 2.13 (CPU
build, 2 threads, batch 100 x 20 steps, width 256):

========================================  ===========  ===========================
kernel                                    float32      bfloat16 autocast
========================================  ===========  ===========================
bidirectional ``nn.GRU``, forward+backward 0.21 s      2.47 s (12x slower)
``nn.GRU`` forward only                   0.069 s      0.39 s
``nn.GRUCell`` / ``nn.LSTMCell`` step     5.3 / 7.2 ms  25.7 / 34.6 ms
``nn.LSTM`` forward                       0.039 s      fails: "could not create a primitive
                                                       descriptor for the LSTM forward
                                                       propagation primitive"
========================================  ===========  ===========================

So recurrent kernels run through ``float32_recurrence``: with CPU autocast on, it switches autocast
off around the call and gives the kernel float32 inputs (the parameters are float32 already); the
layers around it keep bfloat16. Elsewhere (no autocast, or a GPU, where cuDNN's half-precision
recurrences are fast) the call is unchanged.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence


def cpu_autocast_enabled() -> bool:
    """Whether CPU autocast is on here (``torch.is_autocast_enabled("cpu")``, or its older spelling)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_cpu_enabled()


def _as_float32(value: Any) -> Any:
    if isinstance(value, PackedSequence):
        return value.float() if value.data.is_floating_point() else value
    if isinstance(value, Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, tuple):
        return tuple(_as_float32(part) for part in value)
    return value


def float32_recurrence(kernel: Callable[..., Any], *args: Any) -> Any:
    """``kernel(*args)``, in float32 with autocast off when CPU autocast is on.

    Args:
        kernel: a recurrent module (``nn.GRU`` ...) or function (``torch.gru_cell`` ...).
        args: its arguments; floating tensors, packed sequences and tuples of tensors (an LSTM's
            ``(h, c)``) are cast to float32, anything else (``None``) is passed as is.
    """
    if not cpu_autocast_enabled():
        return kernel(*args)
    with torch.autocast("cpu", enabled=False):
        return kernel(*(_as_float32(arg) for arg in args))

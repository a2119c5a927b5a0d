"""Atomic checkpoints with full resume state, and nothing that needs unpickling code.

A checkpoint directory holds
- ``model.safetensors``: the weights;
- ``optimizer.pt``: optimizer and scheduler state (tensors and numbers only, read with
  ``torch.load(..., weights_only=True)``);
- ``state.json``: loop position, best metric, patience, history and RNG states.
Files are written into a temporary directory which then replaces the old checkpoint, so a run
killed at any moment leaves either the old or the new checkpoint, never half of one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "state.json"


def state_dict_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous, de-aliased CPU tensors (safetensors refuses shared storage)."""
    seen: dict[int, str] = {}
    tensors = {}
    for name, tensor in model.state_dict().items():
        key = tensor.data_ptr()
        if key in seen and tensor.numel() > 0:
            tensors[name] = tensor.detach().cpu().clone().contiguous()
        else:
            seen[key] = name
            tensors[name] = tensor.detach().cpu().contiguous()
    return tensors


def atomic_save_weights(model: nn.Module, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file(state_dict_for_saving(model), str(tmp))
    os.replace(tmp, path)


def load_weights(model: nn.Module, path: Path) -> None:
    model.load_state_dict(load_file(str(path)), strict=True)


def rng_state() -> dict[str, Any]:
    return {
        "python": _jsonable(random.getstate()),
        "numpy": _jsonable(np.random.get_state()[1].tolist()),
        "torch": torch.get_rng_state().tolist(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = list(np.random.get_state())
    np_state[1] = np.asarray(state["numpy"], dtype=np.uint32)
    np.random.set_state(tuple(np_state))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def save_checkpoint(directory: Path, model: nn.Module, optimizer, scheduler, state: dict[str, Any]) -> None:
    """Write a full resume checkpoint to ``directory`` atomically."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(state_dict_for_saving(model), str(tmp / MODEL_FILE))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / OPTIMIZER_FILE)
    (tmp / STATE_FILE).write_text(json.dumps({**state, "rng": rng_state()}))
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(directory: Path) -> Path | None:
    """The complete checkpoint in ``directory`` (or its ``.old`` twin if a crash hit the swap)."""
    for candidate in (Path(directory), Path(directory).with_name(Path(directory).name + ".old")):
        if all((candidate / name).is_file() for name in (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE)):
            return candidate
    return None


def load_checkpoint(directory: Path, model: nn.Module, optimizer, scheduler) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and RNG; return the loop state."""
    load_weights(model, directory / MODEL_FILE)
    extra = torch.load(directory / OPTIMIZER_FILE, weights_only=True, map_location="cpu")
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    state = json.loads((directory / STATE_FILE).read_text())
    restore_rng_state(state.pop("rng"))
    return state

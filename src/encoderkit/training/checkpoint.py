"""Atomic checkpoints with full resume state, and nothing that needs unpickling code.

A checkpoint directory holds
- ``model.safetensors``: the weights;
- ``optimizer.pt``: optimizer and scheduler state (tensors and numbers only, read with
  ``torch.load(..., weights_only=True)``);
- ``state.json``: loop position, best metric, patience, history and RNG states.
- ``state.json`` also holds the flattened run config the checkpoint belongs to, so resuming with
  another config is refused by name (``config_differences``).
Files are written into a temporary directory which then replaces the old checkpoint
(``encoderkit.files.replace_directory``), so a run killed at any moment leaves either the old or the
new checkpoint, never half of one.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from encoderkit.errors import ModelDirectoryError
from encoderkit.files import atomic_path, recover_directory, replace_directory, temporary_sibling

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


def atomic_save_weights(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    with atomic_path(path) as tmp:
        save_file(state_dict_for_saving(model), str(tmp), metadata=metadata)


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a truncated, empty or corrupt file is one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise ModelDirectoryError(f"{path} is missing")
    try:
        return load_file(str(path))
    except Exception as error:  # SafetensorError, OSError or a header that does not parse
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelDirectoryError(f"{path} is damaged (truncated or not a safetensors file: {reason}); "
                                  "copy it again or retrain") from None


def load_weights(model: nn.Module, path: Path) -> None:
    model.load_state_dict(read_weights(path), strict=True)


def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Every random state a training step reads: Python, NumPy, torch's CPU (dropout) and CUDA
    generators, and any named generator of our own (a data loader's)."""
    state = {
        "python": _jsonable(random.getstate()),
        "numpy": _jsonable(np.random.get_state()[1].tolist()),
        "numpy_tail": [int(np.random.get_state()[2]), int(np.random.get_state()[3]),
                       float(np.random.get_state()[4])],
        "torch": torch.get_rng_state().tolist(),
        "generators": {name: generator.get_state().tolist() for name, generator in (generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator] | None = None) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = list(np.random.get_state())
    np_state[1] = np.asarray(state["numpy"], dtype=np.uint32)
    if "numpy_tail" in state:  # position, has_gauss, cached gaussian
        np_state[2:5] = state["numpy_tail"]
    np.random.set_state(tuple(np_state))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])
    for name, generator in (generators or {}).items():
        if name in state.get("generators", {}):
            generator.set_state(torch.tensor(state["generators"][name], dtype=torch.uint8))


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def save_checkpoint(directory: Path, model: nn.Module, optimizer, scheduler, state: dict[str, Any],
                    generators: dict[str, torch.Generator] | None = None,
                    rng_by_process: list[dict[str, Any]] | None = None) -> None:
    """Write a full resume checkpoint to ``directory`` atomically.

    ``rng_by_process``: with several processes, the random states of each (process order), so each
    resumes its own dropout stream; ``rng`` is always this (the main) process's.
    """
    directory = Path(directory)
    tmp = temporary_sibling(directory)
    tmp.mkdir(parents=True)
    try:
        save_file(state_dict_for_saving(model), str(tmp / MODEL_FILE))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / OPTIMIZER_FILE)
        extra = {"rng_by_process": rng_by_process} if rng_by_process else {}
        (tmp / STATE_FILE).write_text(json.dumps({**state, "rng": rng_state(generators), **extra}))
        replace_directory(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def find_checkpoint(directory: Path) -> Path | None:
    """The complete checkpoint in ``directory``, if there is one (a swap a crash cut short is undone)."""
    directory = Path(directory)
    recover_directory(directory)
    if all((directory / name).is_file() for name in (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE)):
        return directory
    return None


def read_checkpoint_state(directory: Path) -> dict[str, Any]:
    """``state.json`` of a checkpoint (loop position, history, config, RNG)."""
    path = Path(directory) / STATE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelDirectoryError(f"{path} is damaged ({error}); the run cannot resume from it: "
                                  "start it again with --overwrite") from None


def load_checkpoint(directory: Path, model: nn.Module, optimizer, scheduler) -> dict[str, Any]:
    """Restore model, optimizer and scheduler; return the loop state (its ``rng`` is restored by the loop,
    at the point of the epoch where it was saved)."""
    load_weights(model, directory / MODEL_FILE)
    extra = torch.load(directory / OPTIMIZER_FILE, weights_only=True, map_location="cpu")
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    return read_checkpoint_state(directory)


def flat_config(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(saved: dict[str, Any], current: dict[str, Any], ignored: set[str]) -> list[str]:
    """``key (old -> new)`` for every flattened key whose value differs, ``ignored`` keys left out."""
    old, new = flat_config(saved), flat_config(current)
    missing = object()
    changed = [key for key in sorted(old.keys() | new.keys())
               if key not in ignored and old.get(key, missing) != new.get(key, missing)]
    # A section whose ``kind`` changed (encoder: bow -> gru) has other options altogether: name the kind only.
    rekinded = {key.removesuffix(".kind") for key in changed if key.endswith(".kind")}
    changed = [key for key in changed
               if key.endswith(".kind") or key.rpartition(".")[0] not in rekinded or (key in old and key in new)]
    return [f"{key} ({old.get(key, '-')!r} -> {new.get(key, '-')!r})" for key in changed]

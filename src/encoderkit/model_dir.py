"""Self-describing model directories: save, validate and load without training code or pickle.

    MODEL_DIR/
      config.json          format version, encoderkit version, task, the resolved run config,
                           and the task's own entries (e.g. multi_label, threshold)
      model.safetensors    the weights of the task's model (text encoder + head)
      tokenizer.json       the Hugging Face tokenizer (+ tokenizer_meta.json: kind, max_length, ...)
      encoder/config.json  pretrained encoders only: the checkpoint's architecture
      ...                  the task's files (classification: labels.json)

A directory is written whole under a temporary name and renamed into place, so a reader (or a
run killed during the save) sees the previous model or the new one, never a mix of both.
``load_model`` reads ``task`` from config.json and returns that task's predictor.
Format 1 (encoderkit 0.1, classification only) is still read: its config is moved into the
current layout by ``upgrade_config``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import encoderkit
from encoderkit.config import RunConfig, config_to_dict, describe_validation_error
from encoderkit.errors import ModelDirectoryError
from encoderkit.files import recover_directory, replace_directory, temporary_sibling

FORMAT = "encoderkit-model"
FORMAT_VERSION = 2
#: Format versions this release reads (1: encoderkit 0.1).
READABLE_VERSIONS = (1, 2)
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
MODEL_SUBDIR = "model"
WEIGHTS_FILE = "model.safetensors"


def save_model(directory: str | Path, model, config: RunConfig, task, spec, *, extra: dict | None = None) -> Path:
    """Write a model directory that ``load_model`` reads back, atomically (see the module docstring).

    Args:
        directory: where the model directory goes (replaced whole if it exists).
        model: the task's trained model; ``model.text_encoder`` holds the tokenizer and encoder.
        config: the resolved run config.
        task: the ``Task`` that trained it (writes its own files through ``save_spec``).
        spec: the task's spec (labels, ...).
        extra: more entries for config.json (e.g. the pretrained vectors' coverage).
    """
    from safetensors.torch import save_file

    from encoderkit.training.checkpoint import state_dict_for_saving

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(directory)
    tmp.mkdir()
    try:
        task_entries = task.save_spec(tmp, spec)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "encoderkit_version": encoderkit.__version__,
            "task": config.task,
            **task_entries,
            "config": config_to_dict(config),
            **(extra or {}),
        }
        save_file(state_dict_for_saving(model), str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        model.text_encoder.tokenizer.save(tmp)
        encoder = model.text_encoder.encoder
        if hasattr(encoder, "save_config"):  # pretrained: the architecture, so loading needs no checkpoint
            encoder.save_config(tmp)
        # config.json last: a directory is only complete once it names its format.
        (tmp / "config.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        _readable_by_all(tmp)
        replace_directory(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _readable_by_all(directory: Path) -> None:
    """Every file with the permissions an ordinary ``open(..., "w")`` gives (safetensors writes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in directory.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def read_model_config(directory: str | Path) -> dict:
    """Check the directory is complete and of a format this version reads; return config.json."""
    directory = Path(directory)
    recover_directory(directory)
    if not directory.is_dir():
        raise ModelDirectoryError(f"model directory not found: {directory}")
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelDirectoryError(
            f"{directory} is not a complete encoderkit model: missing {', '.join(missing)} "
            "(point to the 'model' folder inside a training run)"
        )
    path = directory / "config.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelDirectoryError(f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column "
                                  f"{error.colno}); fix the edit or copy the file again") from None
    except UnicodeDecodeError:
        raise ModelDirectoryError(f"{path} is damaged (not UTF-8 text); copy the model directory again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelDirectoryError(f"{directory} was not written by encoderkit (config.json has no format "
                                  f"'{FORMAT}')")
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ModelDirectoryError(
            f"{directory} has model format v{version} (written by encoderkit {meta.get('encoderkit_version')}); "
            f"this encoderkit {encoderkit.__version__} reads v{', v'.join(map(str, READABLE_VERSIONS))}: install a "
            "matching encoderkit or retrain the model"
        )
    if version == 1:
        meta = {**meta, "config": upgrade_config(meta.get("config") or {})}
    return meta


def upgrade_config(raw: dict) -> dict:
    """A format-1 run config (``head``, ``loss`` and label fields at the top) in the current layout."""
    raw = json.loads(json.dumps(raw))  # a deep copy
    if raw.get("task", "classify") != "classify":
        return raw
    section = raw.setdefault("classify", {})
    for key in ("head", "loss"):
        if key in raw:
            section[key] = raw.pop(key)
    data = raw.get("data") or {}
    for key in ("label_field", "multi_label", "label_separator"):
        if key in data:
            section[key] = data.pop(key)
    train = raw.get("train") or {}
    if train.get("metric") is None:
        train.pop("metric", None)
    return raw


def load_model(directory: str | Path, device: str = "cpu"):
    """Load a model directory written by ``save_model`` (safetensors + JSON only, no pickle).

    A folder written by ``encoderkit export --format onnx`` (config.json format ``encoderkit-onnx``)
    loads as that export's onnxruntime predictor instead, without torch (``encoderkit.onnx``).

    Returns:
        The task's predictor (``ClassifierModel`` for classification, ...).
    """
    from encoderkit.onnx.predictor import is_onnx_export, load_onnx_model

    if is_onnx_export(directory):
        return load_onnx_model(directory)
    from encoderkit.tasks import get_task
    from encoderkit.text_encoder import build_text_encoder
    from encoderkit.tokenization import load_tokenizer
    from encoderkit.training.checkpoint import read_weights

    directory = Path(directory)
    meta = read_model_config(directory)
    from pydantic import ValidationError

    try:
        config = RunConfig.model_validate(meta["config"])
    except ValidationError as error:
        raise ModelDirectoryError(
            f"{directory / 'config.json'} does not fit this encoderkit version: {describe_validation_error(error)}"
        ) from None
    if meta.get("task", config.task) != config.task:
        raise ModelDirectoryError(f"{directory / 'config.json'} is damaged: it names task {meta.get('task')!r} "
                                  f"but its run config says {config.task!r}")
    task = get_task(config.task)
    spec = task.load_spec(config, directory, meta)
    tokenizer = load_tokenizer(directory)
    model = task.build_model(config, build_text_encoder(config, tokenizer, model_dir=directory), spec)
    weights = read_weights(directory / WEIGHTS_FILE)
    expected = model.state_dict()
    problems = _mismatch(expected, weights)
    if problems:
        raise ModelDirectoryError(f"{directory / WEIGHTS_FILE} does not fit {directory / 'config.json'} and "
                                  f"the files beside it ({problems}); were files from two models mixed?")
    model.load_state_dict(weights, strict=True)
    model.to(device)
    return task.predictor(model, config, spec, directory)


def _mismatch(expected: dict, weights: dict) -> str:
    """What differs between the model's parameters and the file's tensors, in a few words."""
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    if missing or unexpected:
        parts = [f"{len(missing)} tensors missing (e.g. {missing[0]})"] if missing else []
        parts += [f"{len(unexpected)} unexpected (e.g. {unexpected[0]})"] if unexpected else []
        return ", ".join(parts)
    for name, tensor in expected.items():
        if tuple(tensor.shape) != tuple(weights[name].shape):
            return f"{name} has shape {tuple(weights[name].shape)}, the model needs {tuple(tensor.shape)}"
    return ""

"""Self-describing model directories: save, validate and load without training code or pickle.

    MODEL_DIR/
      config.json         format version, encoderkit version, task, the resolved run config
      labels.json         label names in output order
      model.safetensors   weights
      tokenizer.json      the Hugging Face tokenizer (+ tokenizer_meta.json: max_length)
      encoder/config.json pretrained encoders only: the checkpoint's architecture
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import encoderkit
from encoderkit.config import RunConfig, config_to_dict, describe_validation_error
from encoderkit.errors import ModelDirectoryError
from encoderkit.text_encoder import TextClassifier, build_classifier, run_in_length_order
from encoderkit.tokenization import Tokenizer
from encoderkit.training.checkpoint import state_dict_for_saving

FORMAT = "encoderkit-model"
FORMAT_VERSION = 1
REQUIRED_FILES = ("config.json", "labels.json", "model.safetensors", "tokenizer.json")


def save_model(directory: str | Path, model: TextClassifier, config: RunConfig, labels: Sequence[str],
               *, multi_label: bool, extra: dict | None = None) -> Path:
    """Write a model directory that ``load_model`` reads back."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "encoderkit_version": encoderkit.__version__,
        "task": "classify",
        "multi_label": multi_label,
        "threshold": config.loss.threshold,
        "config": config_to_dict(config),
        **(extra or {}),
    }
    (directory / "config.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (directory / "labels.json").write_text(json.dumps(list(labels), indent=2), encoding="utf-8")
    tmp = directory / "model.safetensors.tmp"
    save_file(state_dict_for_saving(model), str(tmp), metadata={"format": FORMAT})
    tmp.replace(directory / "model.safetensors")
    model.text_encoder.tokenizer.save(directory)
    encoder = model.text_encoder.encoder
    if hasattr(encoder, "save_config"):  # pretrained: the architecture, so loading needs no checkpoint
        encoder.save_config(directory)
    return directory


def read_model_config(directory: str | Path) -> dict:
    """Check the directory is complete and of a format this version reads; return config.json."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelDirectoryError(f"model directory not found: {directory}")
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise ModelDirectoryError(
            f"{directory} is not a complete encoderkit model: missing {', '.join(missing)} "
            "(point to the 'model' folder inside a training run)"
        )
    try:
        meta = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelDirectoryError(f"{directory / 'config.json'} is not valid JSON ({error.msg})") from None
    if meta.get("format") != FORMAT:
        raise ModelDirectoryError(f"{directory} was not written by encoderkit (config.json has no format "
                                  f"'{FORMAT}')")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelDirectoryError(
            f"{directory} has model format v{version} (written by encoderkit {meta.get('encoderkit_version')}); "
            f"this encoderkit {encoderkit.__version__} reads v{FORMAT_VERSION}: install a matching encoderkit "
            "or retrain the model"
        )
    return meta


class ClassifierModel:
    """A loaded classifier: ``predict``, ``predict_proba``, ``encode`` on raw texts."""

    def __init__(self, model: TextClassifier, labels: list[str], config: RunConfig, multi_label: bool,
                 threshold: float, directory: Path | None = None):
        self.model = model.eval()
        self.labels = labels
        self.config = config
        self.multi_label = multi_label
        self.threshold = threshold
        self.directory = directory

    @property
    def tokenizer(self):
        return self.model.text_encoder.tokenizer

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(N, C) probabilities: softmax for multi-class, independent sigmoids for multi-label."""
        logits = run_in_length_order(self.model, self.tokenizer.encode_batch(list(texts)), self.tokenizer.pad_id,
                                     batch_size, len(self.labels))
        scores = torch.from_numpy(logits)
        probs = torch.sigmoid(scores) if self.multi_label else torch.softmax(scores, dim=-1)
        return probs.numpy()

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list:
        """One label per text (multi-class), or the list of labels above the threshold (multi-label)."""
        return self.decide(self.predict_proba(texts, batch_size))

    def decide(self, probabilities: np.ndarray) -> list:
        if self.multi_label:
            return [[self.labels[j] for j in np.flatnonzero(row >= self.threshold)] for row in probabilities]
        return [self.labels[j] for j in probabilities.argmax(axis=1)]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(N, H) sentence vectors from the text encoder (the input of the classifier head)."""
        return self.model.text_encoder.encode(texts, batch_size)


def load_model(directory: str | Path, device: str = "cpu") -> ClassifierModel:
    """Load a model directory written by ``save_model`` (safetensors + JSON only, no pickle)."""
    directory = Path(directory)
    meta = read_model_config(directory)
    from pydantic import ValidationError

    try:
        config = RunConfig.model_validate(meta["config"])
    except ValidationError as error:
        raise ModelDirectoryError(
            f"{directory / 'config.json'} does not fit this encoderkit version: {describe_validation_error(error)}"
        ) from None
    labels = json.loads((directory / "labels.json").read_text(encoding="utf-8"))
    if config.encoder.kind == "pretrained":
        from encoderkit.encoders.pretrained import CheckpointTokenizer

        tokenizer = CheckpointTokenizer.load(directory)
    else:
        tokenizer = Tokenizer.load(directory)
    model = build_classifier(config, tokenizer, len(labels), model_dir=directory)
    try:
        model.load_state_dict(load_file(str(directory / "model.safetensors")), strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ModelDirectoryError(f"{directory / 'model.safetensors'} does not match config.json: {first}") from None
    model.to(device)
    return ClassifierModel(model, labels, config, bool(meta.get("multi_label")), float(meta.get("threshold", 0.5)),
                           directory)

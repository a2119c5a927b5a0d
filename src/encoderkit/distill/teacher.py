"""The teacher: a classification model directory, checked against the student's data, and its
logits over the transfer set, computed once and cached in the run directory."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from encoderkit.errors import ConfigError, ModelDirectoryError
from encoderkit.files import atomic_path
from encoderkit.model_dir import WEIGHTS_FILE, load_model, read_model_config
from encoderkit.tokenization import UNK

#: The teacher's logits over the transfer set, in the run directory (a resumed or overwritten run
#: reads them back when they were made for the same teacher, texts and labels).
TEACHER_LOGITS = "teacher_logits.safetensors"


def load_teacher(path: str | Path, labels: list[str], multi_label: bool, device: str = "cpu"):
    """The teacher's ``ClassifierModel``; one line for a missing directory, a model of another task, or
    labels (or a multi-label setting) other than the student's data has."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"teacher not found: {path}; distill.teacher must be the model directory of a "
                          "trained classifier (the 'model' folder inside its run)")
    try:
        task = read_model_config(path).get("task", "classify")
        if task != "classify":
            raise ConfigError(f"teacher {path} is a {task} model; distillation needs a classification teacher "
                              "(a model trained with task: classify)")
        teacher = load_model(path, device=device)
    except ModelDirectoryError as error:
        raise ModelDirectoryError(f"teacher: {error}") from None
    if set(teacher.labels) != set(labels):
        only_teacher = sorted(set(teacher.labels) - set(labels))
        only_student = sorted(set(labels) - set(teacher.labels))
        raise ConfigError(f"teacher {path} has other labels than the student's training data (teacher only: "
                          f"{', '.join(only_teacher) or '-'}; data only: {', '.join(only_student) or '-'}); "
                          "distill on data labelled like the teacher's")
    if teacher.multi_label != multi_label:
        kinds = {True: "multi-label", False: "single-label"}
        raise ConfigError(f"teacher {path} is {kinds[teacher.multi_label]} but the student is "
                          f"{kinds[multi_label]}; set classify.multi_label: {str(teacher.multi_label).lower()}")
    return teacher


def teacher_logits(teacher, texts: list[str], labels: list[str], batch_size: int, progress: bool = True,
                   mask_token: str = "[MASK]") -> np.ndarray:
    """(N, C) teacher logits for ``texts``, columns in ``labels`` order (the student's).

    A teacher whose tokenizer has no ``mask_token`` (an encoderkit word tokenizer) reads the
    augmentation's masks as its unknown token.
    """
    from tqdm.auto import tqdm

    vocab = teacher.tokenizer.get_vocab()
    if mask_token not in vocab and UNK in vocab:
        texts = [text.replace(mask_token, UNK) for text in texts]
    with tqdm(total=len(texts), desc="teacher outputs", unit="text", disable=not progress) as bar, torch.no_grad():
        logits = teacher.logits(texts, batch_size=batch_size, progress=bar.update)
    columns = [teacher.labels.index(label) for label in labels]
    return np.ascontiguousarray(logits[:, columns])


def fingerprint(teacher_dir: str | Path, texts: list[str], labels: list[str]) -> str:
    """What the cached logits depend on: the teacher's files, the transfer texts and the label order."""
    digest = hashlib.sha256()
    teacher_dir = Path(teacher_dir)
    for name in ("config.json", WEIGHTS_FILE):
        with open(teacher_dir / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    digest.update(json.dumps([labels, texts], ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def read_cached_logits(path: Path, key: str) -> torch.Tensor | None:
    """The cached logits if ``path`` holds them for ``key``; None when absent or for other inputs."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            if (handle.metadata() or {}).get("fingerprint") != key:
                return None
            return handle.get_tensor("logits")
    except Exception:  # a damaged cache is recomputed, not trusted
        return None


def write_cached_logits(path: Path, logits: torch.Tensor, key: str, teacher_dir: str) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({"logits": logits.contiguous()}, str(tmp), metadata={"fingerprint": key, "teacher": str(teacher_dir)})

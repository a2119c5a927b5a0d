"""The task contract: what varies between classification, retrieval and translation.

The runner (``tasks/runner.py``) owns everything generic: seeds, the run directory, the tokenizer,
pretrained vectors, the training loop, resume, the model directory. A task supplies the rest,
each step a method of ``Task``, called by the runner in this order::

    data   = task.read_data(config)                        files -> checked examples
    tokenizer trained on task.training_texts(data), with task.special_tokens(config)
    spec   = task.spec(config, data)                       what the model needs besides weights (labels...)
    model  = task.build_model(config, text_encoder, spec)  a TextEncoder under the task's head
    loaders = task.loaders(config, data, spec, tokenizer)  train / validation / test batches
    loss   = task.loss_function(config, data, spec)        (model, batch) -> scalar
    task.evaluate(model, loaders.validation, spec, loss)   -> metrics (config.train.metric among them)
    task.save_spec(directory, spec) / task.load_spec(...)  the task's files in a model directory
    task.predictor(model, config, spec, directory)         what ``encoderkit.load()`` returns
    task.write_report(run_dir, config, spec, result)       report.md for the run

A task's metrics, each with whether greater is better, live on its config section
(``ClassifyConfig.METRICS``), so the config validates ``train.metric`` without importing tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader

from encoderkit.config import RunConfig, Section

#: ``loss(model, batch) -> scalar tensor``
LossFunction = Callable[[nn.Module, Any], torch.Tensor]


@dataclass
class Loaders:
    train: DataLoader
    validation: DataLoader
    test: DataLoader | None = None
    #: A line for the console about what building the batches changed (pairs a filter dropped...).
    note: str | None = None


@dataclass
class RunResult:
    """What a finished run reports; ``spec`` is the task's (labels for classification)."""

    task: str
    run_dir: Path
    model_dir: Path
    spec: Any
    validation_metrics: dict[str, float]
    test_metrics: dict | None
    parameters: int
    train_seconds: float
    examples_per_second: float
    best_step: int = 0
    coverage: dict | None = None
    history: list[dict] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        """Classification runs: the label names in output order."""
        return list(self.spec.labels)


class Task(Protocol):
    """One application of a text encoder. Implementations: ``tasks/classify.py`` ..."""

    name: str
    #: The task's config section class (``ClassifyConfig``); its ``METRICS`` name the metrics.
    section: type[Section]

    def read_data(self, config: RunConfig) -> Any:
        """Read and check the training, validation and test files named in ``config.data``."""

    def describe_data(self, data: Any) -> str:
        """One line for the console: sizes, labels, duplicates."""

    def training_texts(self, data: Any) -> Sequence[str]:
        """The texts the tokenizer is trained on (training split only)."""

    def special_tokens(self, config: RunConfig) -> tuple[str, ...]:
        """Tokens the trained tokenizer must hold besides ``[PAD] [UNK] [CLS]`` (a joint translation
        vocabulary's ``<s>`` and ``</s>``); ``()`` for most tasks."""

    def spec(self, config: RunConfig, data: Any) -> Any:
        """What the model needs besides its weights (labels...), saved in the model directory."""

    def build_model(self, config: RunConfig, text_encoder: nn.Module, spec: Any) -> nn.Module:
        """The trainable model: ``text_encoder`` under the task's head."""

    def loaders(self, config: RunConfig, data: Any, spec: Any, tokenizer) -> Loaders:
        """Batches of token ids for training (shuffled, seeded), validation and test."""

    def loss_function(self, config: RunConfig, data: Any, spec: Any) -> LossFunction:
        """``(model, batch) -> loss``."""

    def evaluate(self, model: nn.Module, loader: DataLoader, spec: Any,
                 loss_function: LossFunction | None = None) -> dict:
        """Metrics on one split (floats, plus any tables such as a confusion matrix)."""

    def save_spec(self, directory: Path, spec: Any) -> dict:
        """Write the task's files into a model directory; return entries for its config.json."""

    def load_spec(self, config: RunConfig, directory: Path, meta: dict) -> Any:
        """Read back what ``save_spec`` wrote."""

    def predictor(self, model: nn.Module, config: RunConfig, spec: Any, directory: Path | None) -> Any:
        """The object ``encoderkit.load()`` returns for this task."""

    def write_report(self, run_dir: Path, config: RunConfig, spec: Any, result: RunResult) -> Path:
        """``report.md`` (and plots) for a finished run."""


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """Only the scalar entries (for logs and early stopping)."""
    return {key: float(value) for key, value in metrics.items()
            if isinstance(value, (float, int)) and not isinstance(value, bool)}

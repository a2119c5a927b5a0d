"""Distillation as a task: the classification recipe with a transfer set and the teacher's logits.

The runner (``tasks/runner.py``) trains a config with a ``distill:`` section through ``DistillTask``,
which is ``ClassifyTask`` with four steps changed and the rest passed through unchanged:

    read_data      classification data + the teacher (checked) + the transfer set:
                   training texts (labelled), ``distill.unlabelled`` texts, augmented training texts
    training_texts the student's tokenizer also learns the unlabelled texts' words
    loaders        the training batches are the transfer set, each text with the teacher's logits
                   (computed once, cached in the run directory) and, if it has one, its gold label
    loss_function  ``losses.DistillationLoss``; validation keeps the plain classification loss

The student is saved as an ordinary classification model (``task: classify``): ``encoderkit.load``
reads it without the teacher. Its config.json and report say how it was distilled.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from encoderkit.config import ClassifyConfig, RunConfig
from encoderkit.data.readers import read_texts
from encoderkit.distill.augment import MASK, augment_texts
from encoderkit.distill.teacher import (
    TEACHER_LOGITS,
    fingerprint,
    load_teacher,
    read_cached_logits,
    teacher_logits,
    write_cached_logits,
)
from encoderkit.distributed import is_main_process, on_main_process, sharded_evaluation
from encoderkit.losses import DistillationLoss
from encoderkit.tasks.base import Loaders, LossFunction, RunResult
from encoderkit.tasks.classify import ClassificationData, ClassifySpec, ClassifyTask, EncodedDataset, make_loader, targets
from encoderkit.text_encoder import count_parameters


@dataclass
class TransferSet:
    """The texts the teacher labels: the ``labelled`` training texts first, then the others."""

    texts: list[str]
    labelled: int
    unlabelled: int
    augmented: int

    def describe(self) -> str:
        return (f"transfer set {len(self.texts):,} texts ({self.labelled:,} labelled, {self.unlabelled:,} unlabelled, "
                f"{self.augmented:,} augmented)")


@dataclass
class DistillData:
    classify: ClassificationData
    transfer: TransferSet
    teacher: object  # the teacher's ClassifierModel; dropped once its logits are computed
    #: Unlabelled texts that are also validation or test texts (they leak the teacher's view of them).
    unlabelled_in_evaluation: int = 0


def read_unlabelled(path: str | None, text_field: str, known: set[str]) -> list[str]:
    """The unlabelled file's distinct texts, less those already in ``known`` (the training texts)."""
    if not path:
        return []
    texts = []
    for text in read_texts(path, text_field=text_field):
        if text not in known:
            known.add(text)
            texts.append(text)
    return texts


class DistillTask:
    """``task: classify`` with ``distill:``: see the module docstring."""

    name = "classify"
    section = ClassifyConfig

    def __init__(self, inner: ClassifyTask | None = None):
        self.inner = inner or ClassifyTask()
        #: Filled as the run goes: what config.json and the report say about the distillation.
        self.summary: dict = {}

    def read_data(self, config: RunConfig) -> DistillData:
        data = self.inner.read_data(config)
        settings = config.distill
        device = "cuda" if config.train.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
        # Building the teacher draws random initial weights: keep them off the run's random stream, so
        # the student starts as the same config trained without a teacher would.
        with torch.random.fork_rng(devices=[]):
            teacher = load_teacher(settings.teacher, data.labels, data.multi_label, device=device)
        train_texts = [example.text for example in data.train]
        unlabelled = read_unlabelled(settings.unlabelled, config.data.text_field, set(train_texts))
        augmented = augment_texts(train_texts, settings.augment, config.seed, exclude=unlabelled)
        evaluation = {example.text for example in [*data.validation, *(data.test or [])]}
        transfer = TransferSet(train_texts + unlabelled + augmented, len(train_texts), len(unlabelled), len(augmented))
        self.summary = {"teacher": str(settings.teacher), "teacher_parameters": count_parameters(teacher.model),
                        "kind": settings.kind, "temperature": settings.temperature, "alpha": settings.alpha,
                        "transfer_set": {"texts": len(transfer.texts), "labelled": transfer.labelled,
                                         "unlabelled": transfer.unlabelled, "augmented": transfer.augmented}}
        return DistillData(data, transfer, teacher, sum(text in evaluation for text in unlabelled))

    def describe_data(self, data: DistillData) -> str:
        line = f"{self.inner.describe_data(data.classify)}; {data.transfer.describe()}"
        if data.unlabelled_in_evaluation:
            line += f"; {data.unlabelled_in_evaluation} unlabelled texts are also validation or test texts (leakage)"
        return line

    def training_texts(self, data: DistillData) -> list[str]:
        transfer = data.transfer
        return transfer.texts[: transfer.labelled + transfer.unlabelled]

    def special_tokens(self, config: RunConfig) -> tuple[str, ...]:
        augment = config.distill.augment
        return (MASK,) if augment.n_iter and augment.p_mask > 0 else ()

    def spec(self, config: RunConfig, data: DistillData) -> ClassifySpec:
        return self.inner.spec(config, data.classify)

    def build_model(self, config: RunConfig, text_encoder: nn.Module, spec: ClassifySpec) -> nn.Module:
        model = self.inner.build_model(config, text_encoder, spec)
        parameters = count_parameters(model)
        self.summary.update(student_parameters=parameters,
                            compression=round(self.summary.get("teacher_parameters", 0) / parameters, 2))
        return model

    def teacher_outputs(self, config: RunConfig, data: DistillData) -> tuple[torch.Tensor, str]:
        """(N, C) teacher logits over the transfer set, from the run directory's cache or computed now."""
        settings, texts, labels = config.distill, data.transfer.texts, data.classify.labels
        path = Path(config.output_dir) / TEACHER_LOGITS
        key = fingerprint(settings.teacher, texts, labels)
        cached = read_cached_logits(path, key)
        if cached is not None:
            return cached, f"teacher outputs: {len(texts):,} read back from {path}"
        started = time.perf_counter()
        with sharded_evaluation():  # several processes: each labels every N-th batch, all get every row
            logits = torch.from_numpy(teacher_logits(data.teacher, texts, labels, settings.teacher_batch_size,
                                                     progress=config.train.progress and is_main_process(),
                                                     mask_token=MASK))
        on_main_process(lambda: write_cached_logits(path, logits, key, settings.teacher))
        seconds = time.perf_counter() - started
        return logits, f"teacher outputs: {len(texts):,} computed in {seconds:.1f} s, cached in {path}"

    def loaders(self, config: RunConfig, data: DistillData, spec: ClassifySpec, tokenizer) -> Loaders:
        plain = self.inner.loaders(config, data.classify, spec, tokenizer)  # validation and test as usual
        logits, note = self.teacher_outputs(config, data)
        data.teacher = None  # its logits are all the run needs from it
        transfer = data.transfer
        gold = targets(data.classify.train, spec.labels, spec.multi_label)
        others = len(transfer.texts) - transfer.labelled  # no gold label: a placeholder the loss ignores
        placeholder = torch.zeros((others, *gold.shape[1:]), dtype=gold.dtype)
        labelled = torch.arange(len(transfer.texts)) < transfer.labelled
        dataset = EncodedDataset(tokenizer.encode_batch(transfer.texts), torch.cat([gold, placeholder]),
                                 extras={"teacher": logits, "labelled": labelled})
        train = make_loader(dataset, tokenizer.pad_id, config.train.batch_size, shuffle=True, seed=config.seed)
        return dataclasses.replace(plain, train=train, note="; ".join(filter(None, [plain.note, note])))

    def loss_function(self, config: RunConfig, data: DistillData, spec: ClassifySpec) -> LossFunction:
        plain = self.inner.loss_function(config, data.classify, spec)
        settings = config.distill
        criterion = DistillationLoss(plain.criterion, alpha=settings.alpha, kind=settings.kind,
                                     temperature=settings.temperature, multi_label=spec.multi_label)

        def loss(model: nn.Module, batch) -> torch.Tensor:
            return criterion(model(batch["ids"], batch["mask"]), batch["teacher"], batch["targets"], batch["labelled"])

        loss.criterion = plain.criterion  # the validation loss stays the gold labels' loss
        return loss

    # -- unchanged: the classification task's own steps --------------------------------------------

    def evaluate(self, model: nn.Module, loader, spec: ClassifySpec, loss_function: LossFunction | None = None) -> dict:
        return self.inner.evaluate(model, loader, spec, loss_function)

    def load_spec(self, config: RunConfig, directory: Path, meta: dict) -> ClassifySpec:
        return self.inner.load_spec(config, directory, meta)

    def predictor(self, model: nn.Module, config: RunConfig, spec: ClassifySpec, directory: Path | None):
        return self.inner.predictor(model, config, spec, directory)

    def save_spec(self, directory: Path, spec: ClassifySpec) -> dict:
        return {**self.inner.save_spec(directory, spec), "distillation": self.summary}

    def write_report(self, run_dir: Path, config: RunConfig, spec: ClassifySpec, result: RunResult) -> Path:
        result.facts["distilled"] = describe_distillation(self.summary)
        return self.inner.write_report(run_dir, config, spec, result)


def describe_distillation(summary: dict) -> str:
    """One line for the report: teacher, sizes, loss settings, transfer set."""
    transfer = summary["transfer_set"]
    loss = f"{summary['kind']}, T {summary['temperature']}" if summary["kind"] == "kl" else summary["kind"]
    return (f"from teacher {summary['teacher']} ({summary['teacher_parameters']:,} parameters) into "
            f"{summary['student_parameters']:,} parameters ({summary['compression']}x fewer); loss {loss}, "
            f"alpha {summary['alpha']}; transfer set {transfer['texts']:,} texts ({transfer['labelled']:,} "
            f"labelled, {transfer['unlabelled']:,} unlabelled, {transfer['augmented']:,} augmented)")

"""Text classification: a text encoder under a classifier head, trained with cross-entropy.

    result = train(load_config("configs/cnn.yaml"))
    result.test_metrics["accuracy"], result.model_dir

Read top to bottom, this is the recipe the runner follows for ``task: classify``: read labelled
files, fix the label set, build ``TextClassifier``, batch token ids with their targets, cross-entropy
(or binary cross-entropy for multi-label data), scikit-learn's metrics, ``labels.json`` in the model
directory, and ``ClassifierModel`` as what ``encoderkit.load()`` returns.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from encoderkit.config import ClassifyConfig, RunConfig
from encoderkit.data.batching import LengthBucketSampler, pad_batch
from encoderkit.data.readers import Example, read_examples
from encoderkit.data.splits import stratified_split
from encoderkit.distributed import map_shards
from encoderkit.errors import ConfigError, DataError, ModelDirectoryError
from encoderkit.heads.classifier import ClassifierHead, TextClassifier
from encoderkit.losses import class_weight_vector, classification_loss
from encoderkit.metrics.classification import classification_metrics
from encoderkit.outputs import LabelDecisions, decide_ids
from encoderkit.tasks.base import Loaders, LossFunction, RunResult
from encoderkit.text_encoder import run_in_length_order
from encoderkit.texts import as_text_list

LABELS_FILE = "labels.json"


@dataclass
class ClassificationData:
    train: list[Example]
    validation: list[Example]
    test: list[Example] | None
    labels: list[str]
    multi_label: bool
    #: Training texts that repeat an earlier training text, and test texts also found in train.
    duplicate_train_texts: int = 0
    test_texts_in_train: int = 0


@dataclass(frozen=True)
class ClassifySpec:
    """What a classifier needs besides its weights: label names in output order, and how to decide."""

    labels: tuple[str, ...]
    multi_label: bool
    threshold: float


# -- data ------------------------------------------------------------------------------------


def read_labelled(config: RunConfig, path: str) -> list[Example]:
    section = config.classify
    return read_examples(path, fmt=config.data.format, text_field=config.data.text_field,
                         label_field=section.label_field, multi_label=section.multi_label,
                         label_separator=section.label_separator)


def check_known_labels(examples: Sequence[Example], labels: Sequence[str], source: str) -> None:
    """Refuse labels the model was never trained on, naming them and the labels it knows."""
    known = set(labels)
    unknown = sorted({label for example in examples for label in example.labels} - known)
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise DataError(f"{source} has labels the model never saw in training: {shown}; "
                        f"known labels: {', '.join(labels)}")


def load_data(config: RunConfig) -> ClassificationData:
    """Read train/validation/test; carve a stratified validation split from train if none is given."""
    if not config.data.train:
        raise ConfigError("data.train is not set; give the training file (e.g. data.train=train.jsonl)")
    train = read_labelled(config, config.data.train)
    # Labels come from the whole training file, before a validation split is carved out of it.
    labels = sorted({label for example in train for label in example.labels})
    if len(labels) < 2 and not config.classify.multi_label:
        raise DataError(f"{config.data.train}: only {len(labels)} distinct label(s) ({', '.join(labels)}); "
                        "classification needs two or more")
    seen = Counter(example.text for example in train)
    if config.data.validation:
        validation = read_labelled(config, config.data.validation)
    elif config.data.validation_fraction > 0:
        train, validation = stratified_split(train, config.data.validation_fraction, config.seed)
    else:
        raise ConfigError("no validation data: set data.validation or data.validation_fraction > 0")
    test = read_labelled(config, config.data.test) if config.data.test else None
    check_known_labels(validation, labels, config.data.validation or "the validation split")
    if test is not None:
        check_known_labels(test, labels, config.data.test)
    return ClassificationData(train, validation, test, labels, config.classify.multi_label,
                              duplicate_train_texts=sum(count - 1 for count in seen.values()),
                              test_texts_in_train=sum(example.text in seen for example in test or ()))


def targets(examples: Sequence[Example], labels: Sequence[str], multi_label: bool) -> torch.Tensor:
    """(N,) class ids, or an (N, C) 0/1 float matrix for multi-label data."""
    index = {label: i for i, label in enumerate(labels)}
    if multi_label:
        matrix = torch.zeros(len(examples), len(labels))
        for row, example in enumerate(examples):
            matrix[row, [index[label] for label in example.labels]] = 1.0
        return matrix
    return torch.tensor([index[example.label] for example in examples], dtype=torch.long)


class EncodedDataset(torch.utils.data.Dataset):
    """Token ids and targets, ready for ``collate``; ``extras`` are more per-example tensors (N, ...)
    that batches carry under their names (distillation: the teacher's logits)."""

    def __init__(self, id_lists: list[list[int]], target_tensor: torch.Tensor,
                 extras: dict[str, torch.Tensor] | None = None):
        self.id_lists = id_lists
        self.tensors = {"targets": target_tensor, **(extras or {})}
        for name, tensor in self.tensors.items():
            if len(tensor) != len(id_lists):
                raise ValueError(f"{name} has {len(tensor)} rows for {len(id_lists)} texts")

    @property
    def targets(self) -> torch.Tensor:
        return self.tensors["targets"]

    def __len__(self) -> int:
        return len(self.id_lists)

    def __getitem__(self, index: int):
        return self.id_lists[index], {name: tensor[index] for name, tensor in self.tensors.items()}


def make_loader(dataset: EncodedDataset, pad_id: int, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    sampler = LengthBucketSampler([len(ids) for ids in dataset.id_lists], batch_size, shuffle=shuffle, seed=seed)

    def collate(items):
        ids, mask = pad_batch([item[0] for item in items], pad_id)
        return {"ids": ids, "mask": mask,
                **{name: torch.stack([item[1][name] for item in items]) for name in dataset.tensors}}

    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)


# -- evaluation ------------------------------------------------------------------------------


@torch.no_grad()
def predict_logits(model: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets for every example of ``loader``, in dataset order."""
    model.eval()
    device = next(model.parameters()).device
    order = [index for batch in loader.batch_sampler for index in batch]
    batches = list(loader)

    def run_batch(number: int) -> torch.Tensor:
        batch = batches[number]
        return model(batch["ids"].to(device), batch["mask"].to(device)).float().cpu()

    # Inside ``sharded_evaluation`` with several processes, each runs every N-th batch.
    logits = map_shards(len(batches), run_batch)
    gold = [batch["targets"] for batch in batches]
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    return torch.cat(logits)[inverse], torch.cat(gold)[inverse]


def probabilities(logits: torch.Tensor, multi_label: bool) -> np.ndarray:
    """Softmax over classes, or independent sigmoids for multi-label data."""
    return (torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)).numpy()


def gold_matrix(examples: Sequence[Example], labels: Sequence[str], multi_label: bool) -> np.ndarray:
    """Gold class ids (N,), or a 0/1 (N, C) matrix for multi-label data."""
    gold = targets(examples, labels, multi_label)
    return gold.int().numpy() if multi_label else gold.numpy()


# -- the task --------------------------------------------------------------------------------


class ClassifyTask:
    """``task: classify``: see the module docstring."""

    name = "classify"
    section = ClassifyConfig

    def read_data(self, config: RunConfig) -> ClassificationData:
        return load_data(config)

    def describe_data(self, data: ClassificationData) -> str:
        line = (f"data: {len(data.train)} train / {len(data.validation)} validation / "
                f"{len(data.test) if data.test else 0} test, {len(data.labels)} labels")
        if data.duplicate_train_texts:
            line += f"; {data.duplicate_train_texts} training texts repeat an earlier one (kept)"
        if data.test_texts_in_train:
            line += f"; {data.test_texts_in_train} test texts also occur in train (leakage)"
        return line

    def training_texts(self, data: ClassificationData) -> list[str]:
        return [example.text for example in data.train]

    def special_tokens(self, config: RunConfig) -> tuple[str, ...]:
        return ()

    def spec(self, config: RunConfig, data: ClassificationData) -> ClassifySpec:
        return ClassifySpec(tuple(data.labels), data.multi_label, config.classify.loss.threshold)

    def build_model(self, config: RunConfig, text_encoder: nn.Module, spec: ClassifySpec) -> TextClassifier:
        head = config.classify.head
        return TextClassifier(text_encoder, ClassifierHead(text_encoder.output_dim, len(spec.labels),
                                                           head.hidden_sizes, head.dropout))

    def loaders(self, config: RunConfig, data: ClassificationData, spec: ClassifySpec, tokenizer) -> Loaders:
        def loader(examples: list[Example], batch_size: int, shuffle: bool) -> DataLoader:
            dataset = EncodedDataset(tokenizer.encode_batch([example.text for example in examples]),
                                     targets(examples, spec.labels, spec.multi_label))
            return make_loader(dataset, tokenizer.pad_id, batch_size, shuffle=shuffle, seed=config.seed)

        return Loaders(train=loader(data.train, config.train.batch_size, shuffle=True),
                       validation=loader(data.validation, config.train.eval_batch_size, shuffle=False),
                       test=loader(data.test, config.train.eval_batch_size, shuffle=False) if data.test else None)

    def loss_function(self, config: RunConfig, data: ClassificationData, spec: ClassifySpec) -> LossFunction:
        train_targets = targets(data.train, spec.labels, spec.multi_label)
        weights = class_weight_vector(config.classify.loss, spec.labels,
                                      train_targets.tolist() if not spec.multi_label else [])
        criterion = classification_loss(config.classify.loss, spec.multi_label, weights)

        def loss(model: nn.Module, batch) -> torch.Tensor:
            return criterion(model(batch["ids"], batch["mask"]), batch["targets"])

        loss.criterion = criterion  # evaluate() reuses it on whole-split logits
        return loss

    def evaluate(self, model: nn.Module, loader: DataLoader, spec: ClassifySpec,
                 loss_function: LossFunction | None = None) -> dict:
        logits, gold = predict_logits(model, loader)
        gold_array = gold.int().numpy() if spec.multi_label else gold.numpy()
        metrics = classification_metrics(gold_array, decide_ids(probabilities(logits, spec.multi_label),
                                                                spec.multi_label, spec.threshold), spec.labels)
        if loss_function is not None:
            metrics["loss"] = float(loss_function.criterion(logits, gold))
        return metrics

    def save_spec(self, directory: Path, spec: ClassifySpec) -> dict:
        (directory / LABELS_FILE).write_text(json.dumps(list(spec.labels), indent=2), encoding="utf-8")
        return {"multi_label": spec.multi_label, "threshold": spec.threshold}

    def load_spec(self, config: RunConfig, directory: Path, meta: dict) -> ClassifySpec:
        path = directory / LABELS_FILE
        if not path.is_file():
            raise ModelDirectoryError(f"{directory} is not a complete encoderkit model: missing {LABELS_FILE}")
        try:
            labels = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ModelDirectoryError(f"{path} is damaged (not valid JSON: {error})") from None
        if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels) \
                or len(set(labels)) != len(labels):
            raise ModelDirectoryError(f"{path} is damaged: it must hold the list of distinct label names "
                                      "the model was trained with")
        outputs = _head_outputs(directory / "model.safetensors")
        if outputs is not None and outputs != len(labels):
            raise ModelDirectoryError(f"{path} lists {len(labels)} labels but the model's head has {outputs} "
                                      "outputs: labels.json was edited or comes from another model")
        return ClassifySpec(tuple(labels), bool(meta.get("multi_label")), float(meta.get("threshold", 0.5)))

    def predictor(self, model: nn.Module, config: RunConfig, spec: ClassifySpec,
                  directory: Path | None) -> "ClassifierModel":
        return ClassifierModel(model, list(spec.labels), config, spec.multi_label, spec.threshold, directory)

    def write_report(self, run_dir: Path, config: RunConfig, spec: ClassifySpec, result: RunResult) -> Path:
        from encoderkit.report import write_report

        return write_report(run_dir, title=f"Classification report: {Path(config.data.train).parent.name or 'run'}",
                            metrics=result.test_metrics or result.validation_metrics, labels=list(spec.labels),
                            history=result.history, metric=config.train.metric, facts=result.facts)


def _head_outputs(weights: Path) -> int | None:
    """Rows of the classifier head's last layer, read from the safetensors header only."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            names = [name for name in handle.keys() if name.startswith("head.layers.") and name.endswith(".weight")]
            if not names:
                return None
            last = max(names, key=lambda name: int(name.split(".")[2]))
            return int(handle.get_slice(last).get_shape()[0])
    except Exception:  # a damaged file is reported by the weights check that follows, naming it
        return None


# -- the loaded model ------------------------------------------------------------------------


class ClassifierModel(LabelDecisions):
    """A loaded classifier: ``predict``, ``predict_proba``, ``encode`` on raw texts.

    Each takes a list of texts, or one ``str`` (then it returns one result, not a list of one).
    """

    task = "classify"

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

    def logits(self, texts, batch_size: int = 64, progress=None) -> np.ndarray:
        """(N, C) scores before the softmax (or sigmoids); (C,) for one str.

        Args:
            progress: optional callable taking the number of texts just finished.
        """
        items, single = as_text_list(texts)
        result = run_in_length_order(self.model, self.tokenizer.encode_batch(items), self.tokenizer.pad_id,
                                     batch_size, len(self.labels), progress=progress)
        return result[0] if single else result

    def predict_proba(self, texts, batch_size: int = 64) -> np.ndarray:
        """(N, C) probabilities (softmax, or independent sigmoids for multi-label); (C,) for one str."""
        items, single = as_text_list(texts)
        result = probabilities(torch.from_numpy(self.logits(items, batch_size)), self.multi_label)
        return result[0] if single else result

    def evaluate(self, examples: Sequence[Example], source: str = "the data", batch_size: int = 64) -> dict:
        """scikit-learn's metrics (accuracy, P/R/F1, per class, confusion matrix) on labelled examples."""
        check_known_labels(examples, self.labels, source)
        probs = self.predict_proba([example.text for example in examples], batch_size)
        return classification_metrics(gold_matrix(examples, self.labels, self.multi_label),
                                      decide_ids(probs, self.multi_label, self.threshold), self.labels)

    def encode(self, texts, batch_size: int = 64) -> np.ndarray:
        """(N, H) sentence vectors from the text encoder (the input of the classifier head); (H,) for one str."""
        return self.model.text_encoder.encode(texts, batch_size)

    def explain(self, texts, method: str | None = None, target: str | None = None, *, level: str = "word",
                steps: int = 50, batch_size: int = 32):
        """Which words raise or lower the probability of ``target`` (default: the predicted label).

        Args:
            texts: a str (one ``Explanation`` back) or a list of str (a list back).
            method: ``ig`` (integrated gradients; needs ``pip install 'encoderkit[interpret]'``),
                ``grad-input``, ``occlusion`` or ``attention`` (Transformers and the attention pooler);
                default ``encoderkit.interpret.DEFAULT_METHOD``.
            target: the label explained.
            level: ``word`` (subword pieces summed into words) or ``token``.
            steps: integration steps of ``ig``.
            batch_size: texts per batch.

        Returns:
            ``encoderkit.interpret.Explanation``: ``units``, ``scores``, ``target``, ``probability``, ...
        """
        from encoderkit.interpret.classify import explain_classification

        return explain_classification(self, texts, method, target, level=level, steps=steps, batch_size=batch_size)


def train(config: RunConfig, resume: bool = False, overwrite: bool = False, echo=print) -> RunResult:
    """Train a classifier: the runner with ``task: classify`` (see ``encoderkit.tasks.runner.run``)."""
    from encoderkit.tasks.runner import run

    if config.task != "classify":
        raise ConfigError(f"tasks.classify.train got a config for task {config.task}; use tasks.runner.run")
    return run(config, resume=resume, overwrite=overwrite, echo=echo)

"""Text classification, top to bottom: data -> tokenizer -> model -> training loop -> report -> model dir.

    result = train(load_config("configs/cnn.yaml"))
    result.test_metrics["accuracy"], result.model_dir
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from encoderkit.config import RunConfig, config_to_dict, save_config
from encoderkit.data.batching import LengthBucketSampler, pad_batch
from encoderkit.data.readers import Example, read_examples
from encoderkit.data.splits import stratified_split
from encoderkit.embeddings import load_pretrained, pretrained_matrix
from encoderkit.errors import ConfigError, DataError
from encoderkit.losses import class_weight_vector, classification_loss
from encoderkit.metrics.classification import classification_metrics, scalar_metrics
from encoderkit.model_dir import save_model
from encoderkit.report import write_report
from encoderkit.text_encoder import TextClassifier, build_classifier, count_parameters
from encoderkit.tokenization import Tokenizer
from encoderkit.training import fit

MODEL_SUBDIR = "model"


@dataclass
class ClassificationData:
    train: list[Example]
    validation: list[Example]
    test: list[Example] | None
    labels: list[str]
    multi_label: bool


@dataclass
class ClassifyResult:
    run_dir: Path
    model_dir: Path
    labels: list[str]
    validation_metrics: dict[str, float]
    test_metrics: dict | None
    parameters: int
    train_seconds: float
    examples_per_second: float
    coverage: dict | None = None
    history: list[dict] = field(default_factory=list)


# -- data ------------------------------------------------------------------------------------


def _read(config: RunConfig, path: str) -> list[Example]:
    data = config.data
    return read_examples(path, fmt=data.format, text_field=data.text_field, label_field=data.label_field,
                         multi_label=data.multi_label, label_separator=data.label_separator)


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
    train = _read(config, config.data.train)
    # Labels come from the whole training file, before a validation split is carved out of it.
    labels = sorted({label for example in train for label in example.labels})
    if config.data.validation:
        validation = _read(config, config.data.validation)
    elif config.data.validation_fraction > 0:
        train, validation = stratified_split(train, config.data.validation_fraction, config.seed)
    else:
        raise ConfigError("no validation data: set data.validation or data.validation_fraction > 0")
    test = _read(config, config.data.test) if config.data.test else None
    if len(labels) < 2 and not config.data.multi_label:
        raise DataError(f"{config.data.train}: only {len(labels)} distinct label(s); classification needs two or more")
    check_known_labels(validation, labels, config.data.validation or "the validation split")
    if test is not None:
        check_known_labels(test, labels, config.data.test)
    return ClassificationData(train, validation, test, labels, config.data.multi_label)


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
    """Token ids and targets, ready for ``collate``."""

    def __init__(self, id_lists: list[list[int]], target_tensor: torch.Tensor):
        self.id_lists = id_lists
        self.targets = target_tensor

    def __len__(self) -> int:
        return len(self.id_lists)

    def __getitem__(self, index: int):
        return self.id_lists[index], self.targets[index]


def make_loader(dataset: EncodedDataset, pad_id: int, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    sampler = LengthBucketSampler([len(ids) for ids in dataset.id_lists], batch_size, shuffle=shuffle, seed=seed)

    def collate(items):
        ids, mask = pad_batch([item[0] for item in items], pad_id)
        return {"ids": ids, "mask": mask, "targets": torch.stack([item[1] for item in items])}

    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)


# -- model -----------------------------------------------------------------------------------


def make_tokenizer(config: RunConfig, train_texts: Sequence[str]):
    if config.encoder.kind == "pretrained":
        from encoderkit.encoders.pretrained import CheckpointTokenizer

        return CheckpointTokenizer.from_checkpoint(config.encoder.path, config.tokenizer.max_length,
                                                   max_chunks=config.encoder.max_chunks,
                                                   chunk_overlap=config.encoder.chunk_overlap)
    return Tokenizer.train(train_texts, config.tokenizer)


def pretrained_embeddings(config: RunConfig, tokenizer, train_ids, pretrained) -> tuple[np.ndarray | None, dict | None]:
    """Rows for the embedding table from loaded ``embedding.pretrained`` vectors, and their coverage.

    Also sets ``embedding.dim`` to the vectors' dimension, so the resolved config is the truth.
    """
    if pretrained is None:
        return None, None
    matrix, coverage = pretrained_matrix(config.embedding, tokenizer.get_vocab(), pretrained,
                                         tokenizer.token_counts(train_ids), config.seed)
    if matrix.shape[1] != config.embedding.dim:
        config.embedding.dim = int(matrix.shape[1])
    return matrix, coverage


def extend_with_pretrained_words(tokenizer: Tokenizer, words: list[str], max_words: int) -> None:
    """Give a word tokenizer the most frequent pretrained words it lacks (ids of known words stay)."""
    from tokenizers import models

    from encoderkit.tokenization import UNK
    from encoderkit.wordvec.init import extend_vocabulary

    tokenizer.backend.model = models.WordLevel(extend_vocabulary(tokenizer.get_vocab(), words, max_words),
                                               unk_token=UNK)


# -- evaluation ------------------------------------------------------------------------------


@torch.no_grad()
def predict_logits(model: TextClassifier, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets for every example of ``loader``, in dataset order."""
    model.eval()
    device = next(model.parameters()).device
    order = [index for batch in loader.batch_sampler for index in batch]
    logits, gold = [], []
    for batch in loader:
        logits.append(model(batch["ids"].to(device), batch["mask"].to(device)).float().cpu())
        gold.append(batch["targets"])
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    return torch.cat(logits)[inverse], torch.cat(gold)[inverse]


def decisions(logits: torch.Tensor, multi_label: bool, threshold: float) -> np.ndarray:
    if multi_label:
        return (torch.sigmoid(logits) >= threshold).int().numpy()
    return logits.argmax(-1).numpy()


def evaluate_loader(model, loader, labels, multi_label: bool, threshold: float, loss_fn=None) -> dict:
    logits, gold = predict_logits(model, loader)
    gold_array = gold.int().numpy() if multi_label else gold.numpy()
    metrics = classification_metrics(gold_array, decisions(logits, multi_label, threshold), labels)
    if loss_fn is not None:
        metrics["loss"] = float(loss_fn(logits, gold))
    return metrics


# -- the recipe ------------------------------------------------------------------------------


def train(config: RunConfig, resume: bool = False, echo=print) -> ClassifyResult:
    """Train, select the best epoch on validation, test, report and save a model directory.

    Args:
        config: the resolved run config.
        resume: continue an interrupted run in ``config.output_dir``.
        echo: where progress lines go (``print`` or a rich console's ``print``).
    """
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    set_seed(config.seed)
    run_dir = Path(config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = load_data(config)
    echo(f"data: {len(data.train)} train / {len(data.validation)} validation / "
         f"{len(data.test) if data.test else 0} test, {len(data.labels)} labels")

    if resume:
        check_resume_config(config, run_dir)
    pretrained = None
    if config.embedding.pretrained and config.encoder.kind != "pretrained":
        pretrained = load_pretrained(config.embedding, config.tokenizer.kind)
    if resume and (run_dir / "tokenizer.json").is_file():
        tokenizer = _load_run_tokenizer(config, run_dir)
    else:
        tokenizer = make_tokenizer(config, [example.text for example in data.train])
        if pretrained is not None and config.embedding.extend_vocab:
            extend_with_pretrained_words(tokenizer, pretrained[0], config.embedding.extend_vocab)
        tokenizer.save(run_dir)
    encode = tokenizer.encode_batch
    train_ids = encode([example.text for example in data.train])
    validation_ids = encode([example.text for example in data.validation])
    matrix, coverage = pretrained_embeddings(config, tokenizer, train_ids, pretrained)
    save_config(config, run_dir / "config.yaml")
    model = build_classifier(config, tokenizer, len(data.labels))
    if matrix is not None:
        model.text_encoder.embedding.load_matrix(matrix, freeze=config.embedding.freeze)
    if coverage:
        echo(f"pretrained vectors cover {coverage['vocab_coverage']:.1%} of the vocabulary and "
             f"{coverage['token_coverage']:.1%} of training tokens")

    train_targets = targets(data.train, data.labels, data.multi_label)
    weights = class_weight_vector(config.loss, data.labels,
                                  train_targets.tolist() if not data.multi_label else [])
    loss_fn = classification_loss(config.loss, data.multi_label, weights)
    train_loader = make_loader(EncodedDataset(train_ids, train_targets), tokenizer.pad_id,
                               config.train.batch_size, shuffle=True, seed=config.seed)
    validation_loader = make_loader(
        EncodedDataset(validation_ids, targets(data.validation, data.labels, data.multi_label)),
        tokenizer.pad_id, config.train.eval_batch_size, shuffle=False, seed=config.seed)
    threshold = config.loss.threshold

    def compute_loss(module, batch):
        return loss_fn(module(batch["ids"], batch["mask"]), batch["targets"])

    def evaluate(module):
        return scalar_metrics(evaluate_loader(module, validation_loader, data.labels, data.multi_label,
                                              threshold, loss_fn))

    parameters = count_parameters(model)
    echo(f"model: {config.encoder.kind} encoder, {config.pooling} pooling, {parameters:,} parameters")
    loop = fit(model, train_loader, compute_loss=compute_loss, evaluate=evaluate, config=config.train,
               run_dir=run_dir, resume=resume, parameter_groups=parameter_groups(config, model),
               description=f"{config.encoder.kind}")

    best = next((record for record in loop.history if record["step"] == loop.best_step), {})
    test_metrics = None
    if data.test is not None:
        test_loader = make_loader(EncodedDataset(encode([e.text for e in data.test]),
                                                 targets(data.test, data.labels, data.multi_label)),
                                  tokenizer.pad_id, config.train.eval_batch_size, shuffle=False, seed=config.seed)
        test_metrics = evaluate_loader(model, test_loader, data.labels, data.multi_label, threshold)
    model_dir = save_model(run_dir / MODEL_SUBDIR, model, config, data.labels, multi_label=data.multi_label,
                           extra={"coverage": coverage} if coverage else None)
    facts = {
        "encoder": f"{config.encoder.kind} ({parameters:,} parameters), pooling {config.pooling}",
        "tokenizer": f"{config.tokenizer.kind}, {tokenizer.vocab_size:,} tokens",
        "data": f"{len(data.train)} train / {len(data.validation)} validation / "
                f"{len(data.test) if data.test else 0} test",
        "best validation": f"{config.train.metric} {loop.best_metric:.4f} at step {loop.best_step}",
        "training": f"{loop.steps} steps, {loop.train_seconds:.1f} s, {loop.examples_per_second:.0f} examples/s",
        "model directory": str(model_dir),
    }
    if coverage:
        facts["pretrained vectors"] = (f"{coverage['vocab_coverage']:.1%} of vocabulary, "
                                       f"{coverage['token_coverage']:.1%} of training tokens")
    write_report(run_dir, title=f"Classification report: {Path(config.data.train).parent.name or 'run'}",
                 metrics=test_metrics or best, labels=data.labels, history=loop.history,
                 metric=config.train.metric, facts=facts)
    result = ClassifyResult(run_dir=run_dir, model_dir=model_dir, labels=data.labels,
                            validation_metrics={k: v for k, v in best.items() if isinstance(v, float)},
                            test_metrics=test_metrics, parameters=parameters, train_seconds=loop.train_seconds,
                            examples_per_second=loop.examples_per_second, coverage=coverage,
                            history=loop.history)
    (run_dir / "results.json").write_text(json.dumps({
        "validation": result.validation_metrics, "test": test_metrics, "parameters": parameters,
        "train_seconds": loop.train_seconds, "examples_per_second": loop.examples_per_second,
        "coverage": coverage}, indent=2))
    return result


#: Settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"train.progress", "train.num_threads", "train.device"}


def check_resume_config(config: RunConfig, run_dir: Path) -> None:
    """Refuse to resume with a config that differs from the interrupted run's in what it computes."""
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        return
    import yaml

    def flat(tree: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in tree.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    saved = flat(yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {})
    current = flat(config_to_dict(config))
    ignored = RESUMABLE_CHANGES | ({"embedding.dim"} if config.embedding.pretrained else set())
    changed = sorted(k for k in saved.keys() | current.keys() if k not in ignored and saved.get(k) != current.get(k))
    if changed:
        raise ConfigError(f"cannot resume {run_dir}: the config differs from the run's config.yaml in "
                          f"{', '.join(changed)}; resume with the same config or choose a new output_dir")


def _load_run_tokenizer(config: RunConfig, run_dir: Path):
    if config.encoder.kind == "pretrained":
        from encoderkit.encoders.pretrained import CheckpointTokenizer

        return CheckpointTokenizer.load(run_dir)
    return Tokenizer.load(run_dir)


def parameter_groups(config: RunConfig, model: TextClassifier):
    """Layer-wise learning rates for pretrained encoders; None keeps the loop's default groups."""
    encoder = model.text_encoder.encoder
    if config.encoder.kind != "pretrained" or config.encoder.layer_lr_decay == 1.0:
        return None
    groups = encoder.layer_parameter_groups(config.train.lr, config.encoder.layer_lr_decay,
                                            config.train.weight_decay)
    encoder_ids = {id(p) for p in encoder.parameters()}
    rest = [p for p in model.parameters() if id(p) not in encoder_ids and p.requires_grad]
    return groups + [{"params": rest, "lr": config.train.lr, "weight_decay": config.train.weight_decay}]


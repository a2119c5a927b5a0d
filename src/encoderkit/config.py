"""Typed run configuration: defaults < YAML file < ``a.b=c`` overrides, validated once.

Every section forbids unknown keys, so a typo fails at load time with the list of valid keys.
The encoder section is a tagged union on ``kind``: each family accepts only its own options.
The resolved config is written to the run directory and into every saved model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from encoderkit.errors import ConfigError

Pooling = Literal["last", "mean", "max", "cls", "attention"]


class Section(BaseModel):
    """Base for every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Section):
    train: str | None = None
    validation: str | None = None
    test: str | None = None
    format: Literal["auto", "jsonl", "csv", "tsv", "parquet", "fasttext"] = "auto"
    text_field: str = "text"
    #: Share of train carved out (seeded; stratified by label for classification) as validation
    #: when no validation file is given.
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)


class TokenizerConfig(Section):
    #: "pretrained" reuses the tokenizer.json of a Hugging Face checkpoint at ``path``.
    kind: Literal["word", "bpe", "wordpiece", "unigram", "char", "pretrained"] = "word"
    path: str | None = None
    vocab_size: int = Field(30000, gt=10)
    min_frequency: int = Field(1, ge=1)
    lowercase: bool = True
    nfkc: bool = True
    strip_accents: bool = False
    #: Put spaces around CJK ideographs so Chinese/Japanese text tokenizes without a segmenter.
    split_cjk: bool = True
    max_length: int = Field(256, gt=1)


class EmbeddingConfig(Section):
    dim: int = Field(128, gt=0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    #: Pretrained word vectors (GloVe/word2vec/fastText text or binary, optionally compressed).
    pretrained: str | None = None
    freeze: bool = False
    #: How tokens missing from the pretrained vectors start: random, zero or the mean vector.
    oov: Literal["random", "zero", "mean"] = "random"
    #: Word tokenizers: add up to N of the most frequent pretrained words missing from the training
    #: vocabulary, so words never seen in training keep their pretrained vectors at test time.
    extend_vocab: int = Field(0, ge=0)


class BagOfEmbeddingsConfig(Section):
    """No parameters of its own: the pooler averages (or max-pools) the token embeddings."""

    kind: Literal["bow"] = "bow"


class CNNConfig(Section):
    kind: Literal["cnn"] = "cnn"
    kernel_sizes: list[int] = Field(default_factory=lambda: [3, 4, 5])
    num_filters: int = Field(100, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class RecurrentConfig(Section):
    kind: Literal["rnn", "lstm", "gru"] = "lstm"
    hidden_size: int = Field(128, gt=0)
    num_layers: int = Field(1, ge=1)
    bidirectional: bool = True
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    #: fused: torch.nn.RNN/LSTM/GRU kernels; reference: the cells of encoderkit.nn unrolled in Python.
    impl: Literal["fused", "reference"] = "fused"


class TransformerConfig(Section):
    kind: Literal["transformer"] = "transformer"
    hidden_size: int = Field(128, gt=0)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    ff_size: int = Field(512, gt=0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    positions: Literal["sinusoidal", "learned"] = "sinusoidal"
    norm: Literal["pre", "post"] = "pre"
    max_positions: int = Field(512, gt=0)
    impl: Literal["fused", "reference"] = "fused"

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> "TransformerConfig":
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})"
            )
        return self


class PretrainedConfig(Section):
    """A local Hugging Face checkpoint (its own tokenizer replaces the ``tokenizer`` section)."""

    kind: Literal["pretrained"] = "pretrained"
    path: str = ""
    normalize: bool = False
    freeze: bool = False
    #: Layer-wise learning-rate decay: layer l (of L) trains at lr * decay^(L - l). 1.0 disables it.
    layer_lr_decay: float = Field(1.0, gt=0.0, le=1.0)
    #: Long documents: split into windows of max_length tokens with this overlap, pool over windows.
    chunk_overlap: int = Field(0, ge=0)
    max_chunks: int = Field(1, ge=1)
    chunk_pooling: Literal["mean", "max"] = "mean"


EncoderConfig = Annotated[
    Union[BagOfEmbeddingsConfig, CNNConfig, RecurrentConfig, TransformerConfig, PretrainedConfig],
    Field(discriminator="kind"),
]


class HeadConfig(Section):
    hidden_sizes: list[int] = Field(default_factory=list)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)


class LossConfig(Section):
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    #: None, "balanced" (inverse frequency, as scikit-learn), or {label: weight}.
    class_weights: None | Literal["balanced"] | dict[str, float] = None
    #: Multi-label decision threshold on sigmoid probabilities.
    threshold: float = Field(0.5, gt=0.0, lt=1.0)


class ClassifyConfig(Section):
    """Text classification: labels, the classifier head and its loss."""

    #: Validation metrics, each mapped to True when greater is better; the first is the default.
    METRICS: ClassVar[dict[str, bool]] = {
        "macro_f1": True, "micro_f1": True, "weighted_f1": True, "accuracy": True,
        "macro_precision": True, "macro_recall": True, "loss": False,
    }

    label_field: str = "label"
    multi_label: bool = False
    #: Separator for multi-label values given as one string ("sports,politics").
    label_separator: str = ","
    head: HeadConfig = Field(default_factory=HeadConfig)
    loss: LossConfig = Field(default_factory=LossConfig)


class ContrastiveLossConfig(Section):
    """In-batch negatives: ``softmax(scale * cos(q_i, d_j))`` over every document of the batch."""

    #: Multiplies cosine similarities before the softmax (a temperature of 1/scale).
    scale: float = Field(20.0, gt=0.0)
    #: Also rank the batch's queries for each positive document, and average the two losses.
    symmetric: bool = False


class RetrieveConfig(Section):
    """Retrieval: (query, positive document) pairs, optional hard negatives, a bi-encoder."""

    #: Validation metrics, each mapped to True when greater is better; the first is the default.
    METRICS: ClassVar[dict[str, bool]] = {
        "ndcg@10": True, "mrr@10": True, "recall@10": True, "map@10": True, "loss": False,
    }

    query_field: str = "query"
    positive_field: str = "positive"
    #: Optional field holding hard negatives (one text or a list); records without it have none.
    negatives_field: str = "negatives"
    #: shared: one encoder for queries and documents; separate: a copy of it for documents.
    towers: Literal["shared", "separate"] = "shared"
    #: L2-normalise the embeddings, so search ranks by cosine (dot product of unit vectors).
    normalize: bool = True
    loss: ContrastiveLossConfig = Field(default_factory=ContrastiveLossConfig)
    #: Cached (GradCache) loss: embed the batch this many pairs at a time, so a large batch of
    #: negatives needs the memory of one chunk. None: the whole batch at once.
    cache_chunk_size: int | None = Field(None, ge=1)


class TrainConfig(Section):
    epochs: int = Field(10, ge=1)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0)
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    grad_clip: float | None = Field(1.0, gt=0.0)
    grad_accumulation: int = Field(1, ge=1)
    #: Validation metric for early stopping and best-model selection (default: the task's first
    #: metric, e.g. macro_f1 for classification); checked against the task's metrics.
    metric: str | None = None
    #: Stop after this many evaluations without improvement (None: never stop early).
    patience: int | None = Field(3, ge=1)
    #: Evaluate every N optimizer steps (None: once per epoch).
    eval_every: int | None = Field(None, ge=1)
    log_every: int = Field(50, ge=1)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    #: torch intra-op threads (None: torch's default).
    num_threads: int | None = Field(None, ge=1)
    progress: bool = True


#: Poolings that give every input the same vector on encoders without context: a bag of
#: embeddings' or a CNN's first token is always [CLS] and its last token carries no sentence.
POOLINGS_BY_ENCODER: dict[str, tuple[str, ...]] = {
    "bow": ("mean", "max", "attention"),
    "cnn": ("mean", "max", "attention"),
}


class RunConfig(Section):
    """A whole run: the task, the text encoder (``encoder`` is chosen by its ``kind``), training, and
    one section per task (only the chosen task's section may be given)."""

    task: Literal["classify", "retrieve"] = "classify"
    seed: int = 13
    output_dir: str = "runs/model"
    data: DataConfig = Field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    encoder: EncoderConfig = Field(default_factory=RecurrentConfig)
    pooling: Pooling = "mean"
    train: TrainConfig = Field(default_factory=TrainConfig)
    classify: ClassifyConfig = Field(default_factory=ClassifyConfig)
    retrieve: RetrieveConfig = Field(default_factory=RetrieveConfig)

    @property
    def task_section(self) -> Section:
        """The chosen task's own section (``classify`` for ``task: classify``)."""
        return getattr(self, self.task)

    @model_validator(mode="after")
    def _fits_the_task(self) -> "RunConfig":
        for name in TASK_SECTIONS:
            if name != self.task and name in self.model_fields_set:
                raise ValueError(f"section '{name}' belongs to task {name}, but task is {self.task}; "
                                 f"remove it or set task: {name}")
        metrics = TASK_SECTIONS[self.task].METRICS
        if self.train.metric is None:
            self.train.metric = next(iter(metrics))
        elif self.train.metric not in metrics:
            raise ValueError(f"train.metric {self.train.metric!r} is not a metric of task {self.task}; "
                             f"valid metrics: {', '.join(metrics)}")
        fitting = POOLINGS_BY_ENCODER.get(self.encoder.kind)
        if fitting and self.pooling not in fitting:
            raise ValueError(f"pooling {self.pooling!r} gives every text the same vector with a {self.encoder.kind} "
                             f"encoder; poolings that fit: {', '.join(fitting)}")
        return self


#: task name -> its config section class (the attribute of RunConfig with the same name).
TASK_SECTIONS: dict[str, type[Section]] = {"classify": ClassifyConfig, "retrieve": RetrieveConfig}

#: Keys that moved into a task section (encoderkit 0.2), with their new place, for the error message.
MOVED_KEYS = {
    "head": "classify.head",
    "loss": "classify.loss",
    "data.label_field": "classify.label_field",
    "data.multi_label": "classify.multi_label",
    "data.label_separator": "classify.label_separator",
}


# ---------------------------------------------------------------------------------------------
# Loading, overrides and readable errors


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"encoder.hidden_size=256"`` -> (["encoder", "hidden_size"], 256); values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value (e.g. train.epochs=5)")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({describe_yaml_error(error)}); "
                          "quote it") from None
    parts = key.split(".")
    if any(not part for part in parts):
        raise ConfigError(f"override {text!r} has an empty part in its key (e.g. train.epochs=5)")
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted overrides to a nested dict in place and return it."""
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return raw


def _valid_keys(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The field names valid where pydantic reported an unknown key (``location`` ends with that key)."""
    current: Any = model
    for part in location[:-1]:
        if part in _ENCODER_BY_KIND:  # pydantic puts the union member's tag in the location
            current = _ENCODER_BY_KIND[part]
            continue
        field = current.model_fields.get(part) if current is not None else None
        if field is None:
            return []
        annotation = field.annotation
        current = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return sorted(current.model_fields) if current is not None else []


_ENCODER_BY_KIND: dict[str, type[Section]] = {
    "bow": BagOfEmbeddingsConfig,
    "cnn": CNNConfig,
    "rnn": RecurrentConfig,
    "lstm": RecurrentConfig,
    "gru": RecurrentConfig,
    "transformer": TransformerConfig,
    "pretrained": PretrainedConfig,
}


def describe_validation_error(error: ValidationError, root: type[BaseModel] = None) -> str:
    """Turn pydantic's error list into one line per problem, naming the key and the valid choices."""
    root = root or RunConfig
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        shown = ".".join(str(p) for p in loc if str(p) not in _ENCODER_BY_KIND or p == loc[-1])
        if item["type"] == "extra_forbidden" and shown in MOVED_KEYS and root is RunConfig:
            lines.append(f"config key '{shown}' moved to '{MOVED_KEYS[shown]}' in encoderkit 0.2; "
                         f"write it there")
        elif item["type"] == "extra_forbidden":
            valid = _valid_keys(root, loc)
            hint = f"; valid keys: {', '.join(valid)}" if valid else ""
            lines.append(f"unknown config key '{shown}'{hint}")
        elif item["type"] == "union_tag_invalid":
            lines.append(
                f"unknown encoder kind {item['input'].get('kind')!r} at '{shown}'; "
                f"valid kinds: {', '.join(sorted(_ENCODER_BY_KIND))}"
            )
        elif shown == "task" and root is RunConfig:
            lines.append(f"unknown task {item.get('input')!r}; valid tasks: {', '.join(TASK_SECTIONS)}")
        elif item["type"] == "value_error" and not shown:  # a check across sections (RunConfig's own)
            lines.append(str(item["msg"]).removeprefix("Value error, "))
        else:
            lines.append(f"config '{shown}': {item['msg']} (got {item.get('input')!r})")
    return "; ".join(lines)


def validate_config(raw: dict[str, Any], model: type[BaseModel] = RunConfig) -> Any:
    """Validate a nested dict into ``model``, raising ``ConfigError`` with a readable message."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, model)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (pass the path of a YAML file, e.g. configs/cnn.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {error.object[error.start]:#04x} at offset "
                          f"{error.start}); save the config as UTF-8") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {describe_yaml_error(error)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of config sections at the top level")
    return raw


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """PyYAML's problem and its line:column on one line (its own message spans several)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Defaults < YAML file < overrides. Relative data paths stay relative to the working directory."""
    raw = read_yaml(path) if path is not None else {}
    apply_overrides(raw, list(overrides or []))
    return validate_config(raw)


def config_to_dict(config: BaseModel) -> dict[str, Any]:
    """The config as plain data; a run config keeps only its own task's section (another task's
    section, even at its defaults, would be refused when the dict is read back)."""
    data = config.model_dump(mode="json")
    if isinstance(config, RunConfig):
        for name in TASK_SECTIONS:
            if name != config.task:
                data.pop(name, None)
    return data


def save_config(config: BaseModel, path: str | Path) -> None:
    from encoderkit.files import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))

"""Typed run configuration: defaults < YAML file < ``a.b=c`` overrides, validated once.

Every section forbids unknown keys, so a typo fails at load time with the list of valid keys.
The encoder section is a tagged union on ``kind``: each family accepts only its own options.
The resolved config is written to the run directory and into every saved model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    #: Multiply the embeddings by sqrt(dim) (Transformers: token vectors of the size of the positions).
    scale: bool = False
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


class TransformerDecoderConfig(TransformerConfig):
    """A Transformer decoder: causal self-attention, cross-attention on the source states, FFN; the
    options (and defaults) of the Transformer encoder, plus how its embeddings are shared."""

    #: One matrix for the target embedding and the output projection (Press & Wolf 2017).
    tie_output: bool = True
    #: One embedding table for source and target (needs ``vocabulary: joint`` and a trained encoder
    #: whose ``embedding.dim`` equals ``hidden_size``).
    share_source_embedding: bool = False


class RecurrentDecoderConfig(Section):
    """A GRU or LSTM decoder with attention on the source states (Bahdanau et al. 2015, Luong et al. 2015)."""

    kind: Literal["rnn"] = "rnn"
    cell: Literal["gru", "lstm"] = "gru"
    embedding_dim: int = Field(256, gt=0)
    hidden_size: int = Field(512, gt=0)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    #: bahdanau: v^T tanh(W s_{t-1} + U h_j), read before the recurrent step; luong_dot: s_t^T h_j;
    #: luong_general: s_t^T W h_j, both read after it.
    attention: Literal["bahdanau", "luong_dot", "luong_general"] = "bahdanau"
    #: Feed the previous attentional vector into the next step's input (Luong et al. 2015).
    input_feeding: bool = False
    #: The decoder's first state: tanh(W mean_j h_j) (``mean``) or zeros.
    init: Literal["mean", "zero"] = "mean"
    tie_output: bool = False
    share_source_embedding: bool = False


DecoderConfig = Annotated[Union[TransformerDecoderConfig, RecurrentDecoderConfig], Field(discriminator="kind")]


class TranslateConfig(Section):
    """Machine translation: parallel data, the target vocabulary, the decoder, its loss and search."""

    #: Validation metrics, each mapped to True when greater is better; the first is the default.
    METRICS: ClassVar[dict[str, bool]] = {"bleu": True, "chrf": True, "loss": False}

    #: Language suffixes of line-aligned files (``train.de`` / ``train.en`` for ``data.train: train``),
    #: or the two fields (columns) of a JSONL / TSV / CSV file of pairs.
    source: str = "de"
    target: str = "en"
    #: joint: one subword vocabulary trained on both sides (the ``tokenizer`` section); separate:
    #: the source side's from ``tokenizer``, the target side's from ``target_tokenizer``.
    vocabulary: Literal["joint", "separate"] = "joint"
    #: The target tokenizer of a separate vocabulary (default: the ``tokenizer`` section's settings).
    target_tokenizer: TokenizerConfig | None = None
    #: Training pairs with more tokens than this on either side are dropped (the count is reported).
    filter_max_tokens: int = Field(128, ge=1)
    #: Training pairs whose longer side has more than this many times the tokens of the shorter are dropped.
    filter_max_ratio: float = Field(3.0, ge=1.0)
    #: Token-budget batching: a training batch holds at most this many tokens per side, padding
    #: included (sentences of similar length batched together). None: ``train.batch_size`` sentences.
    batch_tokens: int | None = Field(4096, ge=16)
    decoder: DecoderConfig = Field(default_factory=TransformerDecoderConfig)
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0)
    #: Search defaults of the saved model (``encoderkit translate`` and ``translate()`` may override).
    beam_size: int = Field(5, ge=1)
    #: GNMT length penalty: a hypothesis of n tokens scores log p / ((5 + n) / 6) ** alpha.
    length_penalty: float = Field(1.0, ge=0.0)
    #: Longest output: ceil(max_length_ratio * source tokens + max_length_extra) tokens.
    max_length_ratio: float = Field(1.5, gt=0.0)
    max_length_extra: int = Field(10, ge=0)
    #: Beam size of the validation decode that gives BLEU during training (1: greedy).
    validation_beam: int = Field(1, ge=1)


class AugmentConfig(Section):
    """Tang et al. (2019) data augmentation for distillation: per word, with probability ``p_mask`` a
    ``[MASK]`` token, with probability ``p_pos`` another word of the same kind (see ``p_pos``), then with
    probability ``p_ng`` an n-gram (n in 1..``max_ngram``) of the result; ``n_iter`` tries per example."""

    #: Augmented copies tried per training example (duplicates are dropped); 0 turns augmentation off.
    n_iter: int = Field(0, ge=0)
    p_mask: float = Field(0.1, ge=0.0, le=1.0)
    #: Tang et al. swap a word for one of the same part of speech; no tagger ships without a download,
    #: so the stand-in is a word of the same shape (lower, Title, UPPER, digits, punctuation) and the
    #: same frequency class (floor(log2 count)) in the training texts, drawn by its frequency.
    p_pos: float = Field(0.1, ge=0.0, le=1.0)
    p_ng: float = Field(0.25, ge=0.0, le=1.0)
    max_ngram: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _word_probabilities(self) -> "AugmentConfig":
        if self.p_mask + self.p_pos > 1.0:
            raise ValueError(f"distill.augment: p_mask + p_pos ({self.p_mask} + {self.p_pos}) must be at most 1 "
                             "(each word is masked, swapped or kept)")
        return self


class DistillConfig(Section):
    """Knowledge distillation (Hinton et al. 2015; Tang et al. 2019): a classification student trained on
    a classification teacher's outputs over the transfer set (training texts, ``unlabelled`` texts,
    augmented training texts)::

        kl:  L = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y)
        mse: L = alpha * mean_c (z_s - z_t)^2 + (1 - alpha) * CE(z_s, y)

    The CE term applies to labelled texts only (``classify.loss`` settings); multi-label models use
    per-label sigmoids (binary KL) and binary cross-entropy.
    """

    #: The teacher's model directory (a classification model with the student's labels).
    teacher: str
    kind: Literal["kl", "mse"] = "kl"
    #: Softens both distributions (kl only, default 2; the T^2 factor keeps the gradient scale
    #: independent of T). None with kind mse.
    temperature: float | None = Field(None, gt=0.0)
    #: Weight of the teacher's term; 1 - alpha weighs the gold labels' cross-entropy.
    alpha: float = Field(0.5, ge=0.0, le=1.0)
    #: Texts without labels for the transfer set: one per line (.txt), or JSONL/CSV/TSV/Parquet with
    #: ``data.text_field``; plain or gz/bz2/xz.
    unlabelled: str | None = None
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    #: Texts per teacher forward pass when computing its outputs.
    teacher_batch_size: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _temperature_fits_kind(self) -> "DistillConfig":
        if self.kind == "kl" and self.temperature is None:
            self.temperature = 2.0
        elif self.kind == "mse" and self.temperature is not None:
            raise ValueError("distill.temperature has no effect with kind: mse (the squared error is on raw "
                             "logits, Tang et al. 2019); remove it or use kind: kl")
        return self


class TrainConfig(Section):
    epochs: int = Field(10, ge=1)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0)
    #: Warmup in optimizer steps; when set it replaces ``warmup_ratio`` (Transformer recipes count
    #: warmup in steps, e.g. 4000 with ``schedule: inverse_sqrt``).
    warmup_steps: int | None = Field(None, ge=0)
    #: After a linear warmup: linear or cosine decay to 0, constant, or inverse_sqrt
    #: (lr * sqrt(warmup / step) after the warmup, Vaswani et al. 2017).
    schedule: Literal["linear", "cosine", "constant", "inverse_sqrt"] = "linear"
    grad_clip: float | None = Field(1.0, gt=0.0)
    grad_accumulation: int = Field(1, ge=1)
    #: Validation metric for early stopping and best-model selection (default: the task's first
    #: metric, e.g. macro_f1 for classification); checked against the task's metrics.
    metric: str | None = None
    #: Stop after this many evaluations without improvement (None: never stop early).
    patience: int | None = Field(3, ge=1)
    #: Evaluate every N optimizer steps (None: once per epoch).
    eval_every: int | None = Field(None, ge=1)
    #: A time budget: stop at the first evaluation after this many minutes in the training loop
    #: (evaluations not counted). Where it stops depends on the machine's speed. None: no budget.
    max_minutes: float | None = Field(None, gt=0.0)
    #: Checkpoint averaging: after each evaluation (once N are kept, and when training ends) also
    #: evaluate the average of the weights of the last N evaluations; it replaces the best weights when
    #: it scores better on validation, and an improving average resets the patience. None: off.
    average_last: int | None = Field(None, ge=2)
    #: WiSE-FT: after training, try ``alpha * trained + (1 - alpha) * starting`` weights for each alpha
    #: listed (0 < alpha < 1) on validation; the best is kept when it scores at least as well as the
    #: trained weights. For fine-tuned pretrained encoders (less drift from what the checkpoint knew);
    #: ``encoderkit.training.blending``. Empty: off.
    blend_with_start: list[float] = Field(default_factory=list)
    log_every: int = Field(50, ge=1)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    #: bf16: forward passes under bfloat16 autocast (CPU and GPU; weights and optimizer stay float32);
    #: fp16: float16 autocast with loss scaling (CUDA only); auto: bf16 where the CPU or GPU computes in
    #: bfloat16 natively, else no (encoderkit.training.precision). See docs/distributed.md.
    mixed_precision: Literal["no", "fp16", "bf16", "auto"] = "no"
    #: torch intra-op threads (None: torch's default).
    num_threads: int | None = Field(None, ge=1)
    progress: bool = True

    @field_validator("blend_with_start")
    @classmethod
    def _alphas_between_zero_and_one(cls, value: list[float]) -> list[float]:
        wrong = [alpha for alpha in value if not 0.0 < alpha < 1.0]
        if wrong:
            raise ValueError(f"blend_with_start holds fractions of the trained weights strictly between 0 and 1 "
                             f"(the trained weights, 1, are always a candidate), not {wrong}")
        return sorted(set(value))

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _no_is_a_word(cls, value):
        """YAML reads a bare ``no`` (``mixed_precision: no``, ``train.mixed_precision=no``) as false."""
        return "no" if value is False else value


#: Poolings that give every input the same vector on encoders without context: a bag of
#: embeddings' or a CNN's first token is always [CLS] and its last token carries no sentence.
POOLINGS_BY_ENCODER: dict[str, tuple[str, ...]] = {
    "bow": ("mean", "max", "attention"),
    "cnn": ("mean", "max", "attention"),
}


class RunConfig(Section):
    """A whole run: the task, the text encoder (``encoder`` is chosen by its ``kind``), training, and
    one section per task (only the chosen task's section may be given)."""

    task: Literal["classify", "retrieve", "translate"] = "classify"
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
    translate: TranslateConfig = Field(default_factory=TranslateConfig)
    #: Train the classifier on a teacher's outputs (``encoderkit distill``); None: plain training.
    distill: DistillConfig | None = None

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
        if self.distill is not None and self.task != "classify":
            raise ValueError(f"distill needs task classify (a classification student), but task is {self.task}")
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
TASK_SECTIONS: dict[str, type[Section]] = {"classify": ClassifyConfig, "retrieve": RetrieveConfig,
                                          "translate": TranslateConfig}

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


def _tagged_members(annotation: Any) -> dict[str, type[BaseModel]]:
    """``{kind: section class}`` of a union of sections tagged by ``kind`` (empty for anything else)."""
    members: dict[str, type[BaseModel]] = {}
    for member in get_args(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel) and "kind" in member.model_fields:
            for kind in get_args(member.model_fields["kind"].annotation):
                members[kind] = member
    return members


def _section_at(model: type[BaseModel], location: tuple[Any, ...]) -> Any:
    """The section class (or, for a tagged union, ``{kind: class}``) at ``location``; None if unknown."""
    current: Any = model
    for part in location:
        if isinstance(current, dict):  # pydantic puts the union member's tag in the location
            current = current.get(part)
            continue
        field = current.model_fields.get(part) if current is not None else None
        if field is None:
            return None
        sections = [a for a in (get_args(field.annotation) or (field.annotation,))
                    if isinstance(a, type) and issubclass(a, BaseModel)]
        current = sections[0] if len(sections) == 1 else _tagged_members(field.annotation) or None
    return current


def _valid_keys(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The field names valid where pydantic reported an unknown key (``location`` ends with that key)."""
    current = _section_at(model, location[:-1])
    return sorted(current.model_fields) if isinstance(current, type) else []


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
        elif item["type"] == "union_tag_not_found":
            kinds = _section_at(root, loc)
            lines.append(f"config '{shown}' needs a kind; valid kinds: "
                         f"{', '.join(sorted(kinds if isinstance(kinds, dict) else _ENCODER_BY_KIND))}")
        elif item["type"] == "union_tag_invalid":
            kinds = _section_at(root, loc)
            what = "encoder" if loc[-1] == "encoder" else loc[-1]
            lines.append(
                f"unknown {what} kind {item['input'].get('kind')!r} at '{shown}'; "
                f"valid kinds: {', '.join(sorted(kinds if isinstance(kinds, dict) else _ENCODER_BY_KIND))}"
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
    """The config as plain JSON types; a run config keeps only its own task's section (the others
    hold defaults that mean nothing for it, and a saved config must load back as given)."""
    if isinstance(config, RunConfig):
        # distill: only when set, so the configs of plain runs read as before.
        excluded = {name for name in TASK_SECTIONS if name != config.task} | ({"distill"} if config.distill is None
                                                                               else set())
        return config.model_dump(mode="json", exclude=excluded)
    return config.model_dump(mode="json")


def save_config(config: BaseModel, path: str | Path) -> None:
    from encoderkit.files import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))

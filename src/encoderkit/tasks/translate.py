"""Machine translation: a text encoder reads the source, a decoder with attention writes the target.

    result = run(load_config("configs/translate_transformer_de_en.yaml"))
    encoderkit.load(result.model_dir).translate("Ein Hund läuft im Schnee.")

Read top to bottom, this is the recipe the runner follows for ``task: translate``: read sentence
pairs (line-aligned files, JSONL, TSV or CSV), a joint subword vocabulary (the runner's tokenizer,
trained on both sides with ``<s>`` and ``</s>``) or a separate one for the target, drop pairs that are
too long or badly out of ratio, batch by a token budget, build ``Translator`` (the runner's
``TextEncoder`` + a decoder of ``heads/seq2seq.py``), train with label-smoothed cross-entropy under
teacher forcing, and validate with BLEU on a greedy decode of the validation set
(``encoderkit.search``). The model directory adds ``target_tokenizer.json`` for a separate vocabulary;
``encoderkit.load()`` returns ``TranslationModel``.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from encoderkit.config import RunConfig, TranslateConfig
from encoderkit.data.batching import LengthBucketSampler, TokenBudgetSampler, pad_batch
from encoderkit.data.parallel import Pair, filter_pairs, read_pairs
from encoderkit.distributed import map_shards
from encoderkit.errors import ConfigError, ModelDirectoryError
from encoderkit.heads.seq2seq import Translator, build_decoder
from encoderkit.metrics.translation import sentence_chrf, translation_metrics
from encoderkit.search import Hypothesis, beam_search, greedy_search
from encoderkit.tasks.base import Loaders, LossFunction, RunResult
from encoderkit.texts import as_text_list

BOS, EOS = "<s>", "</s>"
TARGET_PREFIX = "target_"
TRAINED_KINDS = ("word", "bpe", "wordpiece", "unigram", "char")


@dataclass
class TranslationData:
    train: list[Pair]
    validation: list[Pair]
    test: list[Pair] | None
    source: str
    target: str
    #: One vocabulary for both sides (the tokenizer is trained on both).
    joint: bool = True
    duplicate_train_pairs: int = 0
    test_sources_in_train: int = 0
    #: Training pairs the length and ratio filters dropped (set when the batches are built).
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class TranslateSpec:
    """What a translation model needs besides its weights: the target tokenizer (None: the joint
    vocabulary, i.e. the source tokenizer) and the search defaults."""

    source: str
    target: str
    target_tokenizer: object | None
    beam_size: int
    length_penalty: float
    max_length_ratio: float
    max_length_extra: int
    #: Beam size of the decode that scores the validation set during training (1: greedy).
    validation_beam: int = 1

    def target_side(self, source_tokenizer) -> "TargetVocabulary":
        return TargetVocabulary(self.target_tokenizer or source_tokenizer)


class TargetVocabulary:
    """The target side of a tokenizer: ids without ``[CLS]``, framed by ``<s>`` / ``</s>``, and back to text."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        vocab = tokenizer.get_vocab()
        missing = [token for token in (BOS, EOS) if token not in vocab]
        if missing:
            raise ModelDirectoryError(f"the target tokenizer has no {' or '.join(missing)} token; it was not made "
                                      "for translation")
        self.bos_id, self.eos_id, self.pad_id = vocab[BOS], vocab[EOS], tokenizer.pad_id
        self.size = tokenizer.vocab_size
        #: Never produced by a search: padding, <s>, and the [CLS] every trained encoding starts with.
        self.banned = tuple(sorted({self.pad_id, self.bos_id, *([vocab["[CLS]"]] if "[CLS]" in vocab else [])}))

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, no special tokens (truncated to the tokenizer's max_length)."""
        return [encoding.ids for encoding in self.tokenizer.backend.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, id_lists: Sequence[Sequence[int]]) -> list[str]:
        return [text.strip() for text in self.tokenizer.decode_batch(id_lists)]


def token_texts(tokenizer, ids: Sequence[int]) -> list[str]:
    """Each token id as its text (for attention plots); a token that decodes to nothing shows as ``_``."""
    return [tokenizer.backend.decode([i], skip_special_tokens=False).strip() or "_" for i in ids]


# -- data ------------------------------------------------------------------------------------


def check_config(config: RunConfig) -> None:
    """Refuse settings that cannot work together, before any file is read."""
    section = config.translate
    pretrained = config.encoder.kind == "pretrained"
    if section.vocabulary == "joint":
        if pretrained:
            raise ConfigError("translate.vocabulary=joint trains one vocabulary on both languages, but a pretrained "
                              "encoder brings its own; set translate.vocabulary=separate")
        if section.target_tokenizer is not None:
            raise ConfigError("translate.target_tokenizer applies to translate.vocabulary=separate only; with a joint "
                              "vocabulary the tokenizer section serves both sides")
        if config.tokenizer.kind not in TRAINED_KINDS:
            raise ConfigError(f"tokenizer.kind={config.tokenizer.kind} cannot train a joint vocabulary; "
                              f"use one of {', '.join(TRAINED_KINDS)} (bpe or unigram for translation)")
    elif target_tokenizer_config(config).kind not in TRAINED_KINDS:
        raise ConfigError("the target side needs a trained tokenizer: set translate.target_tokenizer.kind to bpe or "
                          "unigram (with a pretrained encoder the tokenizer section is the checkpoint's)")
    if section.decoder.share_source_embedding and (section.vocabulary != "joint" or pretrained):
        raise ConfigError("translate.decoder.share_source_embedding needs translate.vocabulary=joint and an encoder "
                          "trained here (not pretrained)")


def target_tokenizer_config(config: RunConfig):
    return config.translate.target_tokenizer or config.tokenizer


def load_data(config: RunConfig) -> TranslationData:
    """Read train/validation/test pairs; carve a seeded validation split from train if none is given."""
    check_config(config)
    section, data = config.translate, config.data
    if not data.train:
        raise ConfigError("data.train is not set; give the training corpus (e.g. data.train=multi30k/train for "
                          "train.de / train.en)")
    fmt = "auto" if data.format == "auto" else data.format

    def read(path: str) -> list[Pair]:
        return read_pairs(path, section.source, section.target, fmt)

    train = read(data.train)
    if data.validation:
        validation = read(data.validation)
    elif data.validation_fraction > 0:
        order = list(range(len(train)))
        random.Random(config.seed).shuffle(order)
        cut = max(1, int(round(len(train) * data.validation_fraction)))
        held = set(order[:cut])
        validation = [pair for i, pair in enumerate(train) if i in held]
        train = [pair for i, pair in enumerate(train) if i not in held]
    else:
        raise ConfigError("no validation data: set data.validation or data.validation_fraction > 0")
    test = read(data.test) if data.test else None
    seen = Counter((pair.source, pair.target) for pair in train)
    sources = {pair.source for pair in train}
    return TranslationData(train, validation, test, section.source, section.target, section.vocabulary == "joint",
                           duplicate_train_pairs=sum(count - 1 for count in seen.values()),
                           test_sources_in_train=sum(pair.source in sources for pair in test or ()))


class PairDataset(torch.utils.data.Dataset):
    """Token ids of both sides, with the raw texts for scoring."""

    def __init__(self, source_ids: list[list[int]], target_ids: list[list[int]], sources: list[str],
                 references: list[str], beam_size: int = 1):
        self.source_ids, self.target_ids = source_ids, target_ids
        self.sources, self.references = sources, references
        #: The beam of the decode ``evaluate`` scores this split with (validation: translate.validation_beam,
        #: test: translate.beam_size).
        self.beam_size = beam_size

    def __len__(self) -> int:
        return len(self.source_ids)

    def __getitem__(self, index: int):
        return index, self.source_ids[index], self.target_ids[index]

    def subset(self, indices: Sequence[int]) -> "PairDataset":
        return PairDataset([self.source_ids[i] for i in indices], [self.target_ids[i] for i in indices],
                           [self.sources[i] for i in indices], [self.references[i] for i in indices], self.beam_size)


def collate_pairs(items, source_pad: int, target: "TargetVocabulary") -> dict:
    """Padded batch: source ids/mask, decoder input ``<s> y`` and output ``y </s>`` (teacher forcing)."""
    indices, sources, targets = zip(*items)
    source_ids, source_mask = pad_batch(sources, source_pad)
    target_in, _ = pad_batch([[target.bos_id, *ids] for ids in targets], target.pad_id)
    target_out, target_mask = pad_batch([[*ids, target.eos_id] for ids in targets], target.pad_id)
    return {"source_ids": source_ids, "source_mask": source_mask, "target_in": target_in, "target_out": target_out,
            "target_mask": target_mask, "index": torch.tensor(indices)}


def describe_dropped(dropped: dict[str, int], total: int, section: TranslateConfig) -> str | None:
    if not sum(dropped.values()):
        return None
    return (f"dropped {sum(dropped.values())} of {total} training pairs: {dropped['too_long']} with a side longer "
            f"than {section.filter_max_tokens} tokens (translate.filter_max_tokens), {dropped['ratio']} with one side "
            f"over {section.filter_max_ratio:g}x the other's length (translate.filter_max_ratio)")


# -- decoding --------------------------------------------------------------------------------


def max_output_lengths(source_lengths: torch.Tensor, ratio: float, extra: int, cap: int | None) -> torch.Tensor:
    """``ceil(ratio * source tokens + extra)`` per sentence (``</s>`` included), at most ``cap``."""
    lengths = torch.ceil(source_lengths.double() * ratio + extra).long().clamp(min=1)
    return lengths.clamp(max=cap) if cap is not None else lengths


@torch.no_grad()
def decode(model: Translator, source_id_lists: Sequence[Sequence[int]], source_pad: int, target: TargetVocabulary, *,
           beam_size: int, length_penalty: float, max_length_ratio: float, max_length_extra: int,
           batch_size: int = 64, need_attention: bool = False) -> list[Hypothesis]:
    """Translate tokenized sources in batches of similar length; the best hypothesis each, input order.

    ``beam_size`` 1 is greedy search; the others run batched beam search (``encoderkit.search``).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort([-len(ids) for ids in source_id_lists], kind="stable")
    results: list[Hypothesis | None] = [None] * len(source_id_lists)
    cap = model.decoder.max_length
    starts = range(0, len(order), batch_size)

    def run_batch(number: int) -> list[Hypothesis]:
        rows = order[starts[number]:starts[number] + batch_size]
        ids, mask = pad_batch([source_id_lists[i] for i in rows], source_pad)
        ids, mask = ids.to(device), mask.to(device)
        memory = model.encode(ids, mask)
        limits = max_output_lengths(mask.sum(1), max_length_ratio, max_length_extra, cap)
        common = dict(bos_id=target.bos_id, eos_id=target.eos_id, max_lengths=limits, banned=target.banned,
                      need_attention=need_attention)
        if beam_size == 1:
            return greedy_search(model.decoder, memory, mask, **common)
        return [best[0] for best in beam_search(model.decoder, memory, mask, beam_size=beam_size,
                                                alpha=length_penalty, **common)]

    try:
        # Inside ``sharded_evaluation`` with several processes, each decodes every N-th batch.
        for start, found in zip(starts, map_shards(len(starts), run_batch)):
            for row, hypothesis in zip(order[start:start + batch_size], found):
                results[row] = hypothesis
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]


# -- the task --------------------------------------------------------------------------------


class TranslateTask:
    """``task: translate``: see the module docstring."""

    name = "translate"
    section = TranslateConfig

    def read_data(self, config: RunConfig) -> TranslationData:
        return load_data(config)

    def describe_data(self, data: TranslationData) -> str:
        line = (f"data: {len(data.train)} train / {len(data.validation)} validation / "
                f"{len(data.test) if data.test else 0} test pairs, {data.source} -> {data.target}")
        if data.duplicate_train_pairs:
            line += f"; {data.duplicate_train_pairs} training pairs repeat an earlier one (kept)"
        if data.test_sources_in_train:
            line += f"; {data.test_sources_in_train} test sources also occur in train (leakage)"
        if sum(data.dropped.values()):
            line += f"; {sum(data.dropped.values())} training pairs dropped by the length/ratio filters"
        return line

    def training_texts(self, data: TranslationData) -> list[str]:
        """The source side, followed by the target side for a joint vocabulary."""
        sources = [pair.source for pair in data.train]
        return sources + [pair.target for pair in data.train] if data.joint else sources

    def special_tokens(self, config: RunConfig) -> tuple[str, ...]:
        return (BOS, EOS) if config.translate.vocabulary == "joint" else ()

    def spec(self, config: RunConfig, data: TranslationData) -> TranslateSpec:
        section = config.translate
        target_tokenizer = None
        if section.vocabulary == "separate":
            from encoderkit.tokenization import Tokenizer

            target_tokenizer = Tokenizer.train([pair.target for pair in data.train], target_tokenizer_config(config),
                                               (BOS, EOS))
        return TranslateSpec(section.source, section.target, target_tokenizer, section.beam_size,
                             section.length_penalty, section.max_length_ratio, section.max_length_extra,
                             section.validation_beam)

    def build_model(self, config: RunConfig, text_encoder: nn.Module, spec: TranslateSpec) -> Translator:
        target = spec.target_side(text_encoder.tokenizer)
        decoder_config = config.translate.decoder
        shared = text_encoder.embedding.weight_table if decoder_config.share_source_embedding else None
        decoder = build_decoder(decoder_config, target.size, target.pad_id, text_encoder.encoder.output_dim, shared)
        return Translator(text_encoder, decoder)

    def loaders(self, config: RunConfig, data: TranslationData, spec: TranslateSpec, tokenizer) -> Loaders:
        section = config.translate
        target = spec.target_side(tokenizer)

        def dataset(pairs: list[Pair], beam_size: int = 1) -> PairDataset:
            return PairDataset(tokenizer.encode_batch([p.source for p in pairs]), target.encode([p.target for p in pairs]),
                               [p.source for p in pairs], [p.target for p in pairs], beam_size)

        def loader(encoded: PairDataset, train: bool) -> DataLoader:
            lengths = [max(len(s), len(t) + 1) for s, t in zip(encoded.source_ids, encoded.target_ids)]
            if train and section.batch_tokens:
                sampler = TokenBudgetSampler(lengths, section.batch_tokens, shuffle=True, seed=config.seed,
                                             secondary=[len(t) for t in encoded.target_ids])
            else:
                size = config.train.batch_size if train else config.train.eval_batch_size
                sampler = LengthBucketSampler(lengths, size, shuffle=train, seed=config.seed)
            return DataLoader(encoded, batch_sampler=sampler,
                              collate_fn=lambda items: collate_pairs(items, tokenizer.pad_id, target))

        train = dataset(data.train)
        kept, data.dropped = filter_pairs([(len(s), len(t)) for s, t in zip(train.source_ids, train.target_ids)],
                                          section.filter_max_tokens, section.filter_max_ratio)
        if not kept:
            raise ConfigError(f"the length filters dropped every training pair; raise translate.filter_max_tokens "
                              f"({section.filter_max_tokens}) or translate.filter_max_ratio ({section.filter_max_ratio:g})")
        return Loaders(train=loader(train.subset(kept), train=True),
                       validation=loader(dataset(data.validation, section.validation_beam), train=False),
                       test=loader(dataset(data.test, section.beam_size), train=False) if data.test else None,
                       note=describe_dropped(data.dropped, len(data.train), section))

    def loss_function(self, config: RunConfig, data: TranslationData, spec: TranslateSpec) -> LossFunction:
        smoothing = config.translate.label_smoothing

        def loss(model: Translator, batch) -> torch.Tensor:
            """Label-smoothed cross-entropy per target token: ``-sum_c q_c log p_c``,
            ``q = (1 - eps) onehot(y) + eps / V``; padding positions do not count."""
            logits = model(batch["source_ids"], batch["source_mask"], batch["target_in"])
            return F.cross_entropy(logits.flatten(0, 1), batch["target_out"].flatten(), label_smoothing=smoothing,
                                   ignore_index=model.decoder.embedding.padding_idx)

        # A mean over target tokens: with several processes each one's share of a global batch is its
        # share of the target tokens (training/loop.py scales by it).
        loss.batch_weight = lambda batch: int(batch["target_mask"].sum())
        return loss

    def evaluate(self, model: Translator, loader: DataLoader, spec: TranslateSpec,
                 loss_function: LossFunction | None = None, beam_size: int | None = None) -> dict:
        """BLEU, lowercased BLEU and chrF of a decode of the split, and the per-token cross-entropy
        (``loss``, without label smoothing). The decode uses the split's beam (``PairDataset.beam_size``:
        greedy for validation during training unless ``translate.validation_beam``, the model's
        ``translate.beam_size`` for test) unless ``beam_size`` is given."""
        dataset: PairDataset = loader.dataset
        tokenizer = model.text_encoder.tokenizer
        target = spec.target_side(tokenizer)
        device = next(model.parameters()).device
        batches = list(loader)

        def batch_loss(number: int) -> tuple[float, int]:
            """Summed cross-entropy of one batch, and its target tokens."""
            batch = batches[number]
            logits = model(batch["source_ids"].to(device), batch["source_mask"].to(device),
                           batch["target_in"].to(device))
            gold = batch["target_out"].to(device)
            return (float(F.cross_entropy(logits.flatten(0, 1).float(), gold.flatten(), ignore_index=target.pad_id,
                                          reduction="sum")), int((gold != target.pad_id).sum()))

        was_training = model.training
        model.eval()
        with torch.no_grad():
            sums = map_shards(len(batches), batch_loss)  # each process every N-th batch, when sharded
        model.train(was_training)
        total, tokens = sum(loss for loss, _ in sums), sum(count for _, count in sums)
        beam = beam_size or dataset.beam_size
        found = decode(model, dataset.source_ids, tokenizer.pad_id, target, beam_size=beam,
                       length_penalty=spec.length_penalty, max_length_ratio=spec.max_length_ratio,
                       max_length_extra=spec.max_length_extra, batch_size=loader.batch_sampler.batch_size
                       if hasattr(loader.batch_sampler, "batch_size") else 64)
        hypotheses = target.decode([h.tokens for h in found])
        metrics = translation_metrics(hypotheses, dataset.references)
        metrics["loss"] = total / max(tokens, 1)
        metrics["beam_size"] = beam
        metrics["translations"] = hypotheses
        return metrics

    def save_spec(self, directory: Path, spec: TranslateSpec) -> dict:
        if spec.target_tokenizer is not None:
            spec.target_tokenizer.save(directory, prefix=TARGET_PREFIX)
        return {"vocabulary": "separate" if spec.target_tokenizer is not None else "joint",
                "source": spec.source, "target": spec.target}

    def load_spec(self, config: RunConfig, directory: Path, meta: dict) -> TranslateSpec:
        section = config.translate
        target_tokenizer = None
        if section.vocabulary == "separate":
            from encoderkit.tokenization import load_tokenizer

            path = directory / f"{TARGET_PREFIX}tokenizer.json"
            if not path.is_file():
                raise ModelDirectoryError(f"{directory} is not a complete encoderkit translation model: missing "
                                          f"{path.name} (the target side's tokenizer)")
            target_tokenizer = load_tokenizer(directory, prefix=TARGET_PREFIX)
        return TranslateSpec(section.source, section.target, target_tokenizer, section.beam_size,
                             section.length_penalty, section.max_length_ratio, section.max_length_extra,
                             section.validation_beam)

    def predictor(self, model: Translator, config: RunConfig, spec: TranslateSpec,
                  directory: Path | None) -> "TranslationModel":
        return TranslationModel(model, config, spec, directory)

    def write_report(self, run_dir: Path, config: RunConfig, spec: TranslateSpec, result: RunResult) -> Path:
        from encoderkit.translation.report import write_translation_report

        return write_translation_report(run_dir, config, result)


# -- the loaded model ------------------------------------------------------------------------


@dataclass
class Translation:
    """One translation with its details: tokens of both sides and the attention over the source
    for each output token (``</s>`` included): (target tokens + 1, source tokens)."""

    source: str
    text: str
    score: float
    source_tokens: list[str]
    target_tokens: list[str]
    attention: np.ndarray | None


class SourceTooLong(UserWarning):
    """A source text was longer than the model reads; only its first tokens were translated."""


class TranslationModel:
    """A loaded translation model: ``translate(texts)`` on raw texts.

    A ``str`` gives one translation, a list gives a list (``encoderkit.texts.as_text_list``).
    """

    task = "translate"

    def __init__(self, model: Translator, config: RunConfig, spec: TranslateSpec, directory: Path | None = None):
        self.model = model.eval()
        self.config = config
        self.spec = spec
        self.directory = directory
        self.target = spec.target_side(self.tokenizer)

    @property
    def tokenizer(self):
        """The source tokenizer."""
        return self.model.text_encoder.tokenizer

    @property
    def max_source_tokens(self) -> int:
        return self.tokenizer.max_length

    def encode_sources(self, texts: list[str], on_truncate: Callable[[int, int], None] | None = None) -> list[list[int]]:
        """Source ids; each text longer than the model reads is reported to ``on_truncate(index, tokens)``
        (default: a ``SourceTooLong`` warning) and cut to its first ``max_source_tokens`` tokens."""
        ids = self.tokenizer.encode_batch(texts)
        for index, encoding in enumerate(self.tokenizer.backend.encode_batch(texts)):
            if encoding.overflowing:
                full = len(self._untruncated().encode(texts[index]).ids)
                if on_truncate is not None:
                    on_truncate(index, full)
                else:
                    warnings.warn(f"texts[{index}] has {full} tokens but the model reads at most "
                                  f"{self.max_source_tokens} (tokenizer.max_length): only its first "
                                  f"{self.max_source_tokens} tokens were translated", SourceTooLong, stacklevel=3)
        return ids

    def _untruncated(self):
        """A copy of the source tokenizer's backend that does not truncate (to count a long text's tokens)."""
        if getattr(self, "_counter", None) is None:
            from tokenizers import Tokenizer as HFTokenizer

            self._counter = HFTokenizer.from_str(self.tokenizer.backend.to_str())
            self._counter.no_truncation()
        return self._counter

    def translate(self, texts, beam: int | None = None, *, length_penalty: float | None = None,
                  max_length_ratio: float | None = None, batch_size: int = 64, attention: bool = False,
                  on_truncate: Callable[[int, int], None] | None = None):
        """Translate one text (a ``str``) or a list of texts.

        Args:
            texts: a str or a sequence of str (blank texts are refused by position).
            beam: beam size (1: greedy); default the model's ``translate.beam_size``.
            length_penalty: GNMT alpha; default the model's.
            max_length_ratio: longest output per source token; default the model's.
            batch_size: sentences decoded together.
            attention: return ``Translation`` objects with tokens and attention weights instead of strings.
            on_truncate: called with (index, tokens) for each source longer than the model reads.

        Returns:
            A str (or ``Translation``) per text; a single one for a single str.
        """
        items, single = as_text_list(texts)
        beam = self.spec.beam_size if beam is None else beam
        if beam < 1:
            raise ConfigError(f"beam must be 1 (greedy) or more, got {beam}")
        source_ids = self.encode_sources(items, on_truncate)
        found = decode(self.model, source_ids, self.tokenizer.pad_id, self.target, beam_size=beam,
                       length_penalty=self.spec.length_penalty if length_penalty is None else length_penalty,
                       max_length_ratio=self.spec.max_length_ratio if max_length_ratio is None else max_length_ratio,
                       max_length_extra=self.spec.max_length_extra, batch_size=batch_size, need_attention=attention)
        texts_out = self.target.decode([h.tokens for h in found])
        if not attention:
            return texts_out[0] if single else texts_out
        details = [Translation(source, text, h.score, token_texts(self.tokenizer, ids),
                               [*token_texts(self.target.tokenizer, h.tokens), EOS],
                               h.attention.numpy() if h.attention is not None else None)
                   for source, text, h, ids in zip(items, texts_out, found, source_ids)]
        return details[0] if single else details

    def explain(self, texts, target: str | None = None, beam: int | None = None):
        """The decoder's cross-attention: which source tokens each output token was read from.

        Args:
            texts: a str (one ``encoderkit.interpret.Alignment`` back) or a list of str.
            target: a translation of the one text to align (teacher forcing) instead of the model's own.
            beam: beam size of the model's own translations (default: the model's).

        Returns:
            ``Alignment``: ``source_tokens``, ``target_tokens``, ``weights`` (target tokens + 1, source tokens),
            ``heatmap_png()``.
        """
        from encoderkit.interpret.translation import explain_translation

        return explain_translation(self, texts, target=target, beam=beam)

    def translate_stream(self, texts: Iterable[str], beam: int | None = None, batch_size: int = 64,
                         **options) -> Iterator[str]:
        """Translations of a stream of texts, in input order, ``batch_size`` texts at a time (for files
        and pipes: the first lines come out before the last are read)."""
        chunk: list[str] = []
        for text in texts:
            chunk.append(text)
            if len(chunk) == batch_size:
                yield from self.translate(chunk, beam, batch_size=batch_size, **options)
                chunk = []
        if chunk:
            yield from self.translate(chunk, beam, batch_size=batch_size, **options)

    def evaluate(self, sources: Sequence[str], references: Sequence[str], beam: int | None = None,
                 batch_size: int = 64) -> dict:
        """sacreBLEU BLEU (cased and lowercased) and chrF of the translations of ``sources``."""
        hypotheses = self.translate(list(sources), beam, batch_size=batch_size)
        metrics = translation_metrics(hypotheses, references)
        metrics["translations"] = hypotheses
        metrics["sentence_chrf"] = sentence_chrf(hypotheses, references)
        return metrics

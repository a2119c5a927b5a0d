"""Tokenizers trained on the training text with Hugging Face ``tokenizers``.

Kinds: ``word`` (whole words and punctuation), ``bpe`` (byte-level BPE, never unknown),
``wordpiece`` (BERT-style ``##`` continuations), ``unigram`` (SentencePiece-style) and ``char``.
Normalisation: NFKC, lowercase, accent stripping, and spaces around CJK ideographs so Chinese
or Japanese text splits into characters without a word segmenter.
Every encoding starts with ``[CLS]`` (the ``cls`` pooler reads it) and is truncated to ``max_length``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers import Tokenizer as HFTokenizer

from encoderkit.config import TokenizerConfig
from encoderkit.errors import ConfigError
from encoderkit.tokenization.base import TOKENIZER_FILE, TextTokenizer, read_backend, read_meta

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIAL_TOKENS = [PAD, UNK, CLS]


def _normalizer(config: TokenizerConfig) -> normalizers.Normalizer | None:
    steps = []
    if config.nfkc:
        steps.append(normalizers.NFKC())
    if config.split_cjk:
        # BertNormalizer's handle_chinese_chars puts spaces around every CJK ideograph.
        steps.append(normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=False, lowercase=False))
        steps.extend([normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    if config.strip_accents:
        steps.extend([normalizers.NFD(), normalizers.StripAccents()])
    if config.lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps) if steps else None


def _model_and_trainer(config: TokenizerConfig, special_tokens: Sequence[str]):
    common = dict(vocab_size=config.vocab_size, min_frequency=config.min_frequency,
                  special_tokens=list(special_tokens), show_progress=False)
    kind = config.kind
    if kind == "word":
        return (models.WordLevel(unk_token=UNK), trainers.WordLevelTrainer(**common),
                pre_tokenizers.BertPreTokenizer(), None)
    if kind == "wordpiece":
        return (models.WordPiece(unk_token=UNK), trainers.WordPieceTrainer(**common),
                pre_tokenizers.BertPreTokenizer(), decoders.WordPiece())
    if kind == "bpe":
        return (models.BPE(), trainers.BpeTrainer(initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), **common),
                pre_tokenizers.ByteLevel(add_prefix_space=True), decoders.ByteLevel())
    if kind == "unigram":
        common.pop("min_frequency")
        return (models.Unigram(), trainers.UnigramTrainer(unk_token=UNK, **common),
                pre_tokenizers.Metaspace(), decoders.Metaspace())
    if kind == "char":
        # Metaspace marks word starts with "▁", then every character becomes a token.
        pre = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(),
                                       pre_tokenizers.Split(Regex("."), behavior="isolated")])
        return models.WordLevel(unk_token=UNK), trainers.WordLevelTrainer(**common), pre, decoders.Metaspace()
    raise ConfigError(f"unknown tokenizer kind {kind!r}; valid kinds: word, bpe, wordpiece, unigram, char, pretrained")


def _pad_and_cls(backend: HFTokenizer) -> tuple[int, int | None]:
    vocab = backend.get_vocab()
    pad_token = next((t for t in (PAD, "<pad>", "[pad]") if t in vocab), None)
    cls_token = next((t for t in (CLS, "<s>") if t in vocab), None)
    return (vocab[pad_token] if pad_token is not None else 0), (vocab.get(cls_token) if cls_token else None)


class Tokenizer(TextTokenizer):
    """A tokenizer trained on the training text: ``[CLS]`` first, truncated to ``max_length``."""

    kind = "trained"

    def __init__(self, backend: HFTokenizer, max_length: int):
        pad_id, self.cls_id = _pad_and_cls(backend)
        super().__init__(backend, max_length, pad_id)
        self.backend.enable_truncation(self.max_length)
        self.backend.no_padding()

    @classmethod
    def train(cls, texts: Iterable[str], config: TokenizerConfig,
              extra_special_tokens: Sequence[str] = ()) -> "Tokenizer":
        """Train a tokenizer of ``config.kind`` on ``texts`` (or load a checkpoint's for ``pretrained``).

        Args:
            extra_special_tokens: tokens a task needs besides ``[PAD] [UNK] [CLS]`` (a decoder's
                begin and end of sentence), given ids right after them.
        """
        if config.kind == "pretrained":
            if not config.path:
                raise ConfigError("tokenizer.kind=pretrained needs tokenizer.path, the checkpoint directory")
            from encoderkit.checkpoint_folder import resolve_checkpoint_path

            return cls.load(resolve_checkpoint_path(config.path), max_length=config.max_length)
        model, trainer, pre_tokenizer, decoder = _model_and_trainer(config, [*SPECIAL_TOKENS, *extra_special_tokens])
        backend = HFTokenizer(model)
        normalizer = _normalizer(config)
        if normalizer is not None:
            backend.normalizer = normalizer
        backend.pre_tokenizer = pre_tokenizer
        if decoder is not None:
            backend.decoder = decoder
        backend.train_from_iterator(texts, trainer=trainer)
        cls_id = backend.token_to_id(CLS)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{CLS} $A", pair=f"{CLS} $A $B", special_tokens=[(CLS, cls_id)]
        )
        return cls(backend, config.max_length)

    @classmethod
    def load(cls, directory: str | Path, max_length: int | None = None, prefix: str = "") -> "Tokenizer":
        backend = read_backend(Path(directory) / f"{prefix}{TOKENIZER_FILE}")
        if max_length is None:
            max_length = read_meta(Path(directory), prefix).get("max_length", 512)
        return cls(backend, max_length)

    def meta(self) -> dict:
        return {"max_length": self.max_length}

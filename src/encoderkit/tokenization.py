"""Tokenizers trained on the training text with Hugging Face ``tokenizers``.

Kinds: ``word`` (whole words and punctuation), ``bpe`` (byte-level BPE, never unknown),
``wordpiece`` (BERT-style ``##`` continuations), ``unigram`` (SentencePiece-style) and ``char``.
Normalisation: NFKC, lowercase, accent stripping, and spaces around CJK ideographs so Chinese
or Japanese text splits into characters without a word segmenter.
Every encoding starts with ``[CLS]`` (the ``cls`` pooler reads it) and is truncated to ``max_length``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers import Tokenizer as HFTokenizer

from encoderkit.config import TokenizerConfig
from encoderkit.errors import ConfigError, ModelDirectoryError

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIAL_TOKENS = [PAD, UNK, CLS]
TOKENIZER_FILE = "tokenizer.json"


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


def _model_and_trainer(config: TokenizerConfig):
    common = dict(vocab_size=config.vocab_size, min_frequency=config.min_frequency,
                  special_tokens=SPECIAL_TOKENS, show_progress=False)
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


class Tokenizer:
    """Text -> token ids, wrapping a Hugging Face ``tokenizers.Tokenizer``."""

    def __init__(self, backend: HFTokenizer, max_length: int):
        self.backend = backend
        self.max_length = max_length
        self.backend.enable_truncation(max_length)
        self.backend.no_padding()
        vocab = backend.get_vocab()
        pad_token = next((t for t in (PAD, "<pad>", "[pad]") if t in vocab), None)
        self.pad_id = vocab[pad_token] if pad_token is not None else 0
        cls_token = next((t for t in (CLS, "<s>") if t in vocab), None)
        self.cls_id = vocab.get(cls_token) if cls_token else None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], config: TokenizerConfig) -> "Tokenizer":
        """Train a tokenizer of ``config.kind`` on ``texts`` (or load a checkpoint's for ``pretrained``)."""
        if config.kind == "pretrained":
            if not config.path:
                raise ConfigError("tokenizer.kind=pretrained needs tokenizer.path, the checkpoint directory")
            from encoderkit.encoders.pretrained import resolve_checkpoint_path

            return cls.load(resolve_checkpoint_path(config.path), max_length=config.max_length)
        model, trainer, pre_tokenizer, decoder = _model_and_trainer(config)
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
    def load(cls, directory: str | Path, max_length: int | None = None) -> "Tokenizer":
        path = Path(directory) / TOKENIZER_FILE
        if not path.is_file():
            raise ModelDirectoryError(f"{path} is missing; the directory needs the tokenizer saved with the model")
        backend = HFTokenizer.from_file(str(path))
        if max_length is None:
            meta = Path(directory) / "tokenizer_meta.json"
            max_length = json.loads(meta.read_text())["max_length"] if meta.is_file() else 512
        return cls(backend, max_length)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        self.backend.save(str(directory / TOKENIZER_FILE))
        (directory / "tokenizer_meta.json").write_text(json.dumps({"max_length": self.max_length}))

    # -- use ----------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab()

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids for each text, ``[CLS]`` first, truncated to ``max_length``."""
        return [encoding.ids for encoding in self.backend.encode_batch(list(texts))]

    def tokens(self, text: str) -> list[str]:
        return self.backend.encode(text).tokens

    def token_counts(self, id_lists: Iterable[Sequence[int]]) -> dict[str, int]:
        """How often each vocabulary token occurs in already-encoded text (for coverage reports)."""
        counts = Counter(i for ids in id_lists for i in ids)
        return {self.backend.id_to_token(i): n for i, n in counts.items()}

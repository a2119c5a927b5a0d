"""Tokenizers: trained on the training text (``Tokenizer``) or a checkpoint's own (``CheckpointTokenizer``).

Both follow ``TextTokenizer``; ``load_tokenizer`` reads back whichever a directory holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from encoderkit.tokenization.base import META_FILE, TOKENIZER_FILE, TextTokenizer, read_meta
from encoderkit.tokenization.checkpoint import CheckpointTokenizer
from encoderkit.tokenization.trained import CLS, PAD, SPECIAL_TOKENS, UNK, Tokenizer


def load_tokenizer(directory: str | Path, prefix: str = "") -> TextTokenizer:
    """The tokenizer saved in ``directory`` (by ``TextTokenizer.save``), of whichever kind it is."""
    meta = read_meta(Path(directory), prefix)
    if meta.get("kind") == CheckpointTokenizer.kind:
        return CheckpointTokenizer.load(directory, prefix)
    return Tokenizer.load(directory, prefix=prefix)


def make_tokenizer(config, texts: Iterable[str], extra_special_tokens: Sequence[str] = ()) -> TextTokenizer:
    """The tokenizer a run config asks for: the checkpoint's own for a pretrained encoder, else one
    trained on ``texts`` (the training side of the data)."""
    encoder = config.encoder
    if encoder.kind == "pretrained":
        return CheckpointTokenizer.from_checkpoint(encoder.path, config.tokenizer.max_length,
                                                   max_chunks=encoder.max_chunks, chunk_overlap=encoder.chunk_overlap)
    return Tokenizer.train(texts, config.tokenizer, extra_special_tokens)


__all__ = ["CLS", "META_FILE", "PAD", "SPECIAL_TOKENS", "TOKENIZER_FILE", "UNK", "CheckpointTokenizer",
           "TextTokenizer", "Tokenizer", "load_tokenizer", "make_tokenizer"]

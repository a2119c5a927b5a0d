"""The tokenizer of a local Hugging Face / sentence-transformers checkpoint, special tokens included."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from encoderkit.checkpoint_folder import (check_checkpoint_dir, quiet_transformers, read_json,
                                          read_sentence_transformer_settings)
from encoderkit.errors import ConfigError, ModelDirectoryError
from encoderkit.tokenization.base import META_FILE, TOKENIZER_FILE, TextTokenizer, read_backend, read_meta


class CheckpointTokenizer(TextTokenizer):
    """The checkpoint's own fast tokenizer (``tokenizers.Tokenizer``), special tokens included.

    Padding is done per batch by the caller (dynamic padding), so the wrapped tokenizer never pads;
    it truncates to ``max_length`` (special tokens counted).

    Long documents: with ``max_chunks > 1`` a text longer than ``max_length`` becomes up to
    ``max_chunks`` windows of ``max_length`` tokens, consecutive windows sharing ``chunk_overlap``
    tokens, each with its own special tokens. ``encode_batch`` lays the windows end to end in one id
    list; every window but the last is exactly ``max_length`` long, so ``split_windows`` (and the
    chunk-aware ``TextEncoder``) recover them by cutting every ``max_length`` ids.
    """

    kind = "pretrained"

    def __init__(self, backend, max_length: int, pad_id: int, max_chunks: int = 1, chunk_overlap: int = 0) -> None:
        super().__init__(backend, max_length, pad_id)
        self.max_chunks = int(max_chunks)
        self.chunk_overlap = int(chunk_overlap)
        room = self.max_length - self.backend.num_special_tokens_to_add(False)
        if self.max_chunks > 1 and not 0 <= self.chunk_overlap < room:
            raise ConfigError(
                f"encoder.chunk_overlap ({self.chunk_overlap}) must be below max_length minus special "
                f"tokens ({room})"
            )
        self.backend.no_padding()
        # stride = overlap makes the Rust tokenizer emit the overflowing windows itself.
        self.backend.enable_truncation(self.max_length, stride=self.chunk_overlap if self.max_chunks > 1 else 0)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, max_length: int | None = None, max_chunks: int = 1, chunk_overlap: int = 0
    ) -> "CheckpointTokenizer":
        """Load the tokenizer of a checked checkpoint folder (converting a slow vocabulary if needed).

        Args:
            path: checkpoint folder (sentence-transformers folders are resolved to their model folder).
            max_length: truncation (window) length in tokens; default: the sentence-transformers
                ``max_seq_length`` if declared, else the model's ``max_position_embeddings`` (<= 512).
            max_chunks: windows kept per text (1: plain truncation).
            chunk_overlap: tokens shared by consecutive windows.
        """
        from tokenizers import Tokenizer
        from transformers import AutoConfig, AutoTokenizer

        model_dir = check_checkpoint_dir(path)
        with quiet_transformers():
            if (model_dir / "tokenizer.json").is_file():
                backend = read_backend(model_dir / TOKENIZER_FILE)
                pad_token = _read_pad_token(model_dir)
            else:  # slow vocabulary only: transformers converts it to a fast tokenizer locally
                hf_tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
                backend = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
                pad_token = hf_tokenizer.pad_token
            config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
        if max_length is None:
            settings = read_sentence_transformer_settings(path)
            max_length = settings.max_length if settings and settings.max_length else None
        limit = getattr(config, "max_position_embeddings", 512) or 512
        # RoBERTa-style models offset positions by padding_idx + 1, so 514 positions hold 512 tokens.
        limit = min(limit, 512)
        max_length = min(max_length or limit, limit)
        pad_id = backend.token_to_id(pad_token) if pad_token else None
        if pad_id is None:
            pad_id = getattr(config, "pad_token_id", None) or 0
        return cls(backend, max_length, pad_id, max_chunks=max_chunks, chunk_overlap=chunk_overlap)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, with special tokens: one window of at most ``max_length`` ids, or
        with ``max_chunks > 1`` up to ``max_chunks`` windows laid end to end."""
        encodings = self.backend.encode_batch(list(texts))
        if self.max_chunks == 1:
            return [encoding.ids for encoding in encodings]
        return [
            [i for window in [enc.ids] + [extra.ids for extra in enc.overflowing][: self.max_chunks - 1] for i in window]
            for enc in encodings
        ]

    def split_windows(self, ids: Sequence[int]) -> list[list[int]]:
        """The windows of one ``encode_batch`` id list (a single window without chunking)."""
        return [list(ids[start : start + self.max_length]) for start in range(0, len(ids), self.max_length)]

    def meta(self) -> dict:
        return {"max_length": self.max_length, "pad_id": self.pad_id, "max_chunks": self.max_chunks,
                "chunk_overlap": self.chunk_overlap}

    @classmethod
    def load(cls, directory: str | Path, prefix: str = "") -> "CheckpointTokenizer":
        """Inverse of ``save``: needs only the ``tokenizers`` package."""
        directory = Path(directory)
        backend = read_backend(directory / f"{prefix}{TOKENIZER_FILE}")
        meta = read_meta(directory, prefix)
        if "pad_id" not in meta or "max_length" not in meta:
            raise ModelDirectoryError(f"{directory / (prefix + META_FILE)} is missing or damaged (it needs "
                                      "max_length and pad_id); copy the model directory again")
        return cls(backend, meta["max_length"], meta["pad_id"], max_chunks=meta.get("max_chunks", 1),
                   chunk_overlap=meta.get("chunk_overlap", 0))


def _read_pad_token(model_dir: Path) -> str | None:
    """The pad token named by ``special_tokens_map.json`` or ``tokenizer_config.json``, if any."""
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        file = model_dir / name
        if file.is_file():
            token = read_json(file).get("pad_token")
            if isinstance(token, dict):  # {"content": "[PAD]", ...}
                token = token.get("content")
            if token:
                return token
    return None


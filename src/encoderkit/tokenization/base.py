"""The one tokenizer contract: trained tokenizers and checkpoint tokenizers both implement it.

    encode_batch(texts) -> list of id lists (special tokens included, truncated to max_length)

Both wrap a Hugging Face ``tokenizers.Tokenizer`` (``backend``) and never pad: batches are padded
by the caller to their own longest text (``pad_id``). A tokenizer is saved as ``tokenizer.json``
(the backend) and ``tokenizer_meta.json`` (``kind`` plus the settings the backend does not hold).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from encoderkit.errors import ModelDirectoryError
from encoderkit.files import atomic_write_text

TOKENIZER_FILE = "tokenizer.json"
META_FILE = "tokenizer_meta.json"


class TextTokenizer:
    """Shared behaviour of every tokenizer; subclasses set ``kind`` and may override ``encode_batch``."""

    kind: str = ""

    def __init__(self, backend, max_length: int, pad_id: int) -> None:
        self.backend = backend
        self.max_length = int(max_length)
        self.pad_id = int(pad_id)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab()

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids for each text, special tokens included, truncated to ``max_length``."""
        return [encoding.ids for encoding in self.backend.encode_batch(list(texts))]

    def decode_batch(self, id_lists: Sequence[Sequence[int]]) -> list[str]:
        """Texts back from ids (special tokens dropped)."""
        return self.backend.decode_batch([list(ids) for ids in id_lists], skip_special_tokens=True)

    def tokens(self, text: str) -> list[str]:
        return self.backend.encode(text).tokens

    def token_counts(self, id_lists: Iterable[Sequence[int]]) -> dict[str, int]:
        """How often each vocabulary token occurs in already-encoded text (for coverage reports)."""
        counts = Counter(i for ids in id_lists for i in ids)
        return {self.backend.id_to_token(i): n for i, n in counts.items()}

    def meta(self) -> dict[str, Any]:
        """What ``tokenizer_meta.json`` holds besides ``kind``."""
        return {"max_length": self.max_length, "pad_id": self.pad_id}

    def save(self, directory: str | Path, prefix: str = "") -> None:
        """Write ``{prefix}tokenizer.json`` and ``{prefix}tokenizer_meta.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / f"{prefix}{TOKENIZER_FILE}", self.backend.to_str())
        atomic_write_text(directory / f"{prefix}{META_FILE}", json.dumps({"kind": self.kind, **self.meta()}))


def read_backend(path: Path):
    """A ``tokenizers.Tokenizer`` from ``path``; a damaged or foreign file is one line naming it."""
    from tokenizers import Tokenizer as HFTokenizer

    if not path.is_file():
        raise ModelDirectoryError(f"{path} is missing; the directory needs the tokenizer saved with the model")
    try:
        return HFTokenizer.from_file(str(path))
    except Exception as error:  # tokenizers raises a bare Exception for every parse problem
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelDirectoryError(f"{path} is damaged (not a readable Hugging Face tokenizer: {reason}); "
                                  "copy it again from where the model was trained, or retrain") from None


def read_meta(directory: Path, prefix: str = "") -> dict[str, Any]:
    """``tokenizer_meta.json`` of ``directory``; written before ``kind`` existed, it holds max_length only."""
    path = Path(directory) / f"{prefix}{META_FILE}"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelDirectoryError(f"{path} is damaged (not valid JSON: {error})") from None
    if not isinstance(meta, dict):
        raise ModelDirectoryError(f"{path} is damaged (it must hold a JSON object)")
    return meta

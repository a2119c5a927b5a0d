"""The model behind a dense index: what embeds its documents and, later, the queries.

Three kinds of model folder work:

- an encoderkit retrieval model (``task: retrieve``): queries through its query tower, documents
  through its document tower;
- an encoderkit classification model: its text encoder for both;
- a Hugging Face / sentence-transformers checkpoint folder (``encoderkit.embed.load_embedder``).

A model is pinned by a fingerprint: the SHA-256 of its weight files. An index records it, with the
embedding settings, and refuses queries embedded by any other model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from encoderkit.errors import ModelDirectoryError

Encode = Callable[..., np.ndarray]


@dataclass
class IndexEncoder:
    """``encode_queries(texts) -> (N,H)`` and ``encode_documents(texts) -> (N,H)``, with what pins them."""

    encode_queries: Encode
    encode_documents: Encode
    dim: int
    #: ``{"path", "kind", "sha256"}``: the model an index was built with.
    model: dict
    #: ``{"pooling", "normalize", "max_length"}``: how it turns texts into vectors.
    settings: dict
    #: The ``TextEncoder`` modules behind ``encode_queries`` and ``encode_documents`` (one module twice
    #: unless a retrieval model has separate towers): what ``encoderkit explain INDEX`` differentiates.
    query_tower: Any = None
    document_tower: Any = None


def weights_sha256(files: list[Path]) -> str:
    """One SHA-256 over the weight files, in order (their bytes, not their names)."""
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _is_encoderkit_model(path: Path) -> bool:
    from encoderkit.embed import _is_encoderkit_model as check

    return check(path)


def open_encoder(path: str | Path, pooling: str | None = None, normalize: bool | None = None,
                 max_length: int | None = None, batch_size: int = 64) -> IndexEncoder:
    """An ``IndexEncoder`` for any model folder (see the module docstring).

    Args:
        path: an encoderkit model directory or a local checkpoint folder.
        pooling, normalize, max_length: checkpoint folders only (see ``checkpoint_text_encoder``).
        batch_size: texts per forward pass.
    """
    from encoderkit.checkpoint_folder import check_checkpoint_dir, resolve_checkpoint_path
    from encoderkit.embed import SentenceEmbedder, load_embedder

    text = str(path)
    local = resolve_checkpoint_path(text)
    if _is_encoderkit_model(local):
        if pooling is not None or normalize is not None or max_length is not None:
            raise ModelDirectoryError(f"{path} is a trained encoderkit model: its pooling and max_length are fixed")
        from encoderkit.model_dir import load_model

        loaded = load_model(local)
        files = [local / "model.safetensors"]
        if loaded.task == "retrieve":
            queries = lambda texts, progress=None: loaded.encode_queries(texts, batch_size)  # noqa: E731
            documents = lambda texts, progress=None: loaded.encode_documents(texts, batch_size, progress)  # noqa: E731
            encoder, kind = loaded.model.text_encoder, "encoderkit retrieval model"
            towers = (loaded.model.text_encoder, loaded.model.document_tower)
        else:
            embedder = SentenceEmbedder(loaded.model.text_encoder)
            queries = documents = lambda texts, progress=None: embedder.encode_ids(  # noqa: E731
                embedder.tokenizer.encode_batch(list(texts)), batch_size, progress)
            encoder, kind = loaded.model.text_encoder, f"encoderkit {loaded.task} model"
            towers = (encoder, encoder)
        model_path = local.resolve()
    else:
        model_dir = check_checkpoint_dir(text)
        embedder = load_embedder(text, pooling=pooling, normalize=normalize, max_length=max_length)
        queries = documents = lambda texts, progress=None: embedder.encode_ids(  # noqa: E731
            embedder.tokenizer.encode_batch(list(texts)), batch_size, progress)
        index_file = model_dir / "model.safetensors.index.json"
        if index_file.is_file():
            import json

            files = [model_dir / name for name in sorted(set(json.loads(index_file.read_text())["weight_map"].values()))]
        else:
            files = [model_dir / "model.safetensors"]
        encoder, kind = embedder.text_encoder, "checkpoint"
        towers = (encoder, encoder)
        model_path = text if text.startswith("package:") else str(local.resolve())
    settings = {"pooling": encoder.pooler.kind, "normalize": bool(encoder.normalize),
                "max_length": int(encoder.tokenizer.max_length)}
    return IndexEncoder(queries, documents, int(encoder.output_dim),
                        {"path": str(model_path), "kind": kind, "sha256": weights_sha256(files)}, settings, *towers)

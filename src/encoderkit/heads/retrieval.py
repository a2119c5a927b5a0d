"""The bi-encoder: queries and documents embedded apart, compared by a dot product.

    query    --text_encoder-->     (B,H) --normalize--> q
    document --document_encoder--> (D,H) --normalize--> d        score(q, d) = q . d   (cosine when normalized)

With ``towers="shared"`` one ``TextEncoder`` embeds both (the usual choice: half the parameters,
and queries and documents land in one space); ``"separate"`` gives documents their own copy of it,
starting from the same weights, for when queries and documents read very differently.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import torch
from torch import nn


class BiEncoder(nn.Module):
    """``encode_queries(ids, mask) -> (B,H)`` and ``encode_documents(ids, mask) -> (D,H)``.

    ``text_encoder`` is the query tower (and the only one when shared). With ``normalize`` the
    towers L2-normalise their output, so the dot product is the cosine.
    """

    def __init__(self, text_encoder: nn.Module, towers: str = "shared", normalize: bool = True):
        super().__init__()
        if towers not in ("shared", "separate"):
            raise ValueError(f"towers must be 'shared' or 'separate', not {towers!r}")
        if normalize:
            # The text encoder normalises its own output, so anything that uses ``model.text_encoder``
            # alone (``encoderkit embed``, an index, an export) gets the vectors the model was trained on.
            text_encoder.normalize = True
        self.text_encoder = text_encoder
        self.towers = towers
        self.normalize = bool(text_encoder.normalize)
        if towers == "separate":
            # The tokenizer is not a module: both towers keep the one tokenizer object.
            self.document_encoder = copy.deepcopy(text_encoder, memo={id(text_encoder.tokenizer): text_encoder.tokenizer})

    @property
    def document_tower(self) -> nn.Module:
        return self.document_encoder if self.towers == "separate" else self.text_encoder

    @property
    def output_dim(self) -> int:
        return self.text_encoder.output_dim

    def encode_queries(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(ids, mask)

    def encode_documents(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.document_tower(ids, mask)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, document_ids: torch.Tensor | None = None,
                document_mask: torch.Tensor | None = None):
        """Query embeddings (what ``run_in_length_order`` and exports call); given documents too, the
        pair ``(queries, documents)``: training calls it so, since a DDP-wrapped model only
        synchronises gradients of what goes through its ``forward``."""
        queries = self.encode_queries(ids, mask)
        if document_ids is None:
            return queries
        return queries, self.encode_documents(document_ids, document_mask)


class Hits(NamedTuple):
    """Search results: for each query, document ids, scores and texts, best first.

    ``ids, scores, texts = index.search(["q1", "q2"], k=3)`` gives ``ids[0]`` (the 3 ids for "q1"),
    ``scores`` a (Q,k) float32 array, ``texts[0]`` the 3 texts; for a single ``str`` query, just
    that query's row of each.
    """

    ids: list
    scores: np.ndarray
    texts: list

    def first(self) -> "Hits":
        """The first query's row of each field (what a single ``str`` query gets)."""
        return Hits(self.ids[0], self.scores[0], self.texts[0])


def top_k(queries: np.ndarray, documents: np.ndarray, k: int, chunk_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact search by dot product: the ``k`` best documents of each query, best first.

    Args:
        queries: (Q,H) float32.
        documents: (D,H) float32.
        k: results per query (at most D).
        chunk_size: queries scored at once, bounding memory to ``chunk_size * D`` scores.

    Returns:
        ids (Q,k) int64 document positions and scores (Q,k) float32.
    """
    k = min(k, documents.shape[0])
    ids = np.empty((queries.shape[0], k), dtype=np.int64)
    scores = np.empty((queries.shape[0], k), dtype=np.float32)
    for start in range(0, queries.shape[0], chunk_size):
        block = queries[start : start + chunk_size] @ documents.T  # (q, D)
        part = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < block.shape[1] else \
            np.tile(np.arange(block.shape[1]), (block.shape[0], 1))
        part_scores = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        ids[start : start + chunk_size] = np.take_along_axis(part, order, axis=1)
        scores[start : start + chunk_size] = np.take_along_axis(part_scores, order, axis=1)
    return ids, scores

"""The bi-encoder: queries and documents embedded apart, compared by a dot product.

    query    --text_encoder-->     (B,H) --normalize--> q
    document --document_encoder--> (D,H) --normalize--> d        score(q, d) = q . d   (cosine when normalized)

With ``towers="shared"`` one ``TextEncoder`` embeds both (the usual choice: half the parameters,
and queries and documents land in one space); ``"separate"`` gives documents their own copy of it,
starting from the same weights, for when queries and documents read very differently.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

# Re-exported: the numpy-only search helpers live in encoderkit.outputs (torch-free, for ONNX predictors).
from encoderkit.outputs import Hits, top_k  # noqa: F401


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


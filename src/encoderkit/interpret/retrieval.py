"""Why did this document match this query? The contribution of each word of both sides to the score.

A bi-encoder scores a pair by the dot product of two vectors (the cosine when it normalises)::

    s(q, d) = E_q(q) . E_d(d)

One side is explained at a time with the other side's vector held fixed, so each side is a function
of its own tokens only and every method of ``attribution.py`` applies unchanged (a ``Probe`` whose
score is that dot product)::

    f_query(x)    = E_q(x) . v_d          v_d = E_d(document), fixed
    f_document(x) = E_d(x) . v_q          v_q = E_q(query), fixed

- ``ig``: integrated gradients on the input embeddings; a side's scores add up to
  ``s(q, d) - s(baseline, other side)`` (the baseline: every word replaced by padding) up to captum's
  convergence delta.
- ``grad-input`` and ``occlusion`` (the drop of ``s`` when a word is deleted) as for classification.
- ``decomposition`` (mean pooling only): exact, no approximation. With ``H_t`` the final state of token
  ``t`` of ``n`` tokens, ``p = (1/n) sum_t H_t`` and ``z = |p|`` when the model normalises (1 otherwise)::

      s = (p / z) . v = sum_t (H_t . v) / (n z)

  so token ``t`` contributes ``(H_t . v) / (n z)`` and the contributions sum to ``s`` exactly (special
  tokens' terms are reported apart). It scores the final, contextual state of each token: for a
  bag-of-words encoder that is the word itself; for a Transformer, the word in its context.

    model = encoderkit.load("runs/retrieve/model")
    why = model.explain("who painted the mona lisa", "Leonardo painted the Mona Lisa.")
    why.query.units, why.query.scores, why.document.units, why.document.scores, why.score
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from encoderkit.errors import ConfigError, DataError
from encoderkit.interpret.attribution import (Probe, check_options, explaining, gradient_x_input,
                                              input_embeddings, integrated_gradients, occlusion, score_id_lists,
                                              unit_scores)
from encoderkit.interpret.explanation import Segment
from encoderkit.interpret.tokens import EncodedText, encode_units

#: Every method of the similarity explainer, in the order they are listed to users.
SIMILARITY_METHODS = ("ig", "grad-input", "occlusion", "decomposition")
#: Integrated gradients: it applies to every encoder family, and its scores add up to the score's change.
DEFAULT_SIMILARITY_METHOD = "ig"
SIDES = ("query", "document")


@dataclass
class Towers:
    """The two ``TextEncoder`` modules of a bi-encoder (one module twice when shared) and its scoring."""

    query: nn.Module
    document: nn.Module
    #: Vectors are L2-normalised before the dot product (the score is the cosine).
    normalize: bool

    @property
    def tokenizer(self):
        return self.query.tokenizer

    def tower(self, side: str) -> nn.Module:
        return self.query if side == "query" else self.document

    def vectors(self, side: str, ids: Tensor, mask: Tensor) -> Tensor:
        """(B,T) ids of one side -> (B,H) the vectors its score is the dot product of."""
        vectors = self.tower(side)(ids, mask)
        return F.normalize(vectors, dim=-1) if self.normalize else vectors


def towers_of(source) -> Towers:
    """The towers of a loaded retrieval model (``encoderkit.load``) or an index (``encoderkit.load_index``)."""
    if getattr(source, "task", None) == "retrieve":
        return Towers(source.model.text_encoder, source.model.document_tower, bool(source.normalize))
    encoder = getattr(source, "encoder", None)
    if encoder is None or getattr(encoder, "query_tower", None) is None:
        raise ConfigError("this index has no dense part (BM25 only) and so no encoder to explain; explain "
                          "the model instead: encoderkit explain MODEL --query Q --document D")
    return Towers(encoder.query_tower, encoder.document_tower, bool(source.manifest["dense"]["normalize"]))


@dataclass
class SideExplanation:
    """The words of one side and their contributions to the score."""

    text: str
    units: list[str]
    scores: np.ndarray
    encoded: EncodedText = field(repr=False)
    #: ig: the score with this side's words replaced by padding (the other side unchanged).
    baseline_score: float | None = None
    #: ig: ``sum(scores) - (score - baseline_score)``, the convergence error.
    delta: float | None = None
    #: decomposition: the special tokens' share of the score (no unit holds them).
    special: float | None = None


@dataclass
class SimilarityExplanation:
    """Why ``document`` scored ``score`` for ``query``: a ``SideExplanation`` for each."""

    method: str
    score: float
    #: ``cosine`` or ``dot product``.
    similarity: str
    query: SideExplanation
    document: SideExplanation

    @property
    def text(self) -> str:
        return self.query.text

    def facts(self) -> dict[str, str]:
        facts = {"score": f"{self.similarity} {self.score:.4f}", "method": self.method}
        for side in SIDES:
            part = getattr(self, side)
            if part.delta is not None:
                facts[f"{side} (ig)"] = (f"scores sum to {float(np.sum(part.scores)):+.4f} = score - score with the "
                                         f"{side} blanked {self.score - part.baseline_score:+.4f} (delta {part.delta:+.1e})")
            if part.special is not None:
                facts[f"{side} special tokens"] = f"{part.special:+.4f}"
        if self.query.encoded.truncated or self.document.encoded.truncated:
            facts["note"] = "a text is longer than the model reads; its first window is explained"
        return facts

    def segments(self) -> list[Segment]:
        return [Segment(side, getattr(self, side).units, getattr(self, side).scores,
                        getattr(self, side).encoded.separators()) for side in SIDES]

    def to_dict(self) -> dict:
        """JSON-ready: score, method, and each side's units with scores."""
        record: dict = {"method": self.method, "score": self.score, "similarity": self.similarity}
        for side in SIDES:
            part = getattr(self, side)
            record[side] = {"text": part.text, "units": [{"text": u, "score": float(s)}
                                                        for u, s in zip(part.units, part.scores)]}
            for name in ("baseline_score", "delta", "special"):
                if getattr(part, name) is not None:
                    record[side][name] = getattr(part, name)
        return record


def similarity_probe(towers: Towers, side: str, other: Tensor) -> Probe:
    """``f(x) = vectors(side, x) . other``: the score as a function of one side's token ids."""
    tower = towers.tower(side)

    def dot(ids: Tensor, mask: Tensor, target: Tensor) -> Tensor:
        return (towers.vectors(side, ids, mask) * other.to(ids.device)).sum(-1)

    return Probe(score=dot, embedding=input_embeddings(tower), model=tower, pad_id=towers.tokenizer.pad_id)


def check_similarity_method(towers: Towers, method: str) -> None:
    if method not in SIMILARITY_METHODS:
        raise ConfigError(f"unknown method {method!r} for a retrieval model; methods: {', '.join(SIMILARITY_METHODS)}")
    if method == "decomposition":
        poolings = {towers.query.pooler.kind, towers.document.pooler.kind}
        if poolings != {"mean"} or getattr(towers.query, "chunk_length", None):
            raise ConfigError(f"the decomposition is exact for mean pooling only (this model pools with "
                              f"{', '.join(sorted(poolings))}); methods for it: ig, grad-input, occlusion")


def device_of(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def side_vector(towers: Towers, side: str, text: EncodedText) -> Tensor:
    """The (H,) vector of one side's text, in eval mode."""
    tower = towers.tower(side)
    with explaining(tower):
        ids = torch.tensor([list(text.ids)], device=device_of(tower))
        return towers.vectors(side, ids, torch.ones_like(ids, dtype=torch.bool))[0]


def decomposition(towers: Towers, side: str, text: EncodedText, other: Tensor) -> tuple[np.ndarray, float]:
    """Each unit's exact share ``(H_t . v) / (n z)`` of the score, and the special tokens' share."""
    tower = towers.tower(side)
    ids = torch.tensor([list(text.ids)], device=device_of(tower))
    mask = torch.ones_like(ids, dtype=torch.bool)
    with torch.no_grad(), explaining(tower):
        states = tower.token_states(ids, mask)[0].double()  # (T,H)
        pooled = states.mean(dim=0)
        scale = float(pooled.norm()) if towers.normalize else 1.0
        terms = (states @ other.to(states).flatten()) / (states.shape[0] * scale)  # (T,)
    terms = terms.cpu().numpy()
    units = unit_scores(text, terms)
    inside = {position for pieces in text.pieces for position in pieces}
    special = float(sum(terms[p] for p in range(len(terms)) if p not in inside))
    return units, special


def explain_similarity(source, query: str, document: str, method: str | None = None, *, level: str = "word",
                       steps: int = 50, batch_size: int = 32) -> SimilarityExplanation:
    """Token contributions of ``query`` and ``document`` to their score (see the module docstring).

    Args:
        source: a loaded retrieval model (``encoderkit.load``) or an index (``encoderkit.load_index``).
        query, document: one text each.
        method: ``ig`` (default), ``grad-input``, ``occlusion`` or ``decomposition`` (mean pooling).
        level: ``word`` (subword pieces summed into words) or ``token``.
        steps: integration steps of ``ig``.
    """
    from encoderkit.texts import as_text_list

    towers = towers_of(source)
    method = method or DEFAULT_SIMILARITY_METHOD
    check_similarity_method(towers, method)
    check_options(level, steps)
    for name, text in (("query", query), ("document", document)):
        if not isinstance(text, str):
            raise DataError(f"the {name} must be one text (a str), not {type(text).__name__}")
        as_text_list([text], where=[f"the {name}"])
    encoded = {"query": encode_units(towers.tokenizer, query, level),
               "document": encode_units(towers.tokenizer, document, level)}
    vectors = {side: side_vector(towers, side, encoded[side]) for side in SIDES}
    score = float((vectors["query"] * vectors["document"]).sum())
    sides = {}
    for side in SIDES:
        other = vectors["document" if side == "query" else "query"].detach()
        sides[side] = explain_side(towers, side, encoded[side], other, method, steps, batch_size)
    return SimilarityExplanation(method, score, "cosine" if towers.normalize else "dot product",
                                 sides["query"], sides["document"])


def explain_side(towers: Towers, side: str, text: EncodedText, other: Tensor, method: str, steps: int,
                 batch_size: int) -> SideExplanation:
    """One side's unit scores by ``method``, the other side's vector ``other`` held fixed."""
    part = SideExplanation(text.text, list(text.units), np.zeros(len(text.units)), text)
    if method == "decomposition":
        part.scores, part.special = decomposition(towers, side, text, other)
        return part
    probe = similarity_probe(towers, side, other)
    if method == "occlusion":
        part.scores = occlusion(probe, [text], [0], batch_size)[0]
    elif method == "grad-input":
        part.scores = unit_scores(text, gradient_x_input(probe, [text], [0], batch_size)[0])
    else:
        positions, deltas = integrated_gradients(probe, [text], [0], steps)
        part.scores = unit_scores(text, positions[0])
        part.delta = float(deltas[0])
        part.baseline_score = float(score_id_lists(probe, [text.baseline(probe.pad_id)], [0], batch_size)[0])
    return part

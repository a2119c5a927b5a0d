"""Token attributions for any differentiable score of a text: integrated gradients, gradient x input, occlusion.

Nothing here knows about classification. A ``Probe`` says what is explained: a score per row of a
batch of token ids (the probability of a label, later the cosine of a query with a document) and
the layer whose output is the input embeddings. Every method returns one score per token position::

    integrated gradients   a_t = sum_e (x_te - x'_te) * mean_{alpha} d f(x' + alpha (x - x')) / d x_te
                           (captum's LayerIntegratedGradients on the embedding layer; x' = the
                           embeddings of the baseline ids: padding at every non-special position)
    gradient x input       a_t = sum_e x_te * d f(x) / d x_te
    occlusion              a_u = f(x) - f(x without unit u)   (the unit's tokens deleted, not masked)

Completeness: integrated gradients' scores add up to ``f(x) - f(x')`` up to the convergence delta
captum reports. Texts are batched by length, and the interpolation steps of integrated gradients go
through the model in chunks of at most ``TOKENS_PER_PASS`` tokens, so a long text never holds all
its steps in memory at once (captum#245).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from encoderkit.data.batching import pad_batch
from encoderkit.errors import ConfigError, EncoderkitError
from encoderkit.interpret.tokens import LEVELS, EncodedText

#: Tokens per forward pass of integrated gradients (steps x text length), a memory bound.
TOKENS_PER_PASS = 2048


@dataclass
class Probe:
    """What an attribution method explains.

    Attributes:
        score: ``(ids (B,T) long, mask (B,T) bool, target (B,) long) -> (B,)`` the explained score of
            each row; ``target`` says which output (a label index) for each row.
        embedding: the module whose output (B,T,E) are the input embeddings the methods attribute to.
        model: the module whose parameters ``explaining`` freezes and whose mode it sets to eval.
        pad_id: the padding id (the baseline of integrated gradients, and the padding of batches).
    """

    score: Callable[[Tensor, Tensor, Tensor], Tensor]
    embedding: nn.Module
    model: nn.Module
    pad_id: int

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are (batches are built there)."""
        parameter = next(self.model.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def batch(self, id_lists: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        """(B,T) ids right-padded with ``pad_id`` and the (B,T) mask, on the model's device."""
        ids, mask = pad_batch([list(ids) for ids in id_lists], self.pad_id)
        return ids.to(self.device), mask.to(self.device)

    def targets(self, values: Sequence[int]) -> Tensor:
        return torch.tensor(list(values), device=self.device)


def check_options(level: str, steps: int) -> None:
    """The options every explainer shares: the unit level and the integration steps, one line each."""
    if level not in LEVELS:
        raise ConfigError(f"unknown level {level!r}; valid levels: {', '.join(LEVELS)}")
    if steps < 1:
        raise ConfigError(f"steps must be 1 or more, got {steps}")


def input_embeddings(text_encoder) -> nn.Module:
    """The module whose output are a ``TextEncoder``'s input embeddings (what attributions are taken on)."""
    if text_encoder.embedding is not None:
        return text_encoder.embedding.weight_table
    # a pretrained encoder embeds its own ids: its word embeddings (before positions are added)
    return text_encoder.encoder.model.get_input_embeddings()


@contextlib.contextmanager
def explaining(module: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients for the duration (gradients flow to the inputs only, which
    halves the backward pass); frozen pretrained encoders let gradients through. All restored after."""
    was_training = module.training
    requires = {name: p.requires_grad for name, p in module.named_parameters()}
    frozen = [m for m in module.modules() if getattr(m, "freeze", False) is True]
    module.eval()
    module.requires_grad_(False)
    for encoder in frozen:
        encoder.freeze = False  # its forward would otherwise run under no_grad and give zero gradients
    try:
        yield
    finally:
        for encoder in frozen:
            encoder.freeze = True
        for name, parameter in module.named_parameters():
            parameter.requires_grad_(requires[name])
        module.train(was_training)


def length_groups(texts: Sequence[EncodedText], rows_per_group: int) -> list[list[int]]:
    """Indices of ``texts`` in groups of similar length (so batches pad little), longest first."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i].ids))
    return [order[start:start + rows_per_group] for start in range(0, len(order), rows_per_group)]


def token_budget_groups(texts: Sequence[EncodedText], steps: int) -> list[list[int]]:
    """Texts of similar length grouped so that one group's interpolation steps hold about
    ``TOKENS_PER_PASS`` tokens (at least one text per group), longest first."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i].ids))
    groups: list[list[int]] = []
    for index in order:
        if groups and (len(groups[-1]) + 1) * steps * len(texts[groups[-1][0]].ids) <= TOKENS_PER_PASS:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def integrated_gradients(probe: Probe, texts: Sequence[EncodedText], targets: Sequence[int],
                         steps: int = 50) -> tuple[list[np.ndarray], np.ndarray]:
    """Integrated gradients (captum ``LayerIntegratedGradients``, Gauss-Legendre steps) per token position.

    Returns:
        ``(scores, deltas)``: for each text a (T,) array over its ids; the convergence delta of each
        text, ``sum(scores) - (f(x) - f(x'))``.
    """
    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError:
        raise EncoderkitError("integrated gradients need captum: pip install 'encoderkit[interpret]' "
                              "(or choose --method grad-input or occlusion)") from None
    method = LayerIntegratedGradients(probe.score, probe.embedding)
    scores: list[np.ndarray | None] = [None] * len(texts)
    deltas = np.zeros(len(texts))
    with explaining(probe.model):
        for group in token_budget_groups(texts, steps):
            chosen = [texts[i] for i in group]
            ids, mask = probe.batch([text.ids for text in chosen])
            baselines, _ = probe.batch([text.baseline(probe.pad_id) for text in chosen])  # units -> padding
            target = probe.targets(targets[i] for i in group)
            attributions, delta = method.attribute(
                ids, baselines=baselines, additional_forward_args=(mask, target),
                n_steps=steps, internal_batch_size=max(1, TOKENS_PER_PASS // ids.shape[1]),
                return_convergence_delta=True)
            summed = attributions.sum(-1).detach().cpu()  # (B,T,E) -> (B,T)
            for row, index in enumerate(group):
                scores[index] = summed[row, :len(texts[index].ids)].numpy().astype(np.float64)
                deltas[index] = float(delta[row])
    return scores, deltas


def gradient_x_input(probe: Probe, texts: Sequence[EncodedText], targets: Sequence[int],
                     batch_size: int = 32) -> list[np.ndarray]:
    """``sum_e x_te * d f / d x_te`` per token position, one forward and backward pass per batch."""
    scores: list[np.ndarray | None] = [None] * len(texts)
    captured: list[Tensor] = []

    def as_leaf(module, inputs, output):
        # Parameters are frozen while explaining, so the embeddings would carry no gradient: make
        # them a leaf that does, and read its gradient after the backward pass.
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf

    with explaining(probe.model):
        handle = probe.embedding.register_forward_hook(as_leaf)
        try:
            for group in length_groups(texts, batch_size):
                captured.clear()
                ids, mask = probe.batch([texts[i].ids for i in group])
                with torch.enable_grad():
                    probe.score(ids, mask, probe.targets(targets[i] for i in group)).sum().backward()
                embedded = captured[0]
                values = (embedded.grad * embedded).sum(-1).detach().cpu()  # (B,T,E) -> (B,T)
                for row, index in enumerate(group):
                    scores[index] = values[row, :len(texts[index].ids)].numpy().astype(np.float64)
        finally:
            handle.remove()
    return scores


def occlusion(probe: Probe, texts: Sequence[EncodedText], targets: Sequence[int],
              batch_size: int = 64) -> list[np.ndarray]:
    """``f(x) - f(x without unit u)`` for every unit (all pieces of a word deleted at once).

    Returns:
        For each text a (U,) array over its units (not over token positions).
    """
    variants: list[list[int]] = []
    owners: list[tuple[int, int]] = []  # (text index, unit index or -1 for the full text)
    for index, text in enumerate(texts):
        variants.append(list(text.ids))
        owners.append((index, -1))
        for unit in range(len(text.units)):
            variants.append(text.without({unit}) or [probe.pad_id])
            owners.append((index, unit))
    values = score_id_lists(probe, variants, [targets[i] for i, _ in owners], batch_size)
    full = {index: value for (index, unit), value in zip(owners, values) if unit < 0}
    scores = [np.zeros(len(text.units)) for text in texts]
    for (index, unit), value in zip(owners, values):
        if unit >= 0:
            scores[index][unit] = full[index] - value
    return scores


@torch.no_grad()
def score_id_lists(probe: Probe, id_lists: Sequence[Sequence[int]], targets: Sequence[int],
                   batch_size: int = 64) -> np.ndarray:
    """The probe's score for each id list (no gradients), batched by length; in input order."""
    out = np.empty(len(id_lists))
    order = sorted(range(len(id_lists)), key=lambda i: -len(id_lists[i]))
    was_training = probe.model.training
    probe.model.eval()
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            ids, mask = probe.batch([id_lists[i] for i in rows])
            out[rows] = probe.score(ids, mask, probe.targets(targets[i] for i in rows)).double().cpu().numpy()
    finally:
        probe.model.train(was_training)
    return out


def unit_scores(text: EncodedText, position_scores: np.ndarray) -> np.ndarray:
    """Scores per token position -> scores per unit (the pieces of a word summed)."""
    return np.array([float(position_scores[list(pieces)].sum()) for pieces in text.pieces])

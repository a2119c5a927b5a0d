"""Losses live outside models: models return logits, these turn them into a scalar.

- multi-class: cross-entropy with optional label smoothing ``eps`` and class weights ``w_c``:
  ``L = -sum_c w_y q_c log softmax(z)_c`` with ``q = (1 - eps) onehot(y) + eps / C``;
- multi-label: binary cross-entropy on sigmoid outputs, one independent decision per label;
- distillation: a teacher's logits as soft targets (``DistillationLoss``), with the gold labels'
  cross-entropy on the examples that have them;
- retrieval: in-batch negatives (``contrastive_loss``), and the same loss cached chunk by chunk
  (``CachedContrastiveLoss``) so a large batch fits in the memory of a small one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from sklearn.utils.class_weight import compute_class_weight

from encoderkit.config import LossConfig
from encoderkit.errors import ConfigError


def class_weight_vector(config: LossConfig, labels: Sequence[str], train_targets: Sequence[int]) -> torch.Tensor | None:
    """Class weights in label order: None, "balanced" (n / (C * n_c), as scikit-learn) or a mapping."""
    if config.class_weights is None:
        return None
    if config.class_weights == "balanced":
        present = np.unique(train_targets)
        weights = np.ones(len(labels), dtype=np.float64)
        weights[present] = compute_class_weight("balanced", classes=present, y=np.asarray(train_targets))
        return torch.tensor(weights, dtype=torch.float32)
    unknown = sorted(set(config.class_weights) - set(labels))
    if unknown:
        raise ConfigError(f"loss.class_weights names unknown labels {unknown}; labels are: {', '.join(labels)}")
    return torch.tensor([config.class_weights.get(label, 1.0) for label in labels], dtype=torch.float32)


def classification_loss(config: LossConfig, multi_label: bool, weights: torch.Tensor | None) -> nn.Module:
    """The loss module for a classification run."""
    if multi_label:
        # For multi-label data a class weight scales the positive term of that label.
        return nn.BCEWithLogitsLoss(pos_weight=weights)
    return nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)


# -- distillation: a teacher's outputs as targets ----------------------------------------------


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, kind: str,
                     temperature: float | None, multi_label: bool) -> torch.Tensor:
    """The teacher's term for each example, (B,) from (B, C) student and teacher logits.

    kl, one label per text (Hinton et al. 2015)::

        p = softmax(z_t / T), q = softmax(z_s / T)
        l = T^2 * KL(p || q) = T^2 * sum_c p_c (log p_c - log q_c)

    The gradient of KL(p || q) w.r.t. z_s is (q - p) / T, so T^2 keeps its scale as T changes.
    kl, multi-label: each label is its own two-class distribution, p_c = sigmoid(z_t,c / T)::

        l = T^2 * mean_c [ p_c log(p_c / q_c) + (1 - p_c) log((1 - p_c) / (1 - q_c)) ]

    mse on logits (Tang et al. 2019): ``l = mean_c (z_s,c - z_t,c)^2`` (no temperature).
    """
    if kind == "mse":
        return ((student_logits - teacher_logits) ** 2).mean(dim=-1)
    if kind != "kl":
        raise ConfigError(f"unknown distillation kind {kind!r}; valid kinds: kl, mse")
    t = float(temperature)
    zs, zt = student_logits / t, teacher_logits / t
    if multi_label:
        p = torch.sigmoid(zt)
        kl = p * (F.logsigmoid(zt) - F.logsigmoid(zs)) + (1 - p) * (F.logsigmoid(-zt) - F.logsigmoid(-zs))
        return t * t * kl.mean(dim=-1)
    log_p, log_q = F.log_softmax(zt, dim=-1), F.log_softmax(zs, dim=-1)
    return t * t * (log_p.exp() * (log_p - log_q)).sum(dim=-1)


class DistillationLoss:
    """The student's loss on a batch mixing labelled and unlabelled (or augmented) texts::

        L = 1/B sum_i [ alpha * l_soft(z_s,i, z_t,i) + (1 - alpha) * [i labelled] * CE(z_s,i, y_i) ]

    ``hard`` is the run's own classification loss (label smoothing, class weights, BCE for
    multi-label); its mean over the labelled rows is scaled by (labelled rows / B), so with every
    row labelled ``alpha = 0`` is exactly plain training and ``alpha = 1`` ignores the gold labels.
    """

    def __init__(self, hard: nn.Module, *, alpha: float, kind: str, temperature: float | None, multi_label: bool):
        self.hard = hard
        self.alpha = alpha
        self.kind = kind
        self.temperature = temperature
        self.multi_label = multi_label

    def __call__(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                 labelled: torch.Tensor) -> torch.Tensor:
        """Args:
            student_logits, teacher_logits: (B, C).
            targets: (B,) class ids or (B, C) 0/1 floats; rows that are not labelled are ignored.
            labelled: (B,) bool, which rows have gold labels.
        """
        soft = soft_target_loss(student_logits, teacher_logits.to(student_logits.dtype), kind=self.kind,
                                temperature=self.temperature, multi_label=self.multi_label).mean()
        loss = self.alpha * soft
        count = int(labelled.sum())
        if self.alpha < 1.0 and count:
            hard = self.hard(student_logits[labelled], targets[labelled])
            loss = loss + (1.0 - self.alpha) * hard * (count / labelled.numel())
        return loss


# -- retrieval: in-batch negatives -------------------------------------------------------------


def contrastive_loss(queries: torch.Tensor, documents: torch.Tensor, scale: float = 20.0,
                     symmetric: bool = False) -> torch.Tensor:
    """Multiple-negatives ranking loss (InfoNCE with in-batch negatives).

    Query ``i``'s positive is document ``i``; every other document of the batch (the other
    queries' positives, then any hard negatives) is a negative::

        s_ij = scale * cos(q_i, d_j)                         (B, D) with D >= B
        L    = -1/B sum_i log( exp(s_ii) / sum_j exp(s_ij) )
        symmetric: (L + L') / 2 with L' ranking the B queries for each positive d_i.

    Args:
        queries: (B, H) query embeddings.
        documents: (D, H) document embeddings, the B positives first.
        scale: multiplies the cosines (1 / temperature).
        symmetric: add the document-to-query direction.
    """
    scores = scale * (F.normalize(queries, dim=-1) @ F.normalize(documents, dim=-1).T)  # (B, D)
    targets = torch.arange(queries.size(0), device=queries.device)
    loss = F.cross_entropy(scores, targets)
    if symmetric:
        loss = (loss + F.cross_entropy(scores[:, : queries.size(0)].T, targets)) / 2
    return loss


class CachedContrastiveLoss:
    """``contrastive_loss`` over a large batch in the memory of a small one (GradCache, Gao et al. 2021).

    The loss needs every embedding of the batch at once, but its gradient reaches the encoder only
    through the embeddings, so the encoder's graph need never hold the whole batch::

        1. e = f(x) for each chunk of ``chunk_size`` texts, without a graph        (B, H) in memory
        2. L(e) and g = dL/de, on the cached embeddings only                       (B, H)
        3. for each chunk again, with a graph: backprop  sum(f(x_chunk) * g_chunk)
           since  dL/dtheta = sum_i (dL/de_i) (de_i/dtheta) = d/dtheta sum_i <g_i, f(x_i)>  (g held fixed)

    Step 3 runs when the returned loss is back-propagated (a hook on it), so the training loop calls
    ``loss.backward()`` as for any loss and gradient accumulation still scales it. Dropout draws the
    same masks in steps 1 and 3 (each chunk restores the random state it saw in step 1).

    Chunks hold texts of similar length, each cut to its longest text: a batch is padded to its
    longest text, and most of that padding would otherwise be encoded (and back-propagated) twice
    for nothing. Without dropout the gradients equal those of the plain loss on the whole batch.
    """

    def __init__(self, scale: float, symmetric: bool, chunk_size: int):
        self.scale = scale
        self.symmetric = symmetric
        self.chunk_size = chunk_size

    def __call__(self, encode_queries, encode_documents, queries: tuple, documents: tuple) -> torch.Tensor:
        """Args:
            encode_queries, encode_documents: ``(ids, mask) -> (n, H)`` (the two towers).
            queries, documents: ``(ids, mask)`` of the whole batch (B and D rows).
        """
        passes = [(encode_queries, queries), (encode_documents, documents)]
        plans = [_length_sorted_chunks(mask, self.chunk_size) for _, (_, mask) in passes]
        cached, states = [], []
        with torch.no_grad():
            for (encode, (ids, mask)), plan in zip(passes, plans):  # 1. embeddings chunk by chunk, no graph
                chunks, rng = [], []
                for rows, width in plan:
                    rng.append(_random_state())
                    chunks.append(encode(ids[rows, :width], mask[rows, :width]))
                back_in_order = torch.argsort(torch.cat([rows for rows, _ in plan]))
                cached.append(torch.cat(chunks)[back_in_order].requires_grad_())
                states.append(rng)
        with torch.enable_grad():  # 2. the loss and its gradient w.r.t. the cached embeddings
            loss = contrastive_loss(cached[0], cached[1], self.scale, self.symmetric)
            gradients = torch.autograd.grad(loss, cached)
        after = _random_state()

        def replay(upstream: torch.Tensor) -> None:  # 3. chunk by chunk, with a graph, seeded as in 1.
            for (encode, (ids, mask)), plan, gradient, rng in zip(passes, plans, gradients, states):
                for (rows, width), state in zip(plan, rng):
                    _set_random_state(state)
                    with torch.enable_grad():
                        embedded = encode(ids[rows, :width], mask[rows, :width])
                        surrogate = (embedded * gradient[rows]).sum() * upstream
                    surrogate.backward()
            _set_random_state(after)

        # A leaf that stands for the loss: back-propagating it (with the loop's scaling) runs the replay.
        value = loss.detach().requires_grad_()
        value.register_hook(lambda upstream: replay(upstream))
        return value


def _length_sorted_chunks(mask: torch.Tensor, chunk_size: int) -> list[tuple[torch.Tensor, int]]:
    """(rows, width) per chunk: rows of similar length, longest first; width = the chunk's last used column."""
    lengths = mask.sum(1)
    order = torch.argsort(lengths, descending=True, stable=True)
    plan = []
    for start in range(0, order.numel(), chunk_size):
        rows = order[start : start + chunk_size]
        used = mask[rows].any(0).nonzero()
        plan.append((rows, int(used.max()) + 1 if used.numel() else mask.size(1)))
    return plan


def _random_state() -> tuple:
    return torch.get_rng_state(), (torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)


def _set_random_state(state: tuple) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])

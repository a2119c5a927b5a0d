"""Blending the trained weights with the starting ones (WiSE-FT, Wortsman et al., 2022).

Fine-tuning a pretrained encoder on one domain gains there and can lose elsewhere (a caption-tuned
MiniLM answers FAQ questions worse than the untouched one). Interpolating in weight space,

    theta_alpha = alpha * theta_trained + (1 - alpha) * theta_start,     0 < alpha <= 1,

keeps much of the in-domain gain at alpha < 1 while staying nearer what the checkpoint knew. The
two endpoints share one pretrained basin, so the straight line between them is a path of good models,
not a walk through a barrier (which it would be between two random initialisations: blend only a
fine-tuned checkpoint with its own start).

``train.blend_with_start: [0.5, 0.7, 0.9]`` tries each alpha on validation after training; a blend is
kept when it scores at least as well as the trained weights (at a tie the blend, nearer the start,
wins: the same in-domain score with less drift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``model``'s state (the weights it starts training from)."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def blend(trained: dict[str, torch.Tensor], start: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """``alpha * trained + (1 - alpha) * start`` for every floating tensor; others (counters, ids) from
    ``trained``."""
    if trained.keys() != start.keys():
        missing = sorted(set(trained) ^ set(start))
        raise ValueError(f"the trained and starting weights differ in {', '.join(missing[:5])}")
    return {name: torch.lerp(start[name].to(tensor.device, tensor.dtype), tensor, alpha)
            if tensor.is_floating_point() else tensor for name, tensor in trained.items()}


@dataclass
class BlendChoice:
    """The kept alpha (1.0: the trained weights), its validation metrics, every blend's, and the trained
    weights'."""

    alpha: float
    metrics: dict[str, float]
    tried: dict[float, dict[str, float]]
    trained: dict[str, float]


def choose_blend(model: nn.Module, start: dict[str, torch.Tensor], alphas, evaluate: Callable[[nn.Module], dict],
                 metric: str, trained_metrics: dict[str, float], greater_is_better: bool = True) -> BlendChoice:
    """Evaluate each blend of ``model`` (holding the trained weights, scoring ``trained_metrics``) with
    ``start``; leave ``model`` holding the best on ``metric`` (a tie goes to the smaller alpha)."""
    trained = snapshot(model)
    device = next(iter(model.state_dict().values())).device
    best = BlendChoice(1.0, dict(trained_metrics), {}, dict(trained_metrics))
    sign = 1.0 if greater_is_better else -1.0
    was_training = model.training
    model.eval()
    for alpha in sorted(set(alphas), reverse=True):
        if alpha >= 1.0:
            continue
        model.load_state_dict({name: tensor.to(device) for name, tensor in blend(trained, start, alpha).items()})
        with torch.no_grad():
            metrics = evaluate(model)
        best.tried[alpha] = metrics
        if sign * metrics[metric] >= sign * best.metrics[metric]:
            best = BlendChoice(alpha, metrics, best.tried, best.trained)
    kept = trained if best.alpha == 1.0 else blend(trained, start, best.alpha)
    model.load_state_dict({name: tensor.to(device) for name, tensor in kept.items()})
    model.train(was_training)
    return best

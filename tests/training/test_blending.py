"""WiSE-FT blending: the interpolation itself, and the choice of alpha on validation."""

import pytest
import torch
from torch import nn

from encoderkit.training.blending import blend, choose_blend, snapshot


def test_blend_interpolates_floating_tensors_and_keeps_the_others():
    trained = {"w": torch.tensor([2.0, 4.0]), "steps": torch.tensor([7])}
    start = {"w": torch.tensor([0.0, 0.0]), "steps": torch.tensor([0])}
    mixed = blend(trained, start, 0.25)
    assert torch.equal(mixed["w"], torch.tensor([0.5, 1.0]))  # 0.25 * trained + 0.75 * start
    assert torch.equal(mixed["steps"], torch.tensor([7]))
    assert torch.equal(blend(trained, start, 1.0)["w"], trained["w"])


def test_blend_refuses_weights_of_another_model():
    with pytest.raises(ValueError, match="differ in b"):
        blend({"a": torch.zeros(1), "b": torch.zeros(1)}, {"a": torch.zeros(1)}, 0.5)


def distance_to(target: float):
    """A validation score that peaks when the weight equals ``target``."""
    return lambda model: {"score": -abs(model.weight.item() - target), "loss": abs(model.weight.item() - target)}


def one_weight(value: float) -> nn.Linear:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(value)
    return model


def test_the_best_blend_on_validation_is_kept():
    model = one_weight(0.0)
    start = snapshot(model)
    with torch.no_grad():
        model.weight.fill_(1.0)  # "trained"; validation prefers 0.6
    choice = choose_blend(model, start, [0.3, 0.6, 0.9], distance_to(0.6), "score", {"score": -0.4})
    assert choice.alpha == 0.6
    assert sorted(choice.tried) == [0.3, 0.6, 0.9]
    assert model.weight.item() == pytest.approx(0.6)
    assert choice.metrics["score"] == pytest.approx(0.0, abs=1e-6)


def test_the_trained_weights_stay_when_no_blend_is_better():
    model = one_weight(0.0)
    start = snapshot(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
    choice = choose_blend(model, start, [0.5], distance_to(1.0), "score", {"score": 0.0})
    assert choice.alpha == 1.0 and choice.metrics == {"score": 0.0}
    assert model.weight.item() == 1.0


def test_a_tie_goes_to_the_blend_and_a_loss_is_minimised():
    model = one_weight(0.0)
    start = snapshot(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
    # the metric ignores the weight: every blend ties with the trained model, the smallest alpha wins
    tie = choose_blend(model, start, [0.2, 0.8], lambda m: {"score": 1.0}, "score", {"score": 1.0})
    assert tie.alpha == 0.2 and model.weight.item() == pytest.approx(0.2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    lowest = choose_blend(model, start, [0.5, 0.7], distance_to(0.7), "loss", {"loss": 0.3}, greater_is_better=False)
    assert lowest.alpha == 0.7 and model.weight.item() == pytest.approx(0.7)


def test_a_training_model_is_left_training():
    model = one_weight(1.0)
    start = snapshot(model)
    model.train()
    choose_blend(model, start, [0.5], distance_to(1.0), "score", {"score": 0.0})
    assert model.training

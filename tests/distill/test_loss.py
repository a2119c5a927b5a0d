"""The distillation loss against hand computations (losses.soft_target_loss, losses.DistillationLoss)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from encoderkit.losses import DistillationLoss, soft_target_loss

STUDENT = torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]], dtype=torch.float64)  # float64, as the hand sums
TEACHER = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 4.0]], dtype=torch.float64)
GOLD = torch.tensor([0, 2])


def softmax(row: list[float], t: float) -> list[float]:
    exps = [math.exp(z / t) for z in row]
    return [e / sum(exps) for e in exps]


def hand_kl(student: list[float], teacher: list[float], t: float) -> float:
    p, q = softmax(teacher, t), softmax(student, t)
    return t * t * sum(pc * math.log(pc / qc) for pc, qc in zip(p, q))


@pytest.mark.parametrize("t", [1.0, 2.0, 5.0])
def test_kl_term_equals_a_hand_computation(t):
    got = soft_target_loss(STUDENT, TEACHER, kind="kl", temperature=t, multi_label=False)
    expected = [hand_kl(s.tolist(), z.tolist(), t) for s, z in zip(STUDENT, TEACHER)]
    assert got.tolist() == pytest.approx(expected, rel=1e-5)


def test_t_squared_keeps_the_gradient_scale():
    """d/dz_s [T^2 KL(p || q)] = T^2 (q - p) / T = T (q - p): the T^2 factor in front, not T^-2 inside."""
    for t in (1.0, 4.0):
        student = STUDENT.clone().requires_grad_()
        soft_target_loss(student, TEACHER, kind="kl", temperature=t, multi_label=False).sum().backward()
        p, q = torch.softmax(TEACHER / t, -1), torch.softmax(STUDENT / t, -1)
        assert torch.allclose(student.grad, t * (q - p), atol=1e-6)
    # Without the T^2 factor the term would shrink as 1/T^2: check the factor is there.
    plain = nn.functional.kl_div(torch.log_softmax(STUDENT / 4, -1), torch.softmax(TEACHER / 4, -1), reduction="none").sum(-1)
    assert torch.allclose(soft_target_loss(STUDENT, TEACHER, kind="kl", temperature=4.0, multi_label=False), 16 * plain)


def test_alpha_zero_is_plain_cross_entropy():
    for hard in (nn.CrossEntropyLoss(), nn.CrossEntropyLoss(label_smoothing=0.2)):
        loss = DistillationLoss(hard, alpha=0.0, kind="kl", temperature=2.0, multi_label=False)
        assert loss(STUDENT, TEACHER, GOLD, torch.tensor([True, True])) == pytest.approx(float(hard(STUDENT, GOLD)))


def test_alpha_mixes_the_terms_and_unlabelled_rows_get_only_the_soft_one():
    alpha, t = 0.3, 2.0
    loss = DistillationLoss(nn.CrossEntropyLoss(), alpha=alpha, kind="kl", temperature=t, multi_label=False)
    soft = [hand_kl(s.tolist(), z.tolist(), t) for s, z in zip(STUDENT, TEACHER)]
    ce = nn.functional.cross_entropy(STUDENT, GOLD, reduction="none").tolist()
    both = loss(STUDENT, TEACHER, GOLD, torch.tensor([True, True]))
    assert float(both) == pytest.approx(sum(alpha * s + (1 - alpha) * c for s, c in zip(soft, ce)) / 2, rel=1e-5)
    first_only = loss(STUDENT, TEACHER, GOLD, torch.tensor([True, False]))
    assert float(first_only) == pytest.approx((alpha * soft[0] + (1 - alpha) * ce[0] + alpha * soft[1]) / 2, rel=1e-5)
    none = loss(STUDENT, TEACHER, GOLD, torch.tensor([False, False]))
    assert float(none) == pytest.approx(alpha * sum(soft) / 2, rel=1e-5)


def test_alpha_one_ignores_the_gold_labels():
    loss = DistillationLoss(nn.CrossEntropyLoss(), alpha=1.0, kind="kl", temperature=2.0, multi_label=False)
    labelled = torch.tensor([True, True])
    assert float(loss(STUDENT, TEACHER, GOLD, labelled)) == float(loss(STUDENT, TEACHER, torch.tensor([1, 1]), labelled))


def test_mse_is_the_squared_error_on_logits():
    got = soft_target_loss(STUDENT, TEACHER, kind="mse", temperature=None, multi_label=False)
    assert got.tolist() == pytest.approx(((STUDENT - TEACHER) ** 2).mean(-1).tolist())


def test_multi_label_uses_per_label_binary_kl():
    t = 2.0
    got = soft_target_loss(STUDENT, TEACHER, kind="kl", temperature=t, multi_label=True)
    expected = []
    for s_row, z_row in zip(STUDENT.tolist(), TEACHER.tolist()):
        terms = []
        for s, z in zip(s_row, z_row):
            p, q = 1 / (1 + math.exp(-z / t)), 1 / (1 + math.exp(-s / t))
            terms.append(p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q)))
        expected.append(t * t * sum(terms) / len(terms))
    assert got.tolist() == pytest.approx(expected, rel=1e-5)
    assert soft_target_loss(TEACHER, TEACHER, kind="kl", temperature=t, multi_label=True).abs().max() < 1e-6
    gold = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    plain = DistillationLoss(nn.BCEWithLogitsLoss(), alpha=0.0, kind="kl", temperature=t, multi_label=True)
    assert float(plain(STUDENT, TEACHER, gold, torch.tensor([True, True]))) == pytest.approx(
        float(nn.BCEWithLogitsLoss()(STUDENT, gold)))

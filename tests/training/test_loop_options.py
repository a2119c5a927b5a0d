"""Options of the training loop on a model small enough to reason about: checkpoint averaging of the
last N evaluations (``train.average_last``), the inverse square-root schedule, a time budget."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from encoderkit.config import TrainConfig
from encoderkit.training import fit
from encoderkit.training.loop import AVERAGING_DIR, average_weights, keep_recent_weights, make_scheduler


class Point(nn.Module):
    """One weight w, the validation error |w - 3|. Training puts w at 3 + (-1)^e / e in epoch e (the
    loss has no gradient, so the optimizer leaves it there): each evaluation is off by 1/e, on
    alternating sides, so the mean of the last four lands far closer to 3 than any one of them."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.register_buffer("count", torch.tensor([7]))  # an integer tensor: kept, not averaged


def run_fit(tmp_path, average_last, epochs=12, **options):
    model = Point()
    loader = torch.utils.data.DataLoader([torch.zeros(1)] * 4, batch_size=1)
    seen, calls = [], [0]

    def compute_loss(module, batch):
        epoch = calls[0] // 4 + 1
        calls[0] += 1
        with torch.no_grad():
            module.w.fill_(3.0 + (-1) ** epoch / epoch)
        return (module.w * 0.0).sum()

    def evaluate(module):
        value = float(module.w)
        seen.append(value)
        return {"error": abs(value - 3.0)}

    options = {"patience": None, **options}
    config = TrainConfig(epochs=epochs, lr=0.1, schedule="constant", warmup_ratio=0.0, metric="error", progress=False,
                         weight_decay=0.0, average_last=average_last, grad_clip=None, **options)
    result = fit(model, loader, compute_loss=compute_loss, evaluate=evaluate, config=config,
                 run_dir=tmp_path / "run", greater_is_better=False)
    return model, result, seen


def test_the_average_of_the_last_evaluations_is_kept_when_it_scores_better(tmp_path):
    model, result, seen = run_fit(tmp_path, average_last=4)
    files = sorted((tmp_path / "run" / AVERAGING_DIR).glob("step-*.safetensors"))
    assert [f.name for f in files] == [f"step-{4 * e:08d}.safetensors" for e in (9, 10, 11, 12)]
    # After every evaluation from the 4th on, the mean of the last four is evaluated too.
    averaged = [record for record in result.history if record.get("averaged")]
    assert [record["step"] for record in averaged] == [4 * e for e in range(4, 13)]
    assert all(record["averaged"] == 4 for record in averaged) and len(seen) == 12 + 9
    single = [3.0 + (-1) ** e / e for e in range(1, 13)]
    mean = sum(single[8:12]) / 4
    assert seen[-1] == pytest.approx(mean, abs=1e-6)  # the last evaluation saw the averaged weights
    assert seen[4] == pytest.approx(sum(single[:4]) / 4, abs=1e-6)  # the first average: epochs 1-4
    assert abs(mean - 3.0) < 0.01 < min(abs(value - 3.0) for value in single)  # averaging wins...
    assert result.best_averaged == 4 and result.best_record is averaged[-1]
    assert float(model.w.detach()) == pytest.approx(mean, abs=1e-6)  # ...so the averaged weights are the ones loaded
    assert int(model.count) == 7


def test_an_improving_average_resets_the_patience(tmp_path):
    """Patience 1 and averages of two: from epoch 3 on each single evaluation (off by 1/e) is worse than
    the average evaluated before it (off by 1/(2e(e-1))), which alone would stop training; the average
    evaluated right after it is better again, and that improvement resets the patience."""
    _, result, seen = run_fit(tmp_path, average_last=2, epochs=12, patience=1)
    averaged = [record for record in result.history if record.get("averaged")]
    assert not result.stopped_early and result.steps == 48 and len(averaged) == 11
    assert result.best_averaged == 2 and result.best_record is averaged[-1]


def test_a_run_shorter_than_the_average_averages_what_it_kept(tmp_path):
    _, result, seen = run_fit(tmp_path, average_last=4, epochs=3)
    averaged = [record for record in result.history if record.get("averaged")]
    assert len(seen) == 4 and len(averaged) == 1 and averaged[0]["averaged"] == 3 and averaged[0]["step"] == 12
    assert seen[-1] == pytest.approx(sum(3.0 + (-1) ** e / e for e in (1, 2, 3)) / 3, abs=1e-6)


def test_without_averaging_nothing_is_kept_and_no_average_is_evaluated(tmp_path):
    _, result, seen = run_fit(tmp_path, average_last=None, epochs=3)
    assert not (tmp_path / "run" / AVERAGING_DIR).exists()
    assert len(seen) == 3 and result.best_averaged == 0
    assert result.best_record["step"] == result.best_step


def test_average_weights_is_the_elementwise_mean_and_pruning_keeps_the_latest(tmp_path):
    for step, value in ((1, 1.0), (2, 2.0), (3, 6.0)):
        save_file({"w": torch.full((2,), value), "n": torch.tensor([step])}, str(tmp_path / f"step-{step:08d}.safetensors"))
    paths = sorted(tmp_path.glob("step-*.safetensors"))
    averaged = average_weights(paths)
    assert averaged["w"].tolist() == [3.0, 3.0] and averaged["w"].dtype == torch.float32
    assert averaged["n"].tolist() == [3]
    keep_recent_weights(tmp_path, 2)
    assert [p.name for p in sorted(tmp_path.glob("step-*"))] == ["step-00000002.safetensors", "step-00000003.safetensors"]
    keep_recent_weights(tmp_path, 2, up_to_step=2)  # a resumed run at step 2 drops what came after it
    assert [p.name for p in tmp_path.glob("step-*")] == ["step-00000002.safetensors"]
    assert load_file(str(tmp_path / "step-00000002.safetensors"))["w"].tolist() == [2.0, 2.0]


def test_inverse_square_root_schedule_warms_up_then_decays():
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1.0)
    scheduler = make_scheduler(optimizer, TrainConfig(schedule="inverse_sqrt", warmup_steps=4), total_steps=100)
    rates = []
    for _ in range(16):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert rates[9] == pytest.approx(math.sqrt(4 / 9)) and rates[16 - 1] == pytest.approx(math.sqrt(4 / 15))
    optimizer = torch.optim.AdamW([parameter], lr=1.0)
    ratio = make_scheduler(optimizer, TrainConfig(schedule="linear", warmup_ratio=0.1), total_steps=100)
    for _ in range(10):
        optimizer.step()
        ratio.step()
    assert ratio.get_last_lr()[0] == pytest.approx(1.0)  # warmup_ratio 0.1 of 100 steps without warmup_steps


def test_a_time_budget_stops_at_the_first_evaluation_past_it(tmp_path):
    _, result, seen = run_fit(tmp_path, average_last=None, epochs=12, max_minutes=1e-9)
    assert len(seen) == 1 and result.out_of_time and result.steps == 4
    _, result, seen = run_fit(tmp_path / "again", average_last=None, epochs=3, max_minutes=60)
    assert len(seen) == 3 and not result.out_of_time

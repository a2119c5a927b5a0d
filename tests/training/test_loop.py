"""The training loop: best-model selection, logs, atomic checkpoints, and exact resume after a kill."""

import json

import pytest
import torch
from safetensors.torch import load_file

from support import Killed, kill_after, read_jsonl, tiny_config
from encoderkit.config import validate_config
from encoderkit.tasks.classify import train
from encoderkit.training.checkpoint import find_checkpoint
from encoderkit.training.loop import improves


def test_run_writes_logs_report_and_selects_best(trec_slice, tmp_path):
    config = validate_config(tiny_config(trec_slice, tmp_path / "run", train={
        "epochs": 3, "batch_size": 32, "lr": 0.02, "progress": False, "patience": None}))
    result = train(config, echo=lambda *_: None)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    validation = [r for r in records if r["split"] == "validation"]
    assert len(validation) == 3
    best = max(validation, key=lambda r: r["macro_f1"])
    assert result.validation_metrics["macro_f1"] == best["macro_f1"]
    assert any((tmp_path / "run" / "tensorboard").iterdir())
    report = (tmp_path / "run" / "report.md").read_text()
    assert "learning_curve.png" in report and "confusion_matrix.png" in report
    assert (tmp_path / "run" / "confusion_matrix.png").stat().st_size > 1000
    assert result.test_metrics["accuracy"] > 0.35  # 600 questions, 3 short epochs: well above chance (1/6)


@pytest.mark.parametrize("kill_step, eval_every", [(19, None), (25, None), (7, 5), (12, 5), (23, 5), (30, 4)],
                         ids=["at-epoch-end", "mid-epoch", "eval5-step7", "eval5-step12", "eval5-epoch2",
                              "eval4-step30"])
def test_killed_run_resumes_to_identical_weights(trec_slice, tmp_path, monkeypatch, kill_step, eval_every):
    """Kills before and after checkpoints, at epoch ends and inside epochs (checkpoints every
    ``eval_every`` steps): the resumed run ends with the same weights, bit for bit, and the same
    validation history as one that was never interrupted (dropout on, so random states matter)."""
    train_section = {"epochs": 2, "batch_size": 32, "lr": 0.005, "progress": False, "patience": None,
                     "eval_every": eval_every}
    straight = validate_config(tiny_config(trec_slice, tmp_path / "straight", train=train_section,
                                           classify={"head": {"dropout": 0.2}}))
    train(straight, echo=lambda *_: None)

    interrupted = validate_config(tiny_config(trec_slice, tmp_path / "resumed", train=train_section,
                                              classify={"head": {"dropout": 0.2}}))
    with monkeypatch.context() as patch:
        kill_after(patch, kill_step)  # 540 training examples / 32 = 17 batches per epoch
        with pytest.raises(Killed):
            train(interrupted, echo=lambda *_: None)
    assert find_checkpoint(tmp_path / "resumed" / "checkpoint") is not None
    train(interrupted, resume=True, echo=lambda *_: None)

    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0, msg=name)

    def logged(run):
        return [{k: v for k, v in r.items() if k != "time"} for r in read_jsonl(tmp_path / run / "metrics.jsonl")]

    assert logged("straight") == logged("resumed")


def test_early_stopping_stops_when_metric_stalls(trec_slice, tmp_path):
    config = validate_config(tiny_config(trec_slice, tmp_path / "run", train={
        "epochs": 30, "batch_size": 32, "lr": 1e-12, "progress": False, "patience": 2, "warmup_ratio": 0.0}))
    result = train(config, echo=lambda *_: None)
    assert len(result.history) == 3  # lr ~0: the first evaluation is never beaten, two more and stop


def test_a_tie_on_the_metric_goes_to_the_lower_validation_loss():
    state = {"best_metric": 1.0, "best_loss": 0.20}
    assert improves({"macro_f1": 1.0, "loss": 0.10}, state, "macro_f1")
    assert not improves({"macro_f1": 1.0, "loss": 0.30}, state, "macro_f1")
    assert not improves({"macro_f1": 0.99, "loss": 0.01}, state, "macro_f1")  # the metric comes first
    assert improves({"loss": 0.10}, {"best_metric": 0.2}, "loss", greater_is_better=False)
    assert not improves({"loss": 0.30}, {"best_metric": 0.2}, "loss", greater_is_better=False)


def test_resume_with_a_different_config_is_refused(trec_slice, tmp_path):
    from encoderkit.errors import ConfigError

    base = tiny_config(trec_slice, tmp_path / "run", train={"epochs": 1, "progress": False})
    train(validate_config(base), echo=lambda *_: None)
    changed = tiny_config(trec_slice, tmp_path / "run", train={"epochs": 1, "progress": False, "lr": 0.5})
    with pytest.raises(ConfigError, match=r"differs from its checkpoint's in train.lr \(0.001 -> 0.5\)"):
        train(validate_config(changed), resume=True, echo=lambda *_: None)


def test_fit_trains_a_regressor_selecting_the_lowest_error(trec_slice, tmp_path):
    """The loop knows nothing of classification: a text regressor (question length in words) with a
    lower-is-better validation metric keeps the evaluation with the lowest error."""
    from torch import nn

    from encoderkit.config import TrainConfig
    from encoderkit.data.batching import pad_batch
    from encoderkit.training import fit

    texts = [json.loads(line)["text"] for line in trec_slice["train"].read_text().splitlines()]
    vocab = {word: i + 1 for i, word in enumerate(sorted({w for t in texts for w in t.split()}))}
    ids = [[vocab[w] for w in t.split()] for t in texts]
    lengths = torch.tensor([float(len(x)) for x in ids])
    train_ids, valid_ids = ids[:500], ids[500:]

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(len(vocab) + 1, 8, padding_idx=0)
            self.out = nn.Linear(8, 1)

        def forward(self, batch_ids, mask):
            return self.out(self.embedding(batch_ids).sum(1)).squeeze(-1)

    def batches(rows, targets, size):
        return [(*pad_batch(rows[i:i + size], 0), targets[i:i + size]) for i in range(0, len(rows), size)]

    loader = torch.utils.data.DataLoader(batches(train_ids, lengths[:500], 25), batch_size=None, shuffle=False)
    validation = batches(valid_ids, lengths[500:], 100)

    def loss(model, batch):
        return nn.functional.mse_loss(model(batch[0], batch[1]), batch[2])

    errors = []

    def evaluate(model):
        with torch.no_grad():
            mse = float(sum(((model(i, m) - y) ** 2).sum() for i, m, y in validation) / len(valid_ids))
        errors.append(mse)
        return {"mse": mse}

    torch.manual_seed(0)
    model = Regressor()
    config = TrainConfig(epochs=6, lr=0.05, metric="mse", patience=None, progress=False, warmup_ratio=0.0)
    result = fit(model, loader, compute_loss=loss, evaluate=evaluate, config=config, run_dir=tmp_path / "run",
                 greater_is_better=False)
    assert len(errors) == 6 and errors[-1] < errors[0]  # it learned
    assert result.best_metric == min(errors)
    assert result.best_step == 20 * (errors.index(min(errors)) + 1)
    with torch.no_grad():
        assert evaluate(model)["mse"] == pytest.approx(min(errors))  # the best weights are the ones loaded

"""``train.mixed_precision``: bf16 autocast really runs in training (CPU here), the kept weights stay
float32 and the model after training computes in float32 again; fp16 without a GPU is refused."""

import pytest
import torch
from torch import nn

from encoderkit.config import TrainConfig
from encoderkit.errors import ConfigError
from encoderkit.training.loop import fit


class Recorder(nn.Module):
    """A linear regression that notes the dtype its matrix product ran in."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 1)
        self.dtypes: list[torch.dtype] = []

    def forward(self, x):
        out = self.linear(x)
        self.dtypes.append(out.dtype)
        return out


def regression_data(count: int = 96):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(count, 8, generator=generator)
    y = x @ torch.arange(1.0, 9.0) / 8
    return torch.utils.data.TensorDataset(x, y)


def train(tmp_path, precision: str) -> tuple[Recorder, object]:
    torch.manual_seed(0)
    model = Recorder()
    data = regression_data()
    loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=False)
    x, y = data.tensors

    def evaluate(module):
        with torch.no_grad():
            return {"loss": float(((module(x).squeeze(-1).float() - y) ** 2).mean())}

    config = TrainConfig(epochs=10, lr=0.1, progress=False, patience=None, metric="loss", warmup_ratio=0.0,
                         mixed_precision=precision, device="cpu")
    result = fit(model, loader, compute_loss=lambda m, batch: ((m(batch[0]).squeeze(-1).float() - batch[1]) ** 2).mean(),
                 evaluate=evaluate, config=config, run_dir=tmp_path / precision, greater_is_better=False)
    return model, result


def test_bf16_autocasts_the_training_forward_passes_and_keeps_float32_weights(tmp_path):
    model, result = train(tmp_path, "bf16")
    assert torch.bfloat16 in model.dtypes  # the training steps ran under autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())
    model.dtypes.clear()
    model(torch.randn(2, 8))
    assert model.dtypes == [torch.float32]  # the trained model is plain float32 again
    assert result.best_metric < 0.02  # and it learned the regression (mean of y^2: 0.7)


def test_no_mixed_precision_stays_float32(tmp_path):
    model, result = train(tmp_path, "no")
    assert set(model.dtypes) == {torch.float32}
    assert result.best_metric < 0.02


def test_fp16_without_a_gpu_is_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU.*use train.mixed_precision=bf16 on CPU"):
        train(tmp_path, "fp16")

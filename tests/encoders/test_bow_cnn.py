"""Padding never changes a result: a sentence alone equals the same sentence in a padded batch."""

import pytest
import torch

from encoderkit.config import BagOfEmbeddingsConfig, CNNConfig
from encoderkit.encoders import build_encoder


@pytest.mark.parametrize("config", [BagOfEmbeddingsConfig(), CNNConfig(kernel_sizes=[1, 2, 3, 4], num_filters=8)],
                         ids=["bow", "cnn"])
def test_padding_never_changes_states(config):
    torch.manual_seed(0)
    encoder = build_encoder(config, input_size=12).eval()
    short = torch.randn(1, 5, 12)
    batch = torch.randn(2, 9, 12)  # row 0: short sentence + 4 garbage padding positions
    batch[0, :5] = short[0]
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 5:] = False
    alone = encoder(short, torch.ones(1, 5, dtype=torch.bool))
    padded = encoder(batch, mask)
    assert padded.shape == (2, 9, encoder.output_dim)
    torch.testing.assert_close(padded[0, :5], alone[0], atol=1e-6, rtol=0)
    assert torch.all(padded[0, 5:] == 0)


def test_cnn_output_dim_is_filters_times_widths():
    encoder = build_encoder(CNNConfig(kernel_sizes=[3, 4, 5], num_filters=100), input_size=50)
    assert encoder.output_dim == 300

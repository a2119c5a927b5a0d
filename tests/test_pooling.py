import pytest
import torch

from encoderkit.errors import ConfigError
from encoderkit.pooling import POOLINGS, Pooler


def batch_with_padding():
    torch.manual_seed(0)
    states = torch.randn(2, 6, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    return states, mask


@pytest.mark.parametrize("kind", POOLINGS)
def test_padding_values_never_leak(kind):
    states, mask = batch_with_padding()
    pooler = Pooler(kind, 8, num_directions=2)
    first = pooler(states, mask)
    states[0, 3:] = 1e4  # garbage in the padding of row 0
    torch.testing.assert_close(pooler(states, mask), first)


def test_values():
    states, mask = batch_with_padding()
    real = states[0, :3]
    torch.testing.assert_close(Pooler("mean", 8)(states, mask)[0], real.mean(0))
    torch.testing.assert_close(Pooler("max", 8)(states, mask)[0], real.max(0).values)
    torch.testing.assert_close(Pooler("cls", 8)(states, mask)[0], real[0])
    torch.testing.assert_close(Pooler("last", 8)(states, mask)[0], real[2])


def test_last_takes_each_direction_where_it_ends():
    states, mask = batch_with_padding()
    pooled = Pooler("last", 8, num_directions=2)(states, mask)
    torch.testing.assert_close(pooled[0, :4], states[0, 2, :4])  # forward half: last real token
    torch.testing.assert_close(pooled[0, 4:], states[0, 0, 4:])  # backward half: first token


def test_attention_weights_ignore_padding_and_sum_to_one():
    states, mask = batch_with_padding()
    weights = Pooler("attention", 8).attention_weights(states, mask)
    assert torch.all(weights[0, 3:] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))


def test_unknown_pooling():
    with pytest.raises(ConfigError, match="valid poolings: last, mean, max, cls, attention"):
        Pooler("avg", 8)

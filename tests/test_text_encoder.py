"""run_in_length_order: the one batched inference loop behind predict, encode and embed."""

import numpy as np
import torch
from torch import nn

from encoderkit.text_encoder import run_in_length_order


class LengthAndMode(nn.Module):
    """(ids, mask) -> [real length, padded width, grad enabled, training] per row."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, ids, mask):
        rows = ids.size(0)
        flags = torch.tensor([float(torch.is_grad_enabled()), float(self.training)]).expand(rows, 2)
        return torch.cat([mask.sum(1, keepdim=True).float() * self.scale,
                          torch.full((rows, 1), float(ids.size(1))), flags], dim=1)


def test_batches_by_length_returns_input_order_and_builds_no_graph():
    module = LengthAndMode().train()
    id_lists = [[5] * n for n in (3, 9, 1, 9, 4, 2)]
    seen = []
    out = run_in_length_order(module, id_lists, pad_id=0, batch_size=2, output_dim=4, progress=seen.append)
    np.testing.assert_array_equal(out[:, 0], [3, 9, 1, 9, 4, 2])  # input order
    np.testing.assert_array_equal(out[:, 1], [4, 9, 2, 9, 4, 2])  # longest first: batches (9,9) (4,3) (2,1)
    assert not out[:, 2].any() and not out[:, 3].any()  # no autograd, eval mode during the run
    assert module.training  # the caller's mode comes back
    assert seen == [2, 2, 2]


def test_the_short_batch_is_the_one_padded_to_the_longest_text():
    """With a long tail of lengths, padding the remainder batch (not a full one) to the maximum saves most work."""
    id_lists = [[5] * n for n in (3, 9, 1, 8, 4)]
    seen = []
    out = run_in_length_order(LengthAndMode(), id_lists, pad_id=0, batch_size=2, output_dim=4, progress=seen.append)
    np.testing.assert_array_equal(out[:, 1], [3, 9, 3, 8, 8])  # batches (9) (8,4) (3,1)
    assert seen == [1, 2, 2]
    assert run_in_length_order(LengthAndMode(), [], pad_id=0, batch_size=2, output_dim=4).shape == (0, 4)

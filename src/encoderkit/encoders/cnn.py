"""Convolutional encoder with several filter widths (Kim 2014).

For each width k, ``num_filters`` filters slide over windows of k tokens:

    c_t^k = relu(W_k . [x_{t-k//2} ; ... ; x_{t+(k-1)//2}] + b_k)        (B,T,F) per width

and the widths are concatenated into states (B,T,F*len(kernel_sizes)). Kim's max-over-time
pooling is ``pooling: max``. Padding positions are zeroed before each convolution so a
longer neighbour in the batch can never leak into a sentence's windows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from encoderkit.config import CNNConfig
from encoderkit.encoders.base import Encoder, zero_padding


class CNNEncoder(Encoder):
    def __init__(self, input_size: int, config: CNNConfig):
        super().__init__()
        self.kernel_sizes = list(config.kernel_sizes)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(input_size, config.num_filters, kernel_size=k) for k in self.kernel_sizes
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output_dim = config.num_filters * len(self.kernel_sizes)

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = zero_padding(inputs, mask).transpose(1, 2)  # (B,E,T): Conv1d wants channels first
        # Zero-pad (k-1)//2 left and k//2 right: one output per token, so the mask lines up.
        features = [torch.relu(conv(F.pad(x, ((k - 1) // 2, k // 2))))
                    for k, conv in zip(self.kernel_sizes, self.convolutions)]  # each (B,F,T)
        states = torch.cat(features, dim=1).transpose(1, 2)  # (B,T,F*K)
        return zero_padding(self.dropout(states), mask)

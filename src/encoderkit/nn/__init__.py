"""Reference building blocks written from their equations: recurrent cells, attention, encoder layer."""

from encoderkit.nn.attention import MultiHeadSelfAttention, scaled_dot_product_attention
from encoderkit.nn.cells import elman_cell, gru_cell, lstm_cell
from encoderkit.nn.recurrent import reference_recurrence
from encoderkit.nn.transformer import TransformerEncoderLayer, copy_from_torch_layer

__all__ = [
    "MultiHeadSelfAttention",
    "TransformerEncoderLayer",
    "copy_from_torch_layer",
    "elman_cell",
    "gru_cell",
    "lstm_cell",
    "reference_recurrence",
    "scaled_dot_product_attention",
]

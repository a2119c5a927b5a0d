"""Recurrent kernels under CPU autocast run in float32 (``float32_recurrence``), and
``train.mixed_precision: auto`` picks bf16 only where the CPU has bfloat16 instructions."""

import pytest
import torch
from torch import nn

from encoderkit.config import RecurrentConfig
from encoderkit.encoders.rnn import RecurrentEncoder
from encoderkit.nn.precision import cpu_autocast_enabled, float32_recurrence
from encoderkit.training import precision


def bf16_autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.mark.parametrize("module", [nn.GRU(6, 5, batch_first=True, bidirectional=True),
                                    nn.LSTM(6, 5, batch_first=True), nn.RNN(6, 5, batch_first=True)])
def test_a_recurrent_module_under_cpu_autocast_computes_what_it_computes_in_float32(module):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 6)
    expected, _ = module(x)
    with bf16_autocast():
        assert cpu_autocast_enabled()
        got, _ = float32_recurrence(module, x.bfloat16())
        after = nn.functional.linear(got, torch.randn(2, got.shape[-1]))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, atol=2e-2, rtol=0)  # only the input was rounded to bf16
    assert after.dtype == torch.bfloat16  # the layers around it keep autocast
    assert not cpu_autocast_enabled()


def test_cells_take_states_in_any_float_dtype_and_return_float32():
    torch.manual_seed(0)
    cell = nn.LSTMCell(6, 5)
    x, h, c = torch.randn(2, 6), torch.randn(2, 5), torch.randn(2, 5)
    expected = torch.lstm_cell(x, (h, c), cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    with bf16_autocast():
        got = float32_recurrence(torch.lstm_cell, x, (h.bfloat16(), c), cell.weight_ih, cell.weight_hh,
                                 cell.bias_ih, cell.bias_hh)
    assert [part.dtype for part in got] == [torch.float32, torch.float32]
    torch.testing.assert_close(got[1], expected[1], atol=2e-2, rtol=0)


def test_a_padded_batch_through_the_recurrent_encoder_under_autocast_equals_float32():
    torch.manual_seed(0)
    encoder = RecurrentEncoder(6, RecurrentConfig(kind="gru", hidden_size=5, bidirectional=True))
    x = torch.randn(3, 4, 6)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    expected = encoder(x, mask)
    with bf16_autocast():
        got = encoder(x, mask)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)  # float32 inputs: exactly the float32 kernel


def test_gradients_flow_through_the_float32_recurrence():
    module = nn.GRU(6, 5, batch_first=True)
    x = torch.randn(2, 3, 6, requires_grad=True)
    with bf16_autocast():
        out, _ = float32_recurrence(module, x)
    out.sum().backward()
    assert x.grad is not None and module.weight_hh_l0.grad is not None


@pytest.mark.parametrize(("flags", "native"), [("fpu sse avx2 fma", False), ("avx2 avx512f avx512_bf16", True),
                                                ("avx2 amx_bf16 amx_tile", True)])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert precision.cpu_has_native_bf16(cpuinfo) is native
    assert precision.cpu_has_native_bf16(tmp_path / "missing") is False


def test_auto_is_bf16_only_on_a_cpu_with_bfloat16_instructions(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_mixed_precision("auto", on_cpu=True) == "bf16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve_mixed_precision("auto", on_cpu=True) == "no"
    assert precision.resolve_mixed_precision("no", on_cpu=True) == "no"


def test_explicit_bf16_on_a_cpu_that_emulates_it_runs_with_a_warning(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="bfloat16 is emulated.*use train.mixed_precision=auto"):
        assert precision.resolve_mixed_precision("bf16", on_cpu=True) == "bf16"


@pytest.mark.parametrize(("cell", "attention"), [("lstm", "luong_general"), ("gru", "bahdanau")])
def test_the_recurrent_decoder_trains_and_steps_under_cpu_autocast(cell, attention):
    """Both decoder paths (all positions at once, and step by step for Bahdanau and for decoding) run
    under bf16 autocast, where an LSTM kernel would otherwise fail on CPUs without bfloat16."""
    from encoderkit.config import RecurrentDecoderConfig
    from encoderkit.heads.seq2seq import RecurrentDecoder

    torch.manual_seed(0)
    config = RecurrentDecoderConfig(cell=cell, attention=attention, embedding_dim=8, hidden_size=6, num_layers=2,
                                    dropout=0.0)
    decoder = RecurrentDecoder(config, 11, 0, 10)
    memory, mask, target = torch.randn(2, 5, 10), torch.ones(2, 5, dtype=torch.bool), torch.randint(1, 11, (2, 4))
    expected = decoder(target, memory, mask)
    with bf16_autocast():
        logits = decoder(target, memory, mask)
        step_logits, _, state = decoder.step(target[:, 0], decoder.start(memory, mask))
    logits.float().sum().backward()
    assert torch.isfinite(logits).all() and decoder.rnn.weight_hh_l0.grad is not None
    torch.testing.assert_close(logits.float(), expected, atol=0.1, rtol=0)  # bf16 rounding around float32 recurrences
    assert state["hidden"].dtype == torch.float32 and step_logits.shape == (2, 11)

"""Reference (Python-unrolled equations) vs fused (torch kernels): tokens per second, training and inference.

Run from the repository root (heavy: run it alone)::

    flock /tmp/encoderkit-bench.lock python benchmarks/kernels.py

Writes ``benchmarks/results/kernels.json`` and the ``## Kernels`` section of ``benchmarks/RESULTS.md``
(other sections of that file are left as they are).

What is measured, per family: the encoderkit encoder itself (``RecurrentEncoder`` for rnn, lstm,
gru; ``MultiHeadSelfAttention`` and one ``TransformerEncoderLayer`` for attention) with one set of
weights and ``impl`` switched between ``reference`` and ``fused``, on a batch of 64 sentences of 50
tokens, inputs and hidden size 256 (1 layer, unidirectional; attention with 4 heads), with no
padding (equal work for both paths; the fused recurrent path then skips packing), plus the
recurrent encoders on a padded batch (fused = packed sequence), and an LSTM hidden-size sweep.
Training = forward + backward of a mean-square loss;
inference = forward under ``torch.inference_mode``. Reference and fused runs are interleaved
(alternating which goes first) and each figure is the median over repeats.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import datetime, timezone
from typing import Callable

import torch

from results_md import RESULTS_DIR, RESULTS_MD, cpu_name, write_json, write_section  # benchmarks/results_md.py

from encoderkit.config import RecurrentConfig
from encoderkit.encoders.rnn import RecurrentEncoder
from encoderkit.nn.attention import MultiHeadSelfAttention
from encoderkit.nn.transformer import TransformerEncoderLayer

RESULTS_JSON = RESULTS_DIR / "kernels.json"
SECTION = "## Kernels"
IMPLS = ("reference", "fused")


class Case:
    """One module with a switchable ``impl``, its inputs, and how to time one training/inference step."""

    def __init__(
        self,
        family: str,
        module: torch.nn.Module,
        set_impl: Callable[[str], None],
        inputs: torch.Tensor,
        mask: torch.Tensor,
        forward_flops_per_token: float,
    ):
        self.family = family
        self.forward_flops_per_token = forward_flops_per_token
        self.module = module
        self.set_impl = set_impl
        self.inputs = inputs
        self.mask = mask

    def train_step(self) -> None:
        self.module.zero_grad(set_to_none=True)
        states = self.module(self.inputs, self.mask)
        states.pow(2).mean().backward()

    def inference_step(self) -> None:
        with torch.inference_mode():
            self.module(self.inputs, self.mask)


def unidirectional_encoder(kind: str, hidden: int) -> RecurrentEncoder:
    """One unidirectional layer, inputs of size ``hidden``."""
    return RecurrentEncoder(hidden, RecurrentConfig(kind=kind, hidden_size=hidden, num_layers=1, bidirectional=False))


def build_cases(batch: int, length: int, hidden: int, heads: int) -> list[Case]:
    torch.manual_seed(0)
    inputs = torch.randn(batch, length, hidden)
    mask = torch.ones(batch, length, dtype=torch.bool)
    cases = []
    for kind in ("rnn", "lstm", "gru"):
        encoder = unidirectional_encoder(kind, hidden)

        def set_impl(impl: str, encoder: RecurrentEncoder = encoder) -> None:
            encoder.impl = impl

        cases.append(Case(kind, encoder.train(), set_impl, inputs, mask, recurrent_flops(kind, hidden, hidden)))
    attention = MultiHeadSelfAttention(hidden, heads, dropout=0.0)
    attention_flops = 2 * 4 * hidden * hidden + 2 * 2 * length * hidden  # qkv + out projections; QK^T and AV
    cases.append(
        Case(
            "attention", attention.train(), lambda impl: setattr(attention, "impl", impl), inputs, mask, attention_flops
        )
    )
    layer = TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout=0.0, norm="pre")
    cases.append(
        Case(
            "transformer layer",
            layer.train(),
            lambda impl: setattr(layer.attention, "impl", impl),
            inputs,
            mask,
            attention_flops + 2 * 2 * hidden * 4 * hidden,  # + feed-forward H -> 4H -> H
        )
    )
    return cases


#: Gates stacked in weight_ih / weight_hh: Elman 1, LSTM 4 (i, f, g, o), GRU 3 (r, z, n).
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def recurrent_flops(kind: str, input_size: int, hidden: int) -> float:
    """Forward FLOPs per token of one layer: the two products W_ih x_t and W_hh h_{t-1} (2 FLOPs per
    multiply-add); the gate nonlinearities are O(H) and left out."""
    return 2.0 * GATES[kind] * hidden * (input_size + hidden)


def matmul_gflops(rows: int, inner: int, cols: int, repeats: int = 7) -> float:
    """Best-case GEMM speed of this CPU and thread count: a (rows,inner) @ (inner,cols) product,
    the shape of an LSTM's input projection over a whole batch. Median GFLOP/s."""
    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2.0 * rows * inner * cols / statistics.median(times) / 1e9


def time_once(step: Callable[[], None], iterations: int) -> float:
    """Seconds per step, averaged over ``iterations`` consecutive steps."""
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return (time.perf_counter() - start) / iterations


def measure(
    cases: list[Case], repeats: int, iterations: int, tokens: int, modes: tuple[str, ...] = ("training", "inference")
) -> list[dict]:
    """Interleave reference and fused for every case and mode; medians over ``repeats``."""
    samples: dict[tuple[str, str, str], list[float]] = {}
    for case in cases:  # warm-up: allocator, thread pool, lazy kernel selection
        for impl in IMPLS:
            case.set_impl(impl)
            case.train_step()
            case.inference_step()
    for repeat in range(repeats):
        order = IMPLS if repeat % 2 == 0 else IMPLS[::-1]
        for case in cases:
            for mode in modes:
                step = case.train_step if mode == "training" else case.inference_step
                for impl in order:
                    case.set_impl(impl)
                    samples.setdefault((case.family, mode, impl), []).append(time_once(step, iterations))
        print(f"repeat {repeat + 1}/{repeats} done", flush=True)
    rows = []
    for case in cases:
        for mode in modes:
            seconds = {impl: statistics.median(samples[(case.family, mode, impl)]) for impl in IMPLS}
            # backward costs about twice the forward (gradients of inputs and of weights)
            flops = tokens * case.forward_flops_per_token * (3 if mode == "training" else 1)
            rows.append(
                {
                    "family": case.family,
                    "mode": mode,
                    "reference_seconds_per_batch": seconds["reference"],
                    "fused_seconds_per_batch": seconds["fused"],
                    "reference_tokens_per_second": tokens / seconds["reference"],
                    "fused_tokens_per_second": tokens / seconds["fused"],
                    "speedup": seconds["reference"] / seconds["fused"],
                    "reference_gflops": flops / seconds["reference"] / 1e9,
                    "fused_gflops": flops / seconds["fused"] / 1e9,
                    "samples_seconds": {impl: samples[(case.family, mode, impl)] for impl in IMPLS},
                }
            )
    return rows


def padded_recurrent_cases(batch: int, length: int, hidden: int) -> tuple[list[Case], int]:
    """The recurrent encoders on a padded batch: lengths uniform in [length/5, length], as after
    shuffled batching; the fused path packs the sequence. Returns the cases and the real-token count."""
    generator = torch.Generator().manual_seed(1)
    lengths = torch.randint(length // 5, length + 1, (batch,), generator=generator)
    lengths[0] = length
    mask = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
    inputs = torch.randn(batch, length, hidden, generator=generator)
    cases = []
    for kind in ("rnn", "lstm", "gru"):
        torch.manual_seed(0)
        encoder = unidirectional_encoder(kind, hidden)
        cases.append(
            Case(
                f"{kind}, padded batch",
                encoder.train(),
                lambda impl, encoder=encoder: setattr(encoder, "impl", impl),
                inputs,
                mask,
                recurrent_flops(kind, hidden, hidden),
            )
        )
    return cases, int(mask.sum())


def lstm_sweep(hidden_sizes: list[int], batch: int, length: int, repeats: int, iterations: int) -> list[dict]:
    """LSTM training, reference vs fused, at smaller hidden sizes (inputs of the same size): where the
    per-step products are small, Python's per-step overhead dominates the reference."""
    rows = []
    for hidden in hidden_sizes:
        torch.manual_seed(0)
        encoder = unidirectional_encoder("lstm", hidden)
        case = Case(
            f"lstm h={hidden}",
            encoder.train(),
            lambda impl, encoder=encoder: setattr(encoder, "impl", impl),
            torch.randn(batch, length, hidden),
            torch.ones(batch, length, dtype=torch.bool),
            recurrent_flops("lstm", hidden, hidden),
        )
        row = measure([case], repeats, iterations, batch * length, modes=("training",))[0]
        rows.append({"hidden": hidden, **row})
    return rows


def markdown_section(result: dict) -> str:
    """The body of the ``## Kernels`` section: setup, table, the LSTM verdict with its reason, the sweep."""
    setup = result["setup"]
    lines = [
        f"`python benchmarks/kernels.py` on {setup['cpu']}, {setup['threads']} torch threads, torch "
        f"{setup['torch']}, {setup['date']}. Batch {setup['batch']} x {setup['length']} tokens (no padding, so "
        "the fused recurrent path skips packing; the *padded batch* rows have lengths uniform in "
        f"[{setup['length'] // 5}, {setup['length']}], tokens/s counts real tokens), "
        f"inputs and hidden size {setup['hidden']}, 1 layer, unidirectional; attention {setup['heads']} heads. "
        f"Tokens per second, median of {setup['repeats']} interleaved repeats of {setup['iterations']} steps; "
        "training = forward + backward. reference = encoderkit.nn equations unrolled in Python / softmax "
        "written out; fused = torch.nn.RNN/LSTM/GRU (packed when the batch is padded) / "
        "scaled_dot_product_attention. "
        "Same weights in both columns.",
        "",
        "| family | mode | reference tok/s | fused tok/s | fused / reference | reference GFLOP/s | fused GFLOP/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['family']} | {row['mode']} | {row['reference_tokens_per_second']:,.0f} | "
            f"{row['fused_tokens_per_second']:,.0f} | {row['speedup']:.2f}x | "
            f"{row['reference_gflops']:.0f} | {row['fused_gflops']:.0f} |"
        )
    lstm = next(row for row in result["rows"] if row["family"] == "lstm" and row["mode"] == "training")
    ceiling = result["gemm_gflops"]
    verdict = "meets" if lstm["speedup"] >= 3 else "does not meet"
    lines += [
        "",
        f"**Fused LSTM training is {lstm['speedup']:.2f}x the reference** at this size, which {verdict} the 3x "
        "target. Why: at hidden 256 both paths are bound by the same matrix products, not by Python. "
        f"GFLOP/s counts the products only (W_ih x_t and W_hh h_(t-1), backward = 2x forward). A single "
        f"({setup['batch'] * setup['length']},{setup['hidden']}) @ ({setup['hidden']},{4 * setup['hidden']}) "
        f"product runs at {ceiling:.0f} GFLOP/s on these threads, the practical ceiling; the reference LSTM "
        f"already trains at {lstm['reference_gflops']:.0f} GFLOP/s, so no implementation doing the same "
        f"arithmetic can be more than {ceiling / lstm['reference_gflops']:.1f}x faster than it on this CPU. "
        "On this CPU the fused kernels win by a constant factor, not by an order of magnitude; larger "
        "factors need a regime where one Python step costs more than its arithmetic: small layers (the "
        "sweep below, same batch and length, measured in the same run) or a GPU with cuDNN (not "
        "measured: no GPU here).",
        "",
        "| LSTM training, hidden = inputs | reference tok/s | fused tok/s | fused / reference |",
        "|---:|---:|---:|---:|",
    ]
    for row in result["lstm_sweep"]:
        lines.append(
            f"| {row['hidden']} | {row['reference_tokens_per_second']:,.0f} | "
            f"{row['fused_tokens_per_second']:,.0f} | {row['speedup']:.2f}x |"
        )
    lines += ["", "Machine-readable: `benchmarks/results/kernels.json`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sweep", type=int, nargs="*", default=[32, 64, 128], help="LSTM hidden sizes for the sweep.")
    parser.add_argument("--no-write", action="store_true", help="Print only (for trying options).")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="Rewrite the RESULTS.md section from results/kernels.json, no timing.",
    )
    args = parser.parse_args()

    if args.render_only:
        write_section(SECTION, markdown_section(json.loads(RESULTS_JSON.read_text(encoding="utf-8"))))
        print(f"rewrote the {SECTION!r} section of {RESULTS_MD} from {RESULTS_JSON}")
        return
    torch.set_num_threads(args.threads)
    cases = build_cases(args.batch, args.length, args.hidden, args.heads)
    rows = measure(cases, args.repeats, args.iterations, tokens=args.batch * args.length)
    padded_cases, real_tokens = padded_recurrent_cases(args.batch, args.length, args.hidden)
    rows += measure(padded_cases, args.repeats, args.iterations, tokens=real_tokens, modes=("training",))
    sweep = lstm_sweep(args.sweep, args.batch, args.length, args.repeats, args.iterations)
    gemm = matmul_gflops(args.batch * args.length, args.hidden, 4 * args.hidden)
    result = {
        "setup": {
            "batch": args.batch,
            "length": args.length,
            "hidden": args.hidden,
            "heads": args.heads,
            "repeats": args.repeats,
            "iterations": args.iterations,
            "threads": args.threads,
            "torch": torch.__version__,
            "cpu": cpu_name(),
            "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        },
        "rows": rows,
        "gemm_gflops": gemm,
        "lstm_sweep": sweep,
    }
    section = markdown_section(result)
    print(section)
    if not args.no_write:
        write_json(RESULTS_JSON.name, result)
        write_section(SECTION, section)
        print(f"wrote {RESULTS_JSON} and the {SECTION!r} section of {RESULTS_MD}")


if __name__ == "__main__":
    main()

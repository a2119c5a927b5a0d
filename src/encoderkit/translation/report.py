"""The report of a translation run: scores with their sacreBLEU signatures, learning curves, sample
translations beside their references, the worst sentences by chrF, and an alignment heatmap drawn
from the decoder's attention.

Also writes ``test_translations.txt`` (one output per test line) so the scores can be checked with
``sacrebleu REF < test_translations.txt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are written on headless machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from encoderkit.files import atomic_write_text  # noqa: E402

SCORE_KEYS = ("bleu", "bleu_lowercase", "chrf", "length_ratio", "loss")
SAMPLES = 8


def plot_alignment(source_tokens: Sequence[str], target_tokens: Sequence[str], weights: np.ndarray, path: Path,
                   title: str = "Attention") -> None:
    """Heatmap of attention weights: one row per output token, one column per source token."""
    rows, columns = weights.shape
    figure, axis = plt.subplots(figsize=(max(4.0, 0.45 * columns + 2), max(3.0, 0.4 * rows + 1.5)))
    axis.imshow(weights, cmap="Greys", vmin=0.0, vmax=max(float(weights.max()), 1e-6), aspect="auto")
    axis.set_xticks(range(columns), list(source_tokens)[:columns], rotation=60, ha="right", fontsize=8)
    axis.set_yticks(range(rows), list(target_tokens)[:rows], fontsize=8)
    axis.set_xlabel("source")
    axis.set_ylabel("output")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_curves(history: list[dict], path: Path) -> None:
    """Validation BLEU and chrF (left) and the losses (right) against optimizer steps."""
    kept = [record for record in history if not record.get("averaged")]
    averages = [record for record in history if record.get("averaged")]
    steps = [record["step"] for record in kept]
    figure, (scores, losses) = plt.subplots(1, 2, figsize=(10, 4))
    for key, name in (("bleu", "validation BLEU"), ("chrf", "validation chrF")):
        if all(key in record for record in kept):
            scores.plot(steps, [record[key] for record in kept], marker="o", label=name)
        if averages and all(key in record for record in averages):
            scores.plot([record["step"] for record in averages], [record[key] for record in averages],
                        marker="x", linestyle="--", label=f"{name}, average of the last {averages[-1]['averaged']}")
    for key, name in (("loss", "validation loss"), ("train_loss", "training loss (smoothed, label-smoothed)")):
        values = [record.get(key) for record in kept]
        if values and all(v is not None for v in values):
            losses.plot(steps, values, marker="o", label=name)
    for axis in (scores, losses):
        axis.set_xlabel("optimizer step")
        axis.grid(alpha=0.3)
        axis.legend()
    scores.set_title("Validation scores")
    losses.set_title("Cross-entropy per token")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def sample_table(sources: Sequence[str], references: Sequence[str], outputs: Sequence[str], indices: Sequence[int],
                 chrf: Sequence[float] | None = None) -> str:
    header = "| # | source | reference | translation |" + (" chrF |" if chrf is not None else "")
    lines = [header, "|---|---|---|---|" + ("---|" if chrf is not None else "")]
    for i in indices:
        lines.append(f"| {i + 1} | {_cell(sources[i])} | {_cell(references[i])} | {_cell(outputs[i])} |"
                     + (f" {chrf[i]:.1f} |" if chrf is not None else ""))
    return "\n".join(lines)


def write_translation_report(run_dir: Path, config, result) -> Path:
    """``report.md`` (+ ``curves.png``, ``alignment.png``, ``test_translations.txt``) for a finished run."""
    from encoderkit.data.parallel import read_pairs
    from encoderkit.metrics.translation import sentence_chrf

    run_dir = Path(run_dir)
    section = config.translate
    metrics = dict(result.test_metrics or result.validation_metrics)
    split = "test" if result.test_metrics else "validation (best evaluation)"
    lines = [f"# Translation report: {section.source} -> {section.target}", ""]
    lines += [f"- **{key}**: {value}" for key, value in result.facts.items()]
    lines += ["", f"## Scores on {split}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {key} | {metrics[key]:.4f} |" for key in SCORE_KEYS if key in metrics]
    if "beam_size" in metrics:
        lines.append(f"| beam size | {metrics['beam_size']} |")
    lines.append("")
    for key in ("bleu_signature", "bleu_lowercase_signature", "chrf_signature"):
        if key in metrics:
            lines.append(f"- {key.replace('_', ' ')}: `{metrics[key]}`")
    lines.append("")
    if result.history:
        plot_curves(result.history, run_dir / "curves.png")
        lines += ["## Learning curves", "", "![learning curves](curves.png)", ""]
    outputs = (result.test_metrics or {}).pop("translations", None)  # written to a file, not to results.json
    if outputs is not None and config.data.test:
        atomic_write_text(run_dir / "test_translations.txt", "".join(text + "\n" for text in outputs))
        pairs = read_pairs(config.data.test, section.source, section.target,
                           "auto" if config.data.format == "auto" else config.data.format)
        sources, references = [p.source for p in pairs], [p.target for p in pairs]
        chrf = sentence_chrf(outputs, references)
        worst = sorted(range(len(outputs)), key=lambda i: (chrf[i], i))[:SAMPLES]
        lines += ["## Sample translations (test, first lines)", "",
                  sample_table(sources, references, outputs, range(min(SAMPLES, len(outputs)))), "",
                  "## Worst test sentences by chrF", "", sample_table(sources, references, outputs, worst, chrf), "",
                  "All test translations: `test_translations.txt`.", ""]
        lines += alignment_section(run_dir, result.model_dir, sources)
    path = run_dir / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def alignment_section(run_dir: Path, model_dir: Path, sources: Sequence[str]) -> list[str]:
    """The attention of the saved model on a test sentence of middling length, as a heatmap."""
    from encoderkit.model_dir import load_model

    model = load_model(model_dir)
    lengths = [len(text.split()) for text in sources]
    pick = min(range(len(sources)), key=lambda i: (abs(lengths[i] - 10), i))
    shown = model.translate(sources[pick], attention=True)
    if shown.attention is None:
        return []
    plot_alignment(shown.source_tokens, shown.target_tokens, shown.attention, run_dir / "alignment.png",
                   title=f"Attention, test sentence {pick + 1}")
    return ["## Alignment (attention of each output token over the source)", "",
            f"Test sentence {pick + 1}: *{_cell(shown.source)}* -> *{_cell(shown.text)}*", "",
            "![alignment](alignment.png)", ""]

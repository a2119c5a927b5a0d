"""Showing explanations: shaded units in the terminal (rich), a self-contained HTML page, heatmaps.

Renderers read an explanation's ``facts()``, ``segments()`` and ``attention`` only (see
``explanation.py``), so records of other tasks render unchanged. User text is never parsed as
markup: rich gets ``Text`` objects, HTML gets ``html.escape``. Green raises the explained score,
red lowers it; shading is scaled to the largest absolute score of each segment.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np

#: Heatmaps are drawn for at most this many texts of one page (each is a figure of layers x heads).
MAX_HEATMAPS = 25
POSITIVE = (26, 150, 65)
NEGATIVE = (215, 48, 39)


def shares(scores: np.ndarray) -> np.ndarray:
    """Scores scaled into [-1, 1] by the largest absolute score (all zeros stay zeros)."""
    scores = np.asarray(scores, dtype=float)
    largest = float(np.abs(scores).max()) if scores.size else 0.0
    return scores / largest if largest > 0 else np.zeros_like(scores)


def background(share: float) -> tuple[int, int, int]:
    """White blended towards green (positive) or red (negative) by ``|share|``."""
    color = POSITIVE if share >= 0 else NEGATIVE
    strength = min(1.0, abs(share))
    return tuple(round(255 + (channel - 255) * strength) for channel in color)


def strongest(units: Sequence[str], scores: np.ndarray, count: int = 3) -> str:
    """'for: Hamlet +0.41, wrote +0.12; against: ? -0.02' (plain text, for logs and pipes)."""
    order = np.argsort(-np.asarray(scores))
    parts = []
    up = [f"{units[i]} {scores[i]:+.3f}" for i in order[:count] if scores[i] > 0]
    down = [f"{units[i]} {scores[i]:+.3f}" for i in order[::-1][:count] if scores[i] < 0]
    if up:
        parts.append("for: " + ", ".join(up))
    if down:
        parts.append("against: " + ", ".join(down))
    return "; ".join(parts) or "no unit moves the score"


def terminal_text(explanation, number: int | None = None):
    """A ``rich.text.Text`` block: the facts, each segment shaded, the strongest units in words."""
    from rich.style import Style
    from rich.text import Text

    block = Text()
    if number is not None:
        block.append(f"#{number} ", style="bold")
    block.append("  ".join(f"{key}: {value}" for key, value in explanation.facts().items()) + "\n")
    for segment in explanation.segments():
        if len(explanation.segments()) > 1:
            block.append(f"{segment.name}: ", style="bold")
        for (separator, unit, _), share in zip(segment.spaced(), shares(segment.scores)):
            red, green, blue = background(share)
            block.append(separator)
            block.append(unit, style=Style(color="black", bgcolor=f"rgb({red},{green},{blue})")
                         if abs(share) >= 0.05 else None)
        block.append("\n  " + strongest(segment.units, segment.scores) + "\n")
    return block


# -- HTML ----------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
section { border-top: 1px solid #ddd; padding: 0.8em 0; }
.facts { font-size: 0.9em; color: #555; margin-bottom: 0.4em; }
.facts b { color: #222; }
.segment { font-size: 1.15em; line-height: 2em; }
.segment { white-space: pre-wrap; }
.unit { padding: 0.15em 0.1em; border-radius: 0.2em; }
.legend span { padding: 0.1em 0.5em; margin-right: 0.5em; border-radius: 0.2em; }
img { max-width: 100%; margin-top: 0.5em; }
.note { color: #777; font-size: 0.9em; }
"""


def html_page(explanations: Sequence, title: str, facts: dict[str, str] | None = None) -> str:
    """One self-contained page (inline CSS, heatmaps as base64 PNG, no external assets)."""
    escape = html.escape
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>{escape(title)}</h1>"]
    if facts:
        parts.append("<p class=\"facts\">" + " &middot; ".join(
            f"<b>{escape(key)}</b>: {escape(value)}" for key, value in facts.items()) + "</p>")
    parts.append("<p class=\"legend\"><span style=\"background:rgb%s\">raises the explained score</span>"
                 "<span style=\"background:rgb%s\">lowers it</span>hover a word for its score</p>"
                 % (background(1.0), background(-1.0)))
    drawn = 0
    for number, explanation in enumerate(explanations, start=1):
        parts.append(f"<section><div class=\"facts\"><b>#{number}</b> " + " &middot; ".join(
            f"<b>{escape(key)}</b>: {escape(value)}" for key, value in explanation.facts().items()) + "</div>")
        for segment in explanation.segments():
            label = f"<b>{escape(segment.name)}</b>: " if len(explanation.segments()) > 1 else ""
            spans = "".join(
                f"{escape(separator)}<span class=\"unit\" style=\"background:rgb{background(share)}\" "
                f"title=\"{score:+.4f}\">{escape(unit)}</span>"
                for (separator, unit, score), share in zip(segment.spaced(), shares(segment.scores)))
            parts.append(f"<div class=\"segment\">{label}{spans}</div>")
        if has_heatmap(explanation):
            if drawn < MAX_HEATMAPS:
                png = base64.b64encode(heatmap_png(explanation)).decode("ascii")
                title = getattr(explanation, "heatmap_title", "attention of every layer and head, and the rollout")
                parts.append(f"<img alt=\"{escape(title)}\" src=\"data:image/png;base64,{png}\">")
                drawn += 1
            elif drawn == MAX_HEATMAPS:
                parts.append(f"<p class=\"note\">heatmaps are drawn for the first {MAX_HEATMAPS} texts only</p>")
                drawn += 1
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def has_heatmap(explanation) -> bool:
    """An explanation draws a heatmap: its own (``heatmap_png``, a translation's alignment), or attention maps."""
    if hasattr(explanation, "heatmap_png"):
        return True
    maps = getattr(explanation, "attention", None)
    return maps is not None and maps.layers is not None


def heatmap_png(explanation) -> bytes:
    own = getattr(explanation, "heatmap_png", None)
    return own() if own is not None else attention_png(explanation.attention)


def attention_png(maps, dpi: int = 70) -> bytes:
    """A grid of every layer's and head's attention (rows: layers) beside the attention rollout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_layers, num_heads = maps.layers.shape[:2]
    cell = 1.2
    figure = plt.figure(figsize=(cell * num_heads + 4.5, max(cell * num_layers, 4.0) + 0.6))
    grid = figure.add_gridspec(num_layers, num_heads + 4)
    for layer in range(num_layers):
        for head in range(num_heads):
            axis = figure.add_subplot(grid[layer, head])
            axis.imshow(maps.layers[layer, head], cmap="viridis", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            if layer == 0:
                axis.set_title(f"head {head + 1}", fontsize=7)
            if head == 0:
                axis.set_ylabel(f"layer {layer + 1}", fontsize=7)
    axis = figure.add_subplot(grid[:, num_heads + 1:])
    axis.imshow(maps.rollout, cmap="viridis", vmin=0)
    ticks, labels = range(len(maps.tokens)), [token.replace("$", r"\$") for token in maps.tokens]  # no mathtext
    axis.set_xticks(ticks, labels, rotation=90, fontsize=7)
    axis.set_yticks(ticks, labels, fontsize=7)
    axis.set_title("rollout (row: position, column: input)", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()

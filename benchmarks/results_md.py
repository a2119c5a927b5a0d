"""Shared by the benchmarks: replace one ``## Section`` of benchmarks/RESULTS.md, keep the others."""

from __future__ import annotations

import json
import platform
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
RESULTS_MD = BENCHMARKS / "RESULTS.md"
RESULTS_DIR = BENCHMARKS / "results"


def write_section(heading: str, body: str, path: Path = RESULTS_MD) -> None:
    """Replace (or append) the section whose heading line is ``heading`` (e.g. ``## Kernels``)."""
    section = heading + "\n\n" + body.strip("\n") + "\n"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        text = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    path.write_text(text, encoding="utf-8")


def write_json(name: str, payload: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where available (Linux), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

"""Shared by the benchmarks: replace one ``## Section`` of benchmarks/RESULTS.md, keep the others;
write results JSON; the small data slices and separate output of ``--quick`` runs."""

from __future__ import annotations

import json
import platform
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
RESULTS_MD = BENCHMARKS / "RESULTS.md"
RESULTS_DIR = BENCHMARKS / "results"
#: Where ``--quick`` runs write (ignored by git): they prove a benchmark runs, they measure nothing.
QUICK_DIR = RESULTS_DIR / "quick"


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


def quick_slice(source: Path, work: Path, train: int, test: int) -> Path:
    """``work/data/NAME`` with every n-th line of ``source``'s train.jsonl and test.jsonl (``train`` and
    ``test`` lines; spread over the file, so every label of a sorted file still occurs)."""
    target = work / "data" / source.name
    target.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("test", test)):
        lines = (source / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        step = max(1, len(lines) // count)
        (target / f"{split}.jsonl").write_text("\n".join(lines[::step][:count]) + "\n", encoding="utf-8")
    return target


def write_results(name: str, heading: str, body: str, payload: dict, quick: bool) -> None:
    """``results/NAME`` and the section ``heading`` of RESULTS.md; a quick run writes both under ``QUICK_DIR``."""
    if not quick:
        write_json(name, payload)
        write_section(heading, body)
        return
    QUICK_DIR.mkdir(parents=True, exist_ok=True)
    (QUICK_DIR / name).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    write_section(heading + " (quick check, not the benchmark)", body, QUICK_DIR / "RESULTS.md")

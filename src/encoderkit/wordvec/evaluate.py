"""Intrinsic evaluation of word vectors: analogies (3CosAdd) and word similarity (Spearman).

The rules follow gensim's ``KeyedVectors.evaluate_word_analogies`` / ``evaluate_word_pairs``
line for line, so the numbers are comparable with published gensim figures (a test checks
equality); the difference is speed: all analogy questions are answered with batched matrix
products instead of one ``most_similar`` call each.

Shared rules:
  * only the first ``restrict_vocab`` words of the file count (files are sorted by frequency):
    30,000 for analogies (word2vec's compute-accuracy convention), 300,000 for word pairs
    (gensim's default);
  * case-insensitive: words are upper-cased and the first (most frequent) case variant wins;
  * a question or pair with a word outside that vocabulary is skipped and counted as OOV.

Analogy ``a : b :: c : ?`` (3CosAdd, Mikolov et al. 2013):
    d* = argmax_{d not in {a,b,c}} cos(x_d, (x̂_b + x̂_c - x̂_a) / 3),   x̂ = x / ||x||
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from encoderkit.errors import DataError

#: The analogy test is restricted to the most frequent 30,000 words, as in word2vec's
#: compute-accuracy tool and gensim's older ``accuracy()`` (and the published gensim figures).
DEFAULT_RESTRICT_VOCAB = 30_000
#: Word-pair evaluation keeps gensim's ``evaluate_word_pairs`` default.
PAIRS_RESTRICT_VOCAB = 300_000
_BATCH = 512  # questions per matrix product: (512 x 30k) float32 scores = 60 MB


def gensim_test_file(name: str) -> Path:
    """Path of an evaluation file shipped inside gensim (``questions-words.txt``, ``wordsim353.tsv``, ``simlex999.txt``)."""
    import gensim

    path = Path(gensim.__file__).parent / "test" / "test_data" / name
    if not path.is_file():
        raise DataError(f"{name} not found in {path.parent}; reinstall gensim (pip install 'gensim>=4.3')")
    return path


def _ok_vocab(words: list[str], restrict_vocab: int, case_insensitive: bool) -> dict[str, int]:
    """Key -> row for the first ``restrict_vocab`` words; with case folding the first variant wins."""
    vocab: dict[str, int] = {}
    for index, word in enumerate(words[:restrict_vocab]):
        vocab.setdefault(word.upper() if case_insensitive else word, index)
    return vocab


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


@dataclass
class AnalogyResult:
    """Accuracy overall and per section; ``total`` counts answered questions (OOV ones are skipped)."""

    accuracy: float
    correct: int
    total: int
    oov_questions: int
    sections: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "correct": self.correct,
            "total": self.total,
            "oov_questions": self.oov_questions,
            "sections": self.sections,
        }


def _read_analogies(path: Path, case_insensitive: bool) -> tuple[list[str], list[tuple[int, tuple[str, str, str, str]]]]:
    """Section names and (section index, (a, b, c, expected)) questions; gensim's parsing rules."""
    sections: list[str] = []
    questions = []
    with open(path, encoding="utf-8-sig") as handle:  # -sig: a byte-order mark is not part of line 1
        for line_number, line in enumerate(handle, start=1):
            if line.startswith(": "):
                sections.append(line.lstrip(": ").strip())
                continue
            if not sections:
                raise DataError(f"{path}:{line_number}: missing ': section' header before the first question")
            words = line.split()
            if len(words) != 4:
                continue  # gensim skips malformed lines without counting them
            if case_insensitive:
                words = [word.upper() for word in words]
            questions.append((len(sections) - 1, tuple(words)))
    return sections, questions


def evaluate_analogies(
    words: list[str],
    vectors: np.ndarray,
    path: str | Path | None = None,
    *,
    restrict_vocab: int = DEFAULT_RESTRICT_VOCAB,
    case_insensitive: bool = True,
) -> AnalogyResult:
    """Answer ``a : b :: c : ?`` questions by 3CosAdd; accuracy overall and per section.

    Args:
        words: Vocabulary in frequency order (as loaded).
        vectors: (len(words), D) array.
        path: Questions file (``: section`` headers then ``a b c d`` lines); default gensim's
            ``questions-words.txt``.
        restrict_vocab: Only questions whose four words are among the first ``restrict_vocab``
            words are asked, and answers are searched among them.
        case_insensitive: Compare upper-cased words (the first case variant of a word wins).

    Returns:
        AnalogyResult with accuracy = correct / answered questions.
    """
    path = Path(path) if path is not None else gensim_test_file("questions-words.txt")
    if not path.is_file():
        raise DataError(f"analogy file not found: {path}")
    vocab = _ok_vocab(words, restrict_vocab, case_insensitive)
    limit = min(restrict_vocab, len(words))
    unit = _unit(np.asarray(vectors[:limit], dtype=np.float32))
    # canonical[i]: the row that stands for word i after case folding (gensim compares keys, not rows)
    canonical = np.array([vocab[w.upper() if case_insensitive else w] for w in words[:limit]], dtype=np.int64)

    section_names, questions = _read_analogies(path, case_insensitive)
    asked = [(s, q) for s, q in questions if all(word in vocab for word in q)]
    oov = len(questions) - len(asked)
    ids = np.array([[vocab[word] for word in q] for _, q in asked], dtype=np.int64).reshape(-1, 4)
    section_of = np.array([s for s, _ in asked], dtype=np.int64)
    hits = np.zeros(len(asked), dtype=bool)
    unit_t = torch.from_numpy(unit)
    canonical_t = torch.from_numpy(canonical)
    for start in range(0, len(asked), _BATCH):
        a, b, c, expected = torch.from_numpy(ids[start : start + _BATCH]).T
        query = (unit_t[b] + unit_t[c] - unit_t[a]) / 3.0  # gensim's weighted mean, then normalised
        query = query / query.norm(dim=1, keepdim=True).clamp_min(1e-12)
        scores = query @ unit_t.T  # (batch, vocab) cosine similarities
        rows = torch.arange(len(a))
        for column in (a, b, c):
            scores[rows, column] = -torch.inf
        # gensim looks at the 5 best and takes the first that is not a case variant of a, b or c
        top = scores.topk(min(5, scores.shape[1]), dim=1).indices  # sorted, best first
        top_keys = canonical_t[top]
        excluded = (top_keys == a[:, None]) | (top_keys == b[:, None]) | (top_keys == c[:, None])
        first_ok = torch.where(excluded.all(dim=1), top.shape[1] - 1, excluded.to(torch.int8).argmin(dim=1))
        predicted = top_keys[rows, first_ok]
        hits[start : start + len(a)] = (predicted == expected).numpy()

    sections = {}
    for index, name in enumerate(section_names):
        mask = section_of == index
        total = int(mask.sum())
        correct = int(hits[mask].sum())
        sections[name] = {"correct": correct, "total": total, "accuracy": correct / total if total else 0.0}
    correct = int(hits.sum())
    accuracy = correct / len(asked) if len(asked) else 0.0
    return AnalogyResult(accuracy=accuracy, correct=correct, total=len(asked), oov_questions=oov, sections=sections)


@dataclass
class SimilarityResult:
    """Correlation of cosine similarity with human judgements on the pairs found in the vocabulary."""

    spearman: float
    pearson: float
    pairs: int
    oov_pairs: int

    @property
    def oov_ratio(self) -> float:
        """Share of pairs skipped because a word is out of vocabulary (0..1)."""
        return self.oov_pairs / (self.pairs + self.oov_pairs) if self.pairs + self.oov_pairs else 0.0

    def to_dict(self) -> dict:
        return {"spearman": self.spearman, "pearson": self.pearson, "pairs": self.pairs, "oov_pairs": self.oov_pairs, "oov_ratio": self.oov_ratio}


def evaluate_similarity(
    words: list[str],
    vectors: np.ndarray,
    path: str | Path,
    *,
    delimiter: str = "\t",
    restrict_vocab: int = PAIRS_RESTRICT_VOCAB,
    case_insensitive: bool = True,
) -> SimilarityResult:
    """Spearman (and Pearson) correlation between cosine similarity and human scores.

    Args:
        words: Vocabulary in frequency order.
        vectors: (len(words), D) array.
        path: ``word1<TAB>word2<TAB>score`` lines; lines starting with ``#`` are comments
            (gensim's ``wordsim353.tsv`` and ``simlex999.txt`` layout).
        delimiter: Field separator.
        restrict_vocab: Pairs with a word outside the first ``restrict_vocab`` words are skipped.
        case_insensitive: Compare upper-cased words.

    Returns:
        SimilarityResult; ``spearman`` is the usual headline number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"word-pair file not found: {path}")
    vocab = _ok_vocab(words, restrict_vocab, case_insensitive)
    gold, left, right = [], [], []
    oov = 0
    with open(path, encoding="utf-8-sig") as handle:  # -sig: a byte-order mark is not part of line 1
        for line in handle:
            if not line or line.startswith("#"):
                continue
            fields = line.split(delimiter)
            if len(fields) != 3:
                continue
            a, b, score = fields
            try:
                score = float(score)
            except ValueError:
                continue  # a header line
            if case_insensitive:
                a, b = a.upper(), b.upper()
            if a not in vocab or b not in vocab:
                oov += 1
                continue
            gold.append(score)
            left.append(vocab[a])
            right.append(vocab[b])
    if not gold:
        raise DataError(f"no word pair of {path} is in the vocabulary (or the file is not 'word1<TAB>word2<TAB>score')")
    matrix = np.asarray(vectors, dtype=np.float32)
    model = np.sum(_unit(matrix[left]) * _unit(matrix[right]), axis=1)
    return SimilarityResult(
        spearman=float(stats.spearmanr(gold, model).statistic),
        pearson=float(stats.pearsonr(gold, model).statistic),
        pairs=len(gold),
        oov_pairs=oov,
    )


def evaluate_all(
    words: list[str],
    vectors: np.ndarray,
    *,
    restrict_vocab: int = DEFAULT_RESTRICT_VOCAB,
    pairs_restrict_vocab: int = PAIRS_RESTRICT_VOCAB,
) -> dict:
    """The standard report: analogies on questions-words, Spearman on WordSim353 and SimLex-999.

    Args:
        words: Vocabulary in frequency order.
        vectors: (len(words), D) array.
        restrict_vocab: Most frequent words considered for analogies (30,000 by default).
        pairs_restrict_vocab: Most frequent words considered for word pairs (300,000, gensim's default).

    Returns:
        ``{"analogy": {...}, "wordsim353": {...}, "simlex999": {...}}`` of plain numbers.
    """
    return {
        "analogy": evaluate_analogies(words, vectors, restrict_vocab=restrict_vocab).to_dict(),
        "wordsim353": evaluate_similarity(words, vectors, gensim_test_file("wordsim353.tsv"), restrict_vocab=pairs_restrict_vocab).to_dict(),
        "simlex999": evaluate_similarity(words, vectors, gensim_test_file("simlex999.txt"), restrict_vocab=pairs_restrict_vocab).to_dict(),
    }


def match_word(words: list[str], word: str) -> str:
    """The vocabulary word a query stands for: ``word`` itself, else its first case-insensitive match.

    Raises:
        DataError: neither is in ``words``.
    """
    if word in words:
        return word
    folded = word.lower()
    match = next((candidate for candidate in words if candidate.lower() == folded), None)
    if match is None:
        raise DataError(f"{word!r} is not in the vocabulary ({len(words)} words); check the spelling or the casing of the vectors")
    return match


def nearest_neighbors(words: list[str], vectors: np.ndarray, word: str, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` words with the highest cosine similarity to ``word`` (itself excluded).

    Args:
        words: Vocabulary.
        vectors: (len(words), D) array.
        word: Query word; matched exactly, then case-insensitively.
        k: Number of neighbours.

    Returns:
        ``[(word, cosine), ...]`` best first.
    """
    row = words.index(match_word(words, word))
    unit = _unit(np.asarray(vectors, dtype=np.float32))
    scores = unit @ unit[row]
    scores[row] = -np.inf
    k = min(k, len(words) - 1)
    best = np.argpartition(-scores, k)[:k] if k < len(words) - 1 else np.arange(len(words))
    best = best[np.argsort(-scores[best])][:k]
    return [(words[i], float(scores[i])) for i in best]

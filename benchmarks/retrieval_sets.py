"""The retrieval benchmark's three sets, built from ../shared/data exactly as the issue defines them.

Each builder returns ``(queries, corpus, relevant)`` with ``relevant[i]`` the set of corpus
positions relevant to query ``i`` (a test checks they equal ``../shared/anchors/retrieval_sets.py``):

- captions: query = caption 1 of each image, corpus = captions 2-5 of every image, relevant = the
  same image's four captions;
- revdict: query = a WordNet definition, corpus = every synset written as its lemmas
  ``"w1, w2, ..."`` (underscores as spaces), relevant = its own synset;
- faq: query = each distinct question, corpus = every distinct answer, relevant = the answers
  given to that question.

Training pairs (``*_pairs``) come from the train splits only; validation uses the same definitions
on the validation splits.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {
    ("captions", "train"): "multi30k_captions/train.en.jsonl",
    ("captions", "validation"): "multi30k_captions/val.en.jsonl",
    ("captions", "test"): "multi30k_captions/test_2016.en.jsonl",
    ("revdict", "train"): "wordnet_revdict/train.jsonl",
    ("revdict", "validation"): "wordnet_revdict/dev.jsonl",
    ("revdict", "test"): "wordnet_revdict/test.jsonl",
    ("faq", "test"): "chatterbot_en/pairs.jsonl",
}


def rows(name: str, split: str, root: Path = SHARED) -> list[dict]:
    path = root / FILES[(name, split)]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def lemmas(words: list[str]) -> str:
    """A synset as a document: its lemmas, underscores as spaces, joined by ", "."""
    return ", ".join(word.replace("_", " ") for word in words)


def captions_set(records: list[dict]):
    queries, corpus, relevant = [], [], []
    for record in records:
        queries.append(record["captions"][0])
        start = len(corpus)
        corpus += record["captions"][1:]
        relevant.append(set(range(start, len(corpus))))
    return queries, corpus, relevant


def revdict_set(records: list[dict]):
    return ([record["definition"] for record in records], [lemmas(record["words"]) for record in records],
            [{i} for i in range(len(records))])


def faq_set(records: list[dict]):
    answers = sorted({record["answer"] for record in records})
    position = {answer: i for i, answer in enumerate(answers)}
    by_question: dict[str, set[int]] = defaultdict(set)
    for record in records:
        by_question[record["question"]].add(position[record["answer"]])
    questions = sorted(by_question)
    return questions, answers, [by_question[question] for question in questions]


BUILDERS = {"captions": captions_set, "revdict": revdict_set, "faq": faq_set}


def ranking_set(name: str, split: str = "test", root: Path = SHARED):
    """``(queries, corpus, relevant)`` of one set and split."""
    return BUILDERS[name](rows(name, split, root))


def captions_pairs(records: list[dict], per_image: int = 5) -> list[dict]:
    """``per_image`` pairs per image, each caption with the next one of the same image (a ring).

    With fewer pairs than captions, image ``n`` starts its pairs at caption ``n * per_image``
    (modulo the ring), so the captions used rotate across images: 29,000 images x 1 pair cover
    many more scenes than 5,800 images x 5 pairs for the same training cost.
    """
    pairs = []
    for n, record in enumerate(records):
        captions = record["captions"]
        starts = range(len(captions)) if per_image >= len(captions) else \
            ((n * per_image + j) % len(captions) for j in range(per_image))
        pairs += [{"query": captions[i], "positive": captions[(i + 1) % len(captions)]} for i in starts]
    return pairs


def revdict_pairs(records: list[dict]) -> list[dict]:
    """(definition, its synset's lemmas) for every synset."""
    return [{"query": record["definition"], "positive": lemmas(record["words"])} for record in records]


def ranking_pairs(queries: list[str], corpus: list[str], relevant: list[set[int]]) -> list[dict]:
    """A ranking set as pairs (one per relevant document), the form ``data.validation`` reads."""
    return [{"query": query, "positive": corpus[d]} for query, docs in zip(queries, relevant) for d in sorted(docs)]


def write_jsonl(records: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


def write_pair_files(name: str, folder: Path, train_limit: int | None = None,
                     validation_limit: int | None = None, pairs_per_image: int = 5) -> dict[str, Path]:
    """``train.jsonl`` (training pairs) and ``validation.jsonl`` (the validation ranking set as pairs).

    ``pairs_per_image`` is read for captions only (a synset gives one pair)."""
    train = rows(name, "train")[:train_limit]
    validation = rows(name, "validation")[:validation_limit]
    pairs = captions_pairs(train, pairs_per_image) if name == "captions" else revdict_pairs(train)
    return {"train": write_jsonl(pairs, folder / name / "train.jsonl"),
            "validation": write_jsonl(ranking_pairs(*BUILDERS[name](validation)), folder / name / "validation.jsonl")}

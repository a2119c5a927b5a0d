"""Retrieval data: (query, positive, hard negatives) pairs for training, ranking sets for evaluation.

Pair files are JSONL, CSV, TSV or Parquet (plain or .gz/.bz2/.xz), one record per pair::

    {"query": "who wrote hamlet", "positive": "Hamlet is a tragedy by Shakespeare ...", "negatives": ["..."]}

``negatives`` is optional (a text or a list of texts). A ranking set is what evaluation ranks:
queries, a corpus and, per query, its relevant documents. It is made from a pair file (queries =
its distinct queries, corpus = its distinct positives and negatives, relevant = each query's
positives) or read from a folder in the BEIR layout::

    DIR/corpus.jsonl   {"_id" or "id", "text", optional "title"}
    DIR/queries.jsonl  {"_id" or "id", "text"}
    DIR/qrels.tsv      query-id <TAB> corpus-id <TAB> score   (a header row; or DIR/qrels/test.tsv)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from encoderkit.data.readers import (check_text, delimited_records, detect_format, field_names,
                                     jsonl_records)
from encoderkit.errors import DataError


@dataclass(frozen=True)
class Pair:
    query: str
    positive: str
    negatives: tuple[str, ...] = ()

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.query, self.positive, *self.negatives)


@dataclass
class RankingSet:
    """Queries, a corpus, and per query ``{document position: grade}`` of its relevant documents.

    ``pairs`` (query position, positive position) are the pairs it was made from, if any (for a
    validation loss); ``document_ids`` are the corpus ids of a BEIR folder (else positions).
    """

    queries: list[str]
    documents: list[str]
    relevant: list[dict[int, float]]
    pairs: list[tuple[int, int]] = field(default_factory=list)
    document_ids: list | None = None
    source: str = ""

    def describe(self) -> str:
        return f"{len(self.queries)} queries over {len(self.documents)} documents"


# -- reading records ---------------------------------------------------------------------------


def records(path: str | Path, fmt: str = "auto") -> Iterator[tuple[str, dict]]:
    """``(where, record)`` for each record of a JSONL/CSV/TSV/Parquet file; ``where`` is ``path:line``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    kind = detect_format(path, fmt)
    if kind == "jsonl":
        return ((f"{path}:{number}", record) for number, record in jsonl_records(path, "query"))
    if kind in ("csv", "tsv"):
        return ((f"{path}:{number}", row) for number, row in delimited_records(path, "," if kind == "csv" else "\t"))
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as error:  # pyarrow raises several types for a broken file
            raise DataError(f"{path}: cannot read as Parquet ({error})") from None
        return ((f"{path}: row {number}", row) for number, row in enumerate(rows, start=1))
    raise DataError(f"{path}: {kind} files hold labelled texts, not retrieval pairs; use JSONL, CSV, TSV or Parquet")


def _field(record: dict, name: str, where: str, key: str) -> str:
    if name not in record:
        raise DataError(f"{where}: no field {name!r} (fields: {field_names(record)}); set retrieve.{key}")
    return check_text(record[name], where, name)


def _negatives(value, where: str, name: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (check_text(value, where, name),)
    if isinstance(value, (list, tuple)):
        return tuple(check_text(item, f"{where} ({name}[{i}])", name) for i, item in enumerate(value))
    raise DataError(f"{where}: field {name!r} must be a text or a list of texts, got {type(value).__name__}")


def read_pairs(path: str | Path, query_field: str = "query", positive_field: str = "positive",
               negatives_field: str | None = "negatives", fmt: str = "auto") -> list[Pair]:
    """Every pair of a file; a missing field or an empty text is one line naming ``path:line``."""
    pairs = []
    for where, record in records(path, fmt):
        negatives = _negatives(record.get(negatives_field), where, negatives_field) if negatives_field else ()
        pairs.append(Pair(_field(record, query_field, where, "query_field"),
                          _field(record, positive_field, where, "positive_field"), negatives))
    if not pairs:
        raise DataError(f"{path}: no pairs found; the file is empty")
    return pairs


def split_pairs(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Carve a validation share out of training pairs, keeping all pairs of one query on one side."""
    queries = sorted({pair.query for pair in pairs})
    random.Random(seed).shuffle(queries)
    held_out = set(queries[: max(1, round(fraction * len(queries)))])
    if len(held_out) == len(queries):
        raise DataError("too few distinct queries to carve out a validation split; give data.validation")
    return ([pair for pair in pairs if pair.query not in held_out], [pair for pair in pairs if pair.query in held_out])


# -- ranking sets ------------------------------------------------------------------------------


def ranking_set_from_pairs(pairs: list[Pair], source: str = "") -> RankingSet:
    """Queries = distinct queries; corpus = distinct positives and negatives; relevant = the positives."""
    query_index: dict[str, int] = {}
    document_index: dict[str, int] = {}
    relevant: list[dict[int, float]] = []
    links = []
    for pair in pairs:
        q = query_index.setdefault(pair.query, len(query_index))
        if q == len(relevant):
            relevant.append({})
        d = document_index.setdefault(pair.positive, len(document_index))
        relevant[q][d] = 1.0
        links.append((q, d))
        for negative in pair.negatives:
            document_index.setdefault(negative, len(document_index))
    return RankingSet(list(query_index), list(document_index), relevant, links, source=source)


def _keyed_texts(path: Path, kind: str) -> tuple[list, list[str]]:
    ids, texts, seen = [], [], set()
    for where, record in records(path, "jsonl"):
        key = record.get("_id", record.get("id"))
        if key is None:
            raise DataError(f"{where}: no field '_id' or 'id' (fields: {field_names(record)})")
        key = str(key)
        if key in seen:
            raise DataError(f"{where}: duplicate {kind} id {key!r}; every id must be unique")
        seen.add(key)
        text = check_text(record.get("text"), where, "text")
        title = record.get("title")
        texts.append(f"{title} {text}" if isinstance(title, str) and title.strip() else text)
        ids.append(key)
    if not ids:
        raise DataError(f"{path}: no {kind} found; the file is empty")
    return ids, texts


def read_ranking_folder(folder: str | Path) -> RankingSet:
    """A BEIR-style folder (see the module docstring) as a ``RankingSet``."""
    folder = Path(folder)
    qrels = next((path for path in (folder / "qrels.tsv", folder / "qrels" / "test.tsv", folder / "qrels" / "dev.tsv")
                  if path.is_file()), None)
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise DataError(f"{folder} has no {name}; a ranking folder holds corpus.jsonl, queries.jsonl and qrels.tsv")
    if qrels is None:
        raise DataError(f"{folder} has no qrels.tsv (or qrels/test.tsv); it names each query's relevant documents")
    document_ids, documents = _keyed_texts(folder / "corpus.jsonl", "document")
    query_ids, query_texts = _keyed_texts(folder / "queries.jsonl", "query")
    doc_position = {key: i for i, key in enumerate(document_ids)}
    query_position = {key: i for i, key in enumerate(query_ids)}
    judged: dict[int, dict[int, float]] = {}
    for number, row in delimited_records(qrels, "\t"):
        values = list(row.values())
        where = f"{qrels}:{number}"
        if len(values) < 2:
            raise DataError(f"{where}: a qrels row needs query-id, corpus-id and score separated by tabs")
        query, document = str(values[0]), str(values[1])
        try:
            grade = float(values[2]) if len(values) > 2 and values[2] not in (None, "") else 1.0
        except ValueError:
            raise DataError(f"{where}: the score {values[2]!r} is not a number") from None
        if query not in query_position:
            raise DataError(f"{where}: query id {query!r} is not in queries.jsonl")
        if document not in doc_position:
            raise DataError(f"{where}: document id {document!r} is not in corpus.jsonl")
        if grade > 0:
            judged.setdefault(query_position[query], {})[doc_position[document]] = grade
    if not judged:
        raise DataError(f"{qrels}: no relevant (score > 0) judgements")
    order = sorted(judged)  # queries without a relevant document are not evaluated
    return RankingSet([query_texts[q] for q in order], documents, [judged[q] for q in order],
                      document_ids=document_ids, source=str(folder))


def read_ranking_set(path: str | Path, query_field: str = "query", positive_field: str = "positive",
                     negatives_field: str | None = "negatives", fmt: str = "auto") -> RankingSet:
    """A pair file or a BEIR-style folder, as the ``RankingSet`` evaluation ranks."""
    path = Path(path)
    if path.is_dir():
        return read_ranking_folder(path)
    return ranking_set_from_pairs(read_pairs(path, query_field, positive_field, negatives_field, fmt), str(path))

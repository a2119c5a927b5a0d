"""Retrieval on the command line: ``encoderkit index build|add``, ``encoderkit ask`` and the retrieval
half of ``encoderkit evaluate``. The main CLI mounts ``app`` as ``index`` and adds ``ask``.

    encoderkit index build runs/captions/model corpus.jsonl -o my-index
    encoderkit index build bm25 my-notes/ -o notes-index          # BM25 only, no model
    encoderkit index add my-index more.jsonl
    encoderkit ask my-index "how do I reset the router?" -k 3
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from encoderkit.errors import ConfigError

app = typer.Typer(help="Build and extend search indexes (dense FAISS, BM25, hybrid).", no_args_is_help=True)

#: The word that stands for "no model, BM25 only" in ``index build MODEL``.
BM25_WORD = "bm25"


def _say(message: str) -> None:
    from encoderkit.cli import say

    say(message)


@app.callback()
def index() -> None:
    """Build and extend search indexes (dense FAISS, BM25, hybrid)."""


@app.command("build")
def build(
    model: str = typer.Argument(..., help="The model that embeds documents and queries: an encoderkit model "
                                          "directory (retrieval or classification) or a Hugging Face / "
                                          "sentence-transformers folder; or the word 'bm25' for a BM25-only index."),
    corpus: Path = typer.Argument(..., help="A corpus file (text lines, JSONL, CSV or TSV with id and text; "
                                            ".gz/.bz2/.xz too) or a folder of .txt/.md/.html documents."),
    output: Path = typer.Option(..., "--output", "-o", help="The index folder to write."),
    kind: Optional[str] = typer.Option(None, help="dense (default with a model), bm25, or hybrid (both, fused "
                                                  "by reciprocal rank)."),
    faiss_type: str = typer.Option("exact", "--faiss", help="exact (inner product over all vectors), hnsw or "
                                                            "ivf (approximate, for large corpora)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an index already at --output."),
    text_field: str = typer.Option("text", help="Text field of JSONL/CSV/TSV corpora."),
    id_field: Optional[str] = typer.Option(None, help="Id field (default: 'id' if present, else the record number)."),
    corpus_format: str = typer.Option("auto", "--format", help="auto, text, jsonl, csv or tsv."),
    passage_words: Optional[int] = typer.Option(None, min=1, help="Words per passage (folders: 200 by default; "
                                                                  "given for a file, its records are split too)."),
    overlap_words: Optional[int] = typer.Option(None, min=0, help="Words shared by consecutive passages "
                                                                  "(default: a fifth of --passage-words)."),
    normalize: Optional[bool] = typer.Option(None, "--normalize/--no-normalize",
                                             help="Cosine (normalised vectors) or raw inner product (default: "
                                                  "a retrieval model's own choice, else cosine)."),
    batch_size: int = typer.Option(64, min=1, help="Texts per forward pass."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch and FAISS CPU threads."),
) -> None:
    """Build an index from a corpus, streaming it with a progress bar."""
    from encoderkit.distributed import init_from_environment, share_work
    from encoderkit.index.encoders import open_encoder
    from encoderkit.index.store import build_index

    _threads(threads)
    if model == BM25_WORD:
        if kind not in (None, "bm25"):
            raise ConfigError(f"'bm25' instead of a model builds a BM25 index; --kind {kind} needs a model")
        kind, model = "bm25", None
    # Under torchrun every process embeds every N-th batch; the first one reads the corpus and writes the index.
    init_from_environment(cpu=True)
    encoder = open_encoder(model, batch_size=batch_size) if model is not None and kind != "bm25" else None
    index = share_work(encoder, lambda shared: build_index(
        None if shared is not None else model, corpus, output, kind=kind or "dense", faiss_type=faiss_type,
        normalize=normalize, overwrite=overwrite, fmt=corpus_format, text_field=text_field, id_field=id_field,
        passage_words=passage_words, overlap_words=overlap_words, batch_size=batch_size, encoder=shared))
    if index is None:
        return
    _say(f"indexed {len(index):,} documents into {output} ({describe(index)})")
    _say(f"try: encoderkit ask {output} \"your question\"")


@app.command("add")
def add(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="An index folder (encoderkit index build)."),
    corpus: Path = typer.Argument(..., help="More documents: a corpus file or a folder, as for build."),
    text_field: str = typer.Option("text", help="Text field of JSONL/CSV/TSV corpora."),
    id_field: Optional[str] = typer.Option(None, help="Id field (default: 'id' if present, else the record number)."),
    corpus_format: str = typer.Option("auto", "--format", help="auto, text, jsonl, csv or tsv."),
    passage_words: Optional[int] = typer.Option(None, min=1, help="Words per passage (as for build)."),
    overlap_words: Optional[int] = typer.Option(None, min=0, help="Words shared by consecutive passages."),
    model: Optional[str] = typer.Option(None, help="The index's model, if it has moved since the build."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch and FAISS CPU threads."),
) -> None:
    """Append documents to an index without rebuilding it (ids must be new)."""
    from encoderkit.index.store import add_documents

    _threads(threads)
    before = _count(index_path)
    index = add_documents(index_path, corpus, fmt=corpus_format, text_field=text_field, id_field=id_field,
                          passage_words=passage_words, overlap_words=overlap_words, model=model)
    _say(f"added {len(index) - before:,} documents to {index_path}; it now holds {len(index):,}")


def ask(
    index_path: Path = typer.Argument(..., metavar="INDEX", help="An index folder (encoderkit index build)."),
    questions: list[str] = typer.Argument(..., help="One or more questions."),
    k: int = typer.Option(5, "-k", help="Passages to show per question."),
    mode: Optional[str] = typer.Option(None, help="dense, bm25 or hybrid (default: the index's kind)."),
    model: Optional[str] = typer.Option(None, help="The index's model, if it has moved since the build."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per passage instead of text."),
    threads: Optional[int] = typer.Option(None, min=1, help="torch and FAISS CPU threads."),
) -> None:
    """Answer questions from an index: the best passages, with scores and where they come from."""
    from encoderkit.index.store import load_index
    from encoderkit.texts import as_text_list

    _threads(threads)
    as_text_list(questions, where=[f"question {i + 1}" for i in range(len(questions))])
    index = load_index(index_path, model=model)
    hits = index.search(questions, k=k, mode=mode)
    out = sys.stdout
    for number, question in enumerate(questions):
        if not as_json:
            out.write(f"{question}\n")
        for rank, (key, score, text) in enumerate(zip(hits.ids[number], hits.scores[number], hits.texts[number]), 1):
            source = index.document(key).source
            if as_json:
                out.write(json.dumps({"question": question, "rank": rank, "id": key, "score": round(float(score), 6),
                                      "text": text, "source": source}, ensure_ascii=False) + "\n")
            else:
                out.write(f"  {rank}. [{score:.4f}] {key}{_where(source)}\n     {' '.join(text.split())}\n")
        if not as_json and number < len(questions) - 1:
            out.write("\n")


def _where(source: dict) -> str:
    if "file" in source:
        return f"  ({source['file']}, line {source['line']})"
    return ""


def describe(index) -> str:
    parts = [index.kind]
    if index.manifest.get("dense"):
        dense = index.manifest["dense"]
        parts.append(f"FAISS {dense['faiss']['type']}, {dense['dim']}-d, "
                     f"{'cosine' if dense['normalize'] else 'inner product'}, model {dense['model']['path']}")
    return "; ".join(parts)


def _count(index_path: Path) -> int:
    from encoderkit.index.store import read_manifest

    return int(read_manifest(Path(index_path)).get("count", 0))


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)
        try:
            import faiss

            faiss.omp_set_num_threads(threads)
        except ImportError:
            pass


# -- encoderkit evaluate, for retrieval models -------------------------------------------------

#: Cut-offs of the recall@k curve.
CURVE = (1, 2, 5, 10, 20, 50, 100)


def evaluate_retrieval(model: Path, data: Path, loaded, *, query_field: str | None, positive_field: str | None,
                       data_format: str, report: Path | None, output_json: Path | None) -> dict:
    """``encoderkit evaluate`` on a retrieval model: rank the data's corpus, print the metrics and the
    worst queries; ``--json`` writes everything, ``--report`` a report with a recall@k plot."""
    from rich.table import Table

    from encoderkit.cli import console
    from encoderkit.data.pairs import read_ranking_set
    from encoderkit.metrics.retrieval import retrieval_metrics
    from encoderkit.tasks.retrieve import REPORTED, write_retrieval_report, worst_queries

    section = loaded.config.retrieve
    ranking = read_ranking_set(data, query_field or section.query_field, positive_field or section.positive_field,
                               section.negatives_field, data_format)
    metrics, ids, scores = loaded.evaluate_with_rankings(ranking)
    curve = {k: value for k, value in retrieval_metrics(ids, ranking.relevant, CURVE, ("recall",)).items()}
    curve = {int(name.split("@")[1]): value for name, value in curve.items()}
    worst = worst_queries(ranking, ids, scores)
    table = Table(title="retrieval")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in REPORTED:
        table.add_row(key, f"{metrics[key]:.4f}")
    console.print(table)
    _say(f"data: {data}: {ranking.describe()}")
    _say("worst queries (ndcg@10), with the top document retrieved:")
    for row in worst[:5]:
        top, score, hit = row.retrieved[0]
        _say(f"  {row.score:.3f}  {_short(row.query)}  ->  {'relevant' if hit else 'not relevant'} "
             f"{score:.3f} {_short(top)}")
    result = {"metrics": metrics, "recall_at_k": curve, "queries": len(ranking.queries),
              "documents": len(ranking.documents), "worst_queries": [row._asdict() for row in worst]}
    if output_json:
        from encoderkit.files import atomic_write_text

        atomic_write_text(output_json, json.dumps(result, indent=2, ensure_ascii=False))
    if report:
        report.mkdir(parents=True, exist_ok=True)
        path = write_retrieval_report(report, title=f"Evaluation of {model} on {data}", metrics=metrics,
                                      facts={"model": str(model), "data": f"{data} ({ranking.describe()})"},
                                      curve=curve, worst=worst)
        _say(f"report: {path}")
    return result


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

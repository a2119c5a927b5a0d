"""Retrieval: a bi-encoder trained on (query, positive) pairs with in-batch negatives.

    result = run(load_config("configs/retrieve_minilm.yaml"))
    model = encoderkit.load(result.model_dir)
    model.search("a dog catches a frisbee", documents, k=5)   # -> Hits(ids, scores, texts)

The recipe the runner follows for ``task: retrieve``: read pair files (query, positive, optional
hard negatives), build ``BiEncoder`` (one shared tower, or a copy for documents), batch pairs so
that no text appears twice in a batch, the in-batch-negatives loss (plain or cached), and
validation that ranks a corpus (the validation pairs' distinct positives, or a BEIR folder) and
reports nDCG@10, MRR@10, recall@k and MAP@10. ``RetrievalModel`` is what ``encoderkit.load()``
returns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from encoderkit.config import RetrieveConfig, RunConfig
from encoderkit.data.batching import NoDuplicatesBatchSampler, pad_batch
from encoderkit.data.pairs import (Pair, RankingSet, ranking_set_from_pairs, read_pairs, read_ranking_set,
                                   split_pairs)
from encoderkit.distributed import is_distributed
from encoderkit.errors import ConfigError
from encoderkit.heads.retrieval import BiEncoder, top_k
from encoderkit.losses import CachedContrastiveLoss, contrastive_loss
from encoderkit.metrics.retrieval import retrieval_metrics
from encoderkit.outputs import SearchMethods, check_k  # noqa: F401  (check_k: re-exported)
from encoderkit.tasks.base import Loaders, LossFunction, RunResult
from encoderkit.text_encoder import run_in_length_order
from encoderkit.texts import as_text_list

#: Cut-offs every evaluation reports (ndcg@10, recall@1 ... recall@100, ...).
CUTOFFS = (1, 5, 10, 100)
#: The metrics a report shows, in order; evaluation computes these (and map@100).
REPORTED = ("ndcg@10", "mrr@10", "map@10", "recall@1", "recall@5", "recall@10", "recall@100", "precision@10")


@dataclass
class RetrievalData:
    train: list[Pair]
    validation: RankingSet
    validation_pairs: list[Pair]
    test: RankingSet | None
    #: Training pairs that repeat an earlier pair, and test queries also found among training queries.
    duplicate_pairs: int = 0
    test_queries_in_train: int = 0


@dataclass(frozen=True)
class RetrieveSpec:
    """What a bi-encoder needs besides its weights: its towers and whether it normalises."""

    towers: str
    normalize: bool


# -- data ------------------------------------------------------------------------------------


def _read(config: RunConfig, path: str) -> list[Pair]:
    section = config.retrieve
    return read_pairs(path, section.query_field, section.positive_field, section.negatives_field, config.data.format)


def _ranking(config: RunConfig, path: str) -> tuple[RankingSet, list[Pair]]:
    """A validation/test file or BEIR folder as a ranking set (plus its pairs, for the loss)."""
    if Path(path).is_dir():
        return read_ranking_set(path), []
    pairs = _read(config, path)
    return ranking_set_from_pairs(pairs, path), pairs


def load_data(config: RunConfig) -> RetrievalData:
    """Read train/validation/test; carve validation queries out of train if no file is given."""
    if not config.data.train:
        raise ConfigError("data.train is not set; give the pair file (e.g. data.train=pairs.jsonl)")
    train = _read(config, config.data.train)
    if config.data.validation:
        validation, validation_pairs = _ranking(config, config.data.validation)
    elif config.data.validation_fraction > 0:
        train, validation_pairs = split_pairs(train, config.data.validation_fraction, config.seed)
        validation = ranking_set_from_pairs(validation_pairs, "the validation split")
    else:
        raise ConfigError("no validation data: set data.validation or data.validation_fraction > 0")
    test = _ranking(config, config.data.test)[0] if config.data.test else None
    train_queries = {pair.query for pair in train}
    return RetrievalData(train, validation, validation_pairs, test,
                         duplicate_pairs=len(train) - len(set(train)),
                         test_queries_in_train=sum(query in train_queries for query in test.queries) if test else 0)


class PairDataset(Dataset):
    """Token ids of each pair: (query ids, positive ids, [negative ids ...])."""

    def __init__(self, pairs: list[Pair], tokenizer):
        texts = [text for pair in pairs for text in pair.texts]
        ids = tokenizer.encode_batch(texts)
        self.items, start = [], 0
        for pair in pairs:
            count = len(pair.texts)
            self.items.append((ids[start], ids[start + 1], ids[start + 2 : start + count]))
            start += count

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


def collate_pairs(items, pad_id: int) -> dict[str, torch.Tensor]:
    """Queries (B,T); documents (D,T): the B positives, then every hard negative of the batch."""
    query_ids, query_mask = pad_batch([item[0] for item in items], pad_id)
    documents = [item[1] for item in items] + [negative for item in items for negative in item[2]]
    document_ids, document_mask = pad_batch(documents, pad_id)
    return {"query_ids": query_ids, "query_mask": query_mask, "document_ids": document_ids,
            "document_mask": document_mask}


@dataclass
class EncodedRankingSet:
    """A ranking set with its texts tokenized once (validation runs many times)."""

    ranking: RankingSet
    query_ids: list[list[int]]
    document_ids: list[list[int]]
    pad_id: int
    batch_size: int
    #: Groups of (query, positive) positions without a repeated text: the validation loss's batches.
    loss_batches: list[list[tuple[int, int]]]


def encode_ranking_set(ranking: RankingSet, tokenizer, batch_size: int, loss_batch_size: int) -> EncodedRankingSet:
    links = ranking.pairs
    sampler = NoDuplicatesBatchSampler([(ranking.queries[q], ranking.documents[d]) for q, d in links],
                                       loss_batch_size, seed=0)
    batches = [[links[i] for i in batch] for batch in sampler] if links else []
    return EncodedRankingSet(ranking, tokenizer.encode_batch(ranking.queries), tokenizer.encode_batch(ranking.documents),
                             tokenizer.pad_id, batch_size, [batch for batch in batches if len(batch) > 1])


# -- evaluation ------------------------------------------------------------------------------


def embed(model: BiEncoder, id_lists, pad_id: int, batch_size: int, documents: bool, progress=None) -> np.ndarray:
    """(N,H) float32 embeddings of tokenized texts by the query or the document tower."""
    module = model.document_tower if documents else model.text_encoder
    return run_in_length_order(module, id_lists, pad_id, batch_size, model.output_dim, progress)


def rank(query_vectors: np.ndarray, document_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Document positions (Q,k) and scores (Q,k), best first, by exact dot product."""
    return top_k(query_vectors, document_vectors, k)


def evaluate_ranking(query_vectors: np.ndarray, document_vectors: np.ndarray, ranking: RankingSet,
                     ks=CUTOFFS) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Metrics of one ranking set, with the rankings (Q, max k) they came from."""
    ids, scores = rank(query_vectors, document_vectors, max(ks))
    metrics = retrieval_metrics(ids, ranking.relevant, ks=ks)
    if tuple(ks) == CUTOFFS:  # the standard cut-offs: only the metrics worth a line in a log
        metrics = {name: metrics[name] for name in (*REPORTED, "map@100")}
    return metrics, ids, scores


# -- the task --------------------------------------------------------------------------------


class RetrieveTask:
    """``task: retrieve``: see the module docstring."""

    name = "retrieve"
    section = RetrieveConfig

    def read_data(self, config: RunConfig) -> RetrievalData:
        return load_data(config)

    def describe_data(self, data: RetrievalData) -> str:
        negatives = sum(bool(pair.negatives) for pair in data.train)
        line = (f"data: {len(data.train)} train pairs"
                + (f" ({negatives} with hard negatives)" if negatives else "")
                + f" / validation {data.validation.describe()}"
                + (f" / test {data.test.describe()}" if data.test else ""))
        if data.duplicate_pairs:
            line += f"; {data.duplicate_pairs} training pairs repeat an earlier one (kept)"
        if data.test_queries_in_train:
            line += f"; {data.test_queries_in_train} test queries also occur in train (leakage)"
        return line

    def training_texts(self, data: RetrievalData) -> list[str]:
        return [text for pair in data.train for text in pair.texts]

    def special_tokens(self, config: RunConfig) -> tuple[str, ...]:
        return ()

    def spec(self, config: RunConfig, data: RetrievalData) -> RetrieveSpec:
        return RetrieveSpec(config.retrieve.towers, config.retrieve.normalize)

    def build_model(self, config: RunConfig, text_encoder: nn.Module, spec: RetrieveSpec) -> BiEncoder:
        return BiEncoder(text_encoder, spec.towers, spec.normalize)

    def loaders(self, config: RunConfig, data: RetrievalData, spec: RetrieveSpec, tokenizer) -> Loaders:
        batch_size = config.train.batch_size
        sampler = NoDuplicatesBatchSampler([pair.texts for pair in data.train], batch_size, seed=config.seed)
        train = DataLoader(PairDataset(data.train, tokenizer), batch_sampler=sampler,
                           collate_fn=functools.partial(collate_pairs, pad_id=tokenizer.pad_id))

        def ranking(ranking_set: RankingSet) -> EncodedRankingSet:
            return encode_ranking_set(ranking_set, tokenizer, config.train.eval_batch_size, batch_size)

        # Validation and test rank a corpus: they are ranking sets, not loaders of batches.
        return Loaders(train=train, validation=ranking(data.validation),
                       test=ranking(data.test) if data.test is not None else None)

    def loss_function(self, config: RunConfig, data: RetrievalData, spec: RetrieveSpec) -> LossFunction:
        section = config.retrieve
        criterion = functools.partial(contrastive_loss, scale=section.loss.scale, symmetric=section.loss.symmetric)
        if section.cache_chunk_size and is_distributed():
            raise ConfigError("retrieve.cache_chunk_size (the cached loss) runs in one process only; with several "
                              "processes drop it and give each process a share of train.batch_size")
        cached = (CachedContrastiveLoss(section.loss.scale, section.loss.symmetric, section.cache_chunk_size)
                  if section.cache_chunk_size else None)

        def loss(model: BiEncoder, batch) -> torch.Tensor:
            queries = (batch["query_ids"], batch["query_mask"])
            documents = (batch["document_ids"], batch["document_mask"])
            if cached is not None:
                return cached(model.encode_queries, model.encode_documents, queries, documents)
            return criterion(*model(*queries, *documents))

        loss.criterion = criterion  # evaluate() reuses it on the validation embeddings
        return loss

    def evaluate(self, model: BiEncoder, loader: EncodedRankingSet, spec: RetrieveSpec,
                 loss_function: LossFunction | None = None) -> dict:
        queries = embed(model, loader.query_ids, loader.pad_id, loader.batch_size, documents=False)
        documents = embed(model, loader.document_ids, loader.pad_id, loader.batch_size, documents=True)
        metrics, _, _ = evaluate_ranking(queries, documents, loader.ranking)
        if loss_function is not None and loader.loss_batches:
            q, d = torch.from_numpy(queries), torch.from_numpy(documents)
            losses = [float(loss_function.criterion(q[[i for i, _ in batch]], d[[j for _, j in batch]]))
                      for batch in loader.loss_batches]
            metrics["loss"] = float(np.mean(losses))
        return metrics

    def save_spec(self, directory: Path, spec: RetrieveSpec) -> dict:
        return {"towers": spec.towers, "normalize": spec.normalize}

    def load_spec(self, config: RunConfig, directory: Path, meta: dict) -> RetrieveSpec:
        return RetrieveSpec(str(meta.get("towers", config.retrieve.towers)),
                            bool(meta.get("normalize", config.retrieve.normalize)))

    def predictor(self, model: BiEncoder, config: RunConfig, spec: RetrieveSpec,
                  directory: Path | None) -> "RetrievalModel":
        return RetrievalModel(model, config, directory)

    def write_report(self, run_dir: Path, config: RunConfig, spec: RetrieveSpec, result: RunResult) -> Path:
        return write_retrieval_report(run_dir, title=f"Retrieval report: {Path(config.data.train).parent.name or 'run'}",
                                      metrics=result.test_metrics or result.validation_metrics, facts=result.facts,
                                      history=result.history, metric=config.train.metric)


def save_checkpoint_retriever(checkpoint: str | Path, directory: str | Path, max_length: int | None = None) -> Path:
    """A retrieval model directory holding a local checkpoint as it is (zero-shot, shared towers),
    with the pooling and normalisation the folder declares, so that export, indexes and serving
    take an untrained sentence encoder (e.g. all-MiniLM-L6-v2) like a trained model.

    Args:
        checkpoint: a Hugging Face or sentence-transformers folder, or ``package:NAME/SUBDIR``.
        directory: the model directory to write.
        max_length: truncation in tokens (default: what the folder declares).
    """
    from encoderkit.checkpoint_folder import read_sentence_transformer_settings
    from encoderkit.config import validate_config
    from encoderkit.errors import ConfigError
    from encoderkit.model_dir import save_model
    from encoderkit.text_encoder import build_text_encoder
    from encoderkit.tokenization import make_tokenizer

    settings = read_sentence_transformer_settings(checkpoint)
    if settings and settings.pooling_error:
        raise ConfigError(settings.pooling_error)
    normalize = bool(settings and settings.normalize)
    max_length = max_length or (settings.max_length if settings else None) or 256  # 256: the config's default
    config = validate_config({"task": "retrieve", "tokenizer": {"kind": "pretrained", "max_length": max_length},
                              "encoder": {"kind": "pretrained", "path": str(checkpoint)},
                              "pooling": (settings.pooling if settings else None) or "mean",
                              "retrieve": {"towers": "shared", "normalize": normalize}})
    spec = RetrieveSpec("shared", normalize)
    model = BiEncoder(build_text_encoder(config, make_tokenizer(config, [])), spec.towers, spec.normalize)
    return save_model(directory, model, config, RetrieveTask(), spec)


# -- reports ---------------------------------------------------------------------------------


class WorstQuery(NamedTuple):
    query: str
    score: float
    relevant: list[str]
    retrieved: list[tuple[str, float, bool]]  # text, score, relevant?


def worst_queries(ranking: RankingSet, ids: np.ndarray, scores: np.ndarray, metric: str = "ndcg@10",
                  count: int = 10, shown: int = 3) -> list[WorstQuery]:
    """The ``count`` queries scoring lowest on ``metric``, each with its top ``shown`` documents."""
    from encoderkit.metrics.retrieval import per_query

    values = per_query(metric, ids, ranking.relevant)
    rows = []
    for q in np.argsort(values, kind="stable")[:count]:
        relevant = ranking.relevant[q]
        rows.append(WorstQuery(ranking.queries[q], float(values[q]), [ranking.documents[d] for d in relevant],
                               [(ranking.documents[d], float(s), int(d) in relevant)
                                for d, s in zip(ids[q][:shown], scores[q][:shown])]))
    return rows


def plot_recall_curve(curves: dict[str, dict[int, float]], path: Path) -> None:
    """Recall@k against k (log scale), one line per model or split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        axis.plot(list(curve), list(curve.values()), marker="o", label=name)
    axis.set_xscale("log")
    axis.set_xlabel("k (documents retrieved)")
    axis.set_ylabel("recall@k")
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title("Recall against k")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _cell(text: str, limit: int = 90) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def write_retrieval_report(folder: Path, *, title: str, metrics: dict, facts: dict[str, str],
                           history: list[dict] | None = None, metric: str = "ndcg@10",
                           curve: dict[int, float] | None = None, worst: list[WorstQuery] | None = None) -> Path:
    """``report.md`` with the metrics table, recall@k against k, the worst queries and a learning curve."""
    from encoderkit.files import atomic_write_text
    from encoderkit.report import metrics_table, plot_learning_curve

    folder = Path(folder)
    lines = [f"# {title}", ""] + [f"- **{key}**: {value}" for key, value in facts.items()]
    lines += ["", "## Metrics", "", metrics_table(metrics, REPORTED), ""]
    if curve:
        plot_recall_curve({"recall": curve}, folder / "recall_at_k.png")
        lines += ["## Recall against k", "", "![recall@k](recall_at_k.png)", ""]
    if worst:
        lines += ["## Worst queries", "", "| query | score | relevant | retrieved (score, ✓ = relevant) |",
                  "|---|---:|---|---|"]
        for row in worst:
            retrieved = "<br>".join(f"{'✓' if hit else '✗'} {score:.3f} {_cell(text, 60)}"
                                    for text, score, hit in row.retrieved)
            lines.append(f"| {_cell(row.query)} | {row.score:.3f} | {_cell(row.relevant[0] if row.relevant else '', 60)}"
                         f"{f' (+{len(row.relevant) - 1})' if len(row.relevant) > 1 else ''} | {retrieved} |")
        lines.append("")
    if history:
        plot_learning_curve(history, metric, folder / "learning_curve.png")
        lines += ["## Learning curve", "", "![learning curve](learning_curve.png)", ""]
    path = folder / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path


# -- the loaded model ------------------------------------------------------------------------


class RetrievalModel(SearchMethods):
    """A loaded bi-encoder: ``encode_queries``, ``encode_documents``, ``search`` and ``evaluate`` on raw texts.

    Each takes a list of texts, or one ``str`` (then it returns one result, not a list of one).
    """

    task = "retrieve"

    def __init__(self, model: BiEncoder, config: RunConfig, directory: Path | None = None):
        self.model = model.eval()
        self.config = config
        self.directory = directory

    @property
    def tokenizer(self):
        return self.model.text_encoder.tokenizer

    @property
    def dim(self) -> int:
        return int(self.model.output_dim)

    @property
    def normalize(self) -> bool:
        return self.model.normalize

    def _encode(self, texts, batch_size: int, documents: bool, progress=None) -> np.ndarray:
        items, single = as_text_list(texts)
        vectors = embed(self.model, self.tokenizer.encode_batch(items), self.tokenizer.pad_id, batch_size,
                        documents, progress)
        return vectors[0] if single else vectors

    def encode_queries(self, texts, batch_size: int = 64) -> np.ndarray:
        """(N,H) float32 query embeddings; (H,) for one str."""
        return self._encode(texts, batch_size, documents=False)

    def encode_documents(self, texts, batch_size: int = 64, progress=None) -> np.ndarray:
        """(N,H) float32 document embeddings (the document tower); (H,) for one str."""
        return self._encode(texts, batch_size, documents=True, progress=progress)

    def explain(self, query: str, document: str, method: str | None = None, *, level: str = "word",
                steps: int = 50):
        """Why ``document`` scores what it does for ``query``: each word's share of the score, both sides.

        Args:
            method: ``ig`` (integrated gradients, default), ``grad-input``, ``occlusion`` or
                ``decomposition`` (exact, mean pooling only).
            level: ``word`` (subword pieces summed into words) or ``token``.

        Returns:
            ``encoderkit.interpret.SimilarityExplanation``: ``score``, ``query`` and ``document`` (each
            with ``units`` and ``scores``).
        """
        from encoderkit.interpret.retrieval import explain_similarity

        return explain_similarity(self, query, document, method, level=level, steps=steps)

    def evaluate(self, ranking: RankingSet, batch_size: int = 64, ks=CUTOFFS) -> dict[str, float]:
        """Metrics on a ranking set (``encoderkit.data.pairs.read_ranking_set``)."""
        return self.evaluate_with_rankings(ranking, batch_size, ks)[0]

    def evaluate_with_rankings(self, ranking: RankingSet, batch_size: int = 64, ks=CUTOFFS):
        """``(metrics, ids, scores)``: the metrics and the (Q, max k) rankings they were computed on."""
        queries = self.encode_queries(ranking.queries, batch_size)
        documents = self.encode_documents(ranking.documents, batch_size)
        return evaluate_ranking(queries, documents, ranking, ks)

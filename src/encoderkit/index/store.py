"""Search indexes on disk: dense (FAISS), lexical (BM25 via bm25s), or both fused (hybrid).

    INDEX/
      manifest.json     format, kind, document count, the model (path + SHA-256 of its weights) and
                        its embedding settings, the FAISS and BM25 settings, size and SHA-256 of every file
      documents.jsonl   one {"id", "text", "source"} per document, in index order
      dense.faiss       dense and hybrid: the vectors (exact inner product, HNSW or IVF)
      bm25/             bm25 and hybrid: the bm25s index (no pickles)

An index is written whole under a temporary name and renamed into place (``files.replace_directory``):
a reader sees the old index or the new one. Loading checks every file against the manifest, so a
truncated or damaged file is one line naming it, and refuses a query model whose weights differ
from the ones the documents were embedded with.

Hybrid search fuses the two rankings by reciprocal rank (Cormack et al., 2009)::

    score(d) = sum over rankings r of 1 / (60 + rank_r(d))       rank from 1; absent: no term
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from encoderkit.embed import _progress_bar
from encoderkit.errors import ConfigError, DataError, EncoderkitError, ModelDirectoryError
from encoderkit.files import replace_directory, temporary_sibling
from encoderkit.index.documents import Document, check_unique_ids, iter_documents
from encoderkit.index.encoders import IndexEncoder, open_encoder
from encoderkit.outputs import Hits

FORMAT = "encoderkit-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS = "documents.jsonl"
DENSE_FILE = "dense.faiss"
BM25_DIR = "bm25"
KINDS = ("dense", "bm25", "hybrid")
FAISS_TYPES = ("exact", "hnsw", "ivf")
#: Reciprocal-rank fusion constant, and how deep each ranking is read before fusing.
RRF_K = 60
FUSION_DEPTH = 100
#: BM25 as the issue's peers run it: bm25s.tokenize(texts, stopwords="en") and bm25s.BM25() defaults.
BM25_SETTINGS = {"stopwords": "en", "method": "lucene", "k1": 1.5, "b": 0.75}
HNSW_DEFAULTS = {"m": 32, "ef_construction": 200, "ef_search": 128}
BLOCK = 4096


def require(module: str):
    """Import an optional dependency of the retrieval extra, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        name = {"faiss": "faiss-cpu"}.get(module, module)
        raise EncoderkitError(f"search indexes need {name}, which is not installed: "
                              "pip install 'encoderkit[retrieval]'") from None


# -- the index -------------------------------------------------------------------------------


class Index:
    """A loaded index: ``search(texts, k) -> Hits(ids, scores, texts)``; build with ``build_index``."""

    def __init__(self, directory: Path, manifest: dict, documents: list[Document], dense=None, bm25=None,
                 encoder: IndexEncoder | None = None):
        self.directory = Path(directory)
        self.manifest = manifest
        self.documents = documents
        self.dense = dense
        self.bm25 = bm25
        self.encoder = encoder
        self._by_id = {str(document.id): document for document in documents}

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    def __len__(self) -> int:
        return len(self.documents)

    def document(self, key) -> Document:
        """The document with id ``key`` (its text and source)."""
        return self._by_id[str(key)]

    def search(self, texts, k: int = 10, mode: str | None = None) -> Hits:
        """The ``k`` best documents for each query text.

        Args:
            texts: one query (``str``) or a list of them (the rules of ``encoderkit.texts.as_text_list``).
            k: results per query, 1 to the number of documents.
            mode: ``dense``, ``bm25`` or ``hybrid`` (default: the index's kind; a hybrid index can
                answer all three).

        Returns:
            ``Hits(ids, scores, texts)``: the documents' ids, scores (cosine or inner product for
            dense, BM25 for bm25, reciprocal-rank fusion for hybrid) and texts, best first.
        """
        from encoderkit.outputs import check_k
        from encoderkit.texts import as_text_list

        queries, single = as_text_list(texts)
        check_k(k, len(self.documents))
        positions, scores = self.search_positions(queries, k, mode)
        if (positions < 0).any():  # an approximate index may find fewer than k: keep what it found
            scores = [row[found >= 0] for row, found in zip(scores, positions)]
            positions = [found[found >= 0] for found in positions]
        hits = Hits([[self.documents[p].id for p in row] for row in positions], scores,
                    [[self.documents[p].text for p in row] for row in positions])
        return hits.first() if single else hits

    def search_positions(self, queries: list[str], k: int, mode: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Document positions (Q,k) and scores (Q,k) for already-checked query texts."""
        mode = mode or self.kind
        if mode not in KINDS:
            raise ConfigError(f"unknown search mode {mode!r}; valid modes: {', '.join(KINDS)}")
        if mode != "bm25" and self.dense is None or mode != "dense" and self.bm25 is None:
            raise ConfigError(f"{self.directory} is a {self.kind} index; it cannot search in {mode} mode "
                              f"(build it with --kind hybrid for dense, bm25 and hybrid search)")
        if mode == "dense":
            return self._dense(queries, k)
        if mode == "bm25":
            return self._bm25(queries, k)
        depth = min(len(self.documents), max(k, FUSION_DEPTH))
        return reciprocal_rank_fusion([self._dense(queries, depth)[0], self._bm25(queries, depth)[0]], k)

    def _dense(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        vectors = self.encoder.encode_queries(queries)
        if self.manifest["dense"]["normalize"]:
            vectors = _unit_rows(vectors)
        faiss_settings = self.manifest["dense"]["faiss"]
        if faiss_settings["type"] == "hnsw":
            self.dense.hnsw.efSearch = max(int(faiss_settings["ef_search"]), k)
        elif faiss_settings["type"] == "ivf":
            self.dense.nprobe = int(faiss_settings["nprobe"])
        scores, positions = self.dense.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return positions, scores

    def _bm25(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        positions, scores = self.bm25.retrieve(bm25_tokens(queries), k=k, show_progress=False)
        return positions.astype(np.int64), scores.astype(np.float32)


def reciprocal_rank_fusion(rankings: list[np.ndarray], k: int, constant: int = RRF_K) -> tuple[np.ndarray, np.ndarray]:
    """Fuse rankings (each (Q, depth) of positions, best first) into the top ``k`` by RRF score."""
    queries = rankings[0].shape[0]
    positions = np.empty((queries, k), dtype=np.int64)
    scores = np.empty((queries, k), dtype=np.float32)
    for q in range(queries):
        fused: dict[int, float] = {}
        for ranking in rankings:
            for rank, position in enumerate(ranking[q], start=1):
                if position >= 0:  # FAISS pads with -1 when it finds fewer than asked
                    fused[int(position)] = fused.get(int(position), 0.0) + 1.0 / (constant + rank)
        best = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        positions[q] = [position for position, _ in best] + [-1] * (k - len(best))
        scores[q] = [score for _, score in best] + [0.0] * (k - len(best))
    return positions, scores


def bm25_tokens(texts: list[str]) -> list[list[str]]:
    bm25s = require("bm25s")
    return bm25s.tokenize(texts, stopwords=BM25_SETTINGS["stopwords"], return_ids=False, show_progress=False)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# -- building ----------------------------------------------------------------------------------


def build_index(model: str | Path | None, corpus: str | Path, output: str | Path, *, kind: str = "dense",
                faiss_type: str = "exact", normalize: bool | None = None, overwrite: bool = False,
                fmt: str = "auto", text_field: str = "text", id_field: str | None = None,
                passage_words: int | None = None, overlap_words: int | None = None, batch_size: int = 64,
                hnsw_m: int = HNSW_DEFAULTS["m"], ivf_lists: int | None = None, progress: bool = True,
                encoder: IndexEncoder | None = None) -> Index:
    """Stream a corpus into a new index at ``output`` and return it loaded.

    Args:
        model: the model folder that embeds documents and queries (dense and hybrid; None for bm25).
        corpus: a corpus file (text/JSONL/CSV/TSV, plain or compressed) or a folder of .txt/.md/.html.
        output: the index directory to write (refused if it exists, unless ``overwrite``).
        kind: ``dense``, ``bm25`` or ``hybrid`` (both, fused by reciprocal rank).
        faiss_type: ``exact`` (inner product over every vector), ``hnsw`` or ``ivf`` (approximate).
        normalize: L2-normalise vectors so inner product is cosine (default: a retrieval model's own
            choice; cosine for other models).
        overwrite: replace an existing index at ``output``.
        fmt, text_field, id_field: how to read a corpus file (``encoderkit.embed.read_records``).
        passage_words, overlap_words: passage length and overlap in words for folders (defaults 200
            and 40); given for a file, its records are cut into passages too.
        batch_size: texts per forward pass.
        hnsw_m, ivf_lists: HNSW links per node; IVF lists (default about 4 sqrt(N)).
        progress: show a progress bar.
        encoder: an already opened ``IndexEncoder`` (instead of ``model``).
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown index kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if faiss_type not in FAISS_TYPES:
        raise ConfigError(f"unknown FAISS index type {faiss_type!r}; valid types: {', '.join(FAISS_TYPES)}")
    output = Path(output)
    check_output(output, overwrite)
    dense = kind in ("dense", "hybrid")
    if dense:
        require("faiss")
        if encoder is None:
            if model is None:
                raise ConfigError(f"a {kind} index needs a model to embed the documents")
            encoder = open_encoder(model, batch_size=batch_size)
    elif model is not None or encoder is not None:
        raise ConfigError("a bm25 index uses no model: write 'bm25' in place of the model (model=None in Python), "
                          "or build --kind hybrid for BM25 and dense search together")
    if kind != "dense":
        require("bm25s")
    read = lambda: documents_of(corpus, fmt, text_field, id_field, passage_words, overlap_words)  # noqa: E731
    total = sum(1 for _ in read())  # every record checked (fields, texts, unique ids) before any work
    if total == 0:
        raise DataError(f"{corpus}: the corpus is empty; there is nothing to index")
    dense_settings = None
    if dense:
        if normalize is None:
            normalize = encoder.settings["normalize"] if encoder.model["kind"] == "encoderkit retrieval model" else True
        dense_settings = {"normalize": bool(normalize), "dim": encoder.dim, "model": encoder.model,
                          "embedding": encoder.settings, "faiss": faiss_settings(faiss_type, total, hnsw_m, ivf_lists)}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "count": total,
                "corpus": str(corpus), "dense": dense_settings, "bm25": dict(BM25_SETTINGS) if kind != "dense" else None}
    tmp = temporary_sibling(output)
    tmp.mkdir(parents=True)
    try:
        documents, pending, faiss_index = [], [], new_faiss_index(dense_settings) if dense else None
        with open(tmp / DOCUMENTS, "w", encoding="utf-8") as handle, _progress_bar(total, progress, "indexing") as bar:
            for block in _blocks(read(), BLOCK):
                write_documents(handle, block)
                if dense:
                    add_vectors(faiss_index, encoder.encode_documents([d.text for d in block], progress=bar),
                                dense_settings, pending)
                elif bar is not None:
                    bar(len(block))
                documents.extend(block)
        return _finish(tmp, output, manifest, documents, faiss_index, encoder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def add_documents(index: str | Path | Index, corpus: str | Path, *, fmt: str = "auto", text_field: str = "text",
                  id_field: str | None = None, passage_words: int | None = None, overlap_words: int | None = None,
                  progress: bool = True, model=None) -> Index:
    """Append a corpus to an existing index (the dense part without a rebuild; BM25 is re-indexed,
    which takes seconds). Ids already in the index are refused. Returns the updated index."""
    index = index if isinstance(index, Index) else load_index(index, model=model)
    taken = {str(document.id): "in the index" for document in index.documents}
    read = lambda: check_unique_ids(iter_documents(corpus, fmt, text_field, id_field,  # noqa: E731
                                                   *_passage_settings(passage_words, overlap_words)),
                                    str(corpus), taken)
    total = sum(1 for _ in read())
    if total == 0:
        raise DataError(f"{corpus}: the corpus is empty; there is nothing to add")
    manifest = json.loads(json.dumps(index.manifest))
    manifest["count"] = len(index) + total
    tmp = temporary_sibling(index.directory)
    tmp.mkdir()
    try:
        shutil.copyfile(index.directory / DOCUMENTS, tmp / DOCUMENTS)
        documents = list(index.documents)
        with open(tmp / DOCUMENTS, "a", encoding="utf-8") as handle, _progress_bar(total, progress, "adding") as bar:
            for block in _blocks(read(), BLOCK):
                write_documents(handle, block)
                if index.dense is not None:
                    add_vectors(index.dense, index.encoder.encode_documents([d.text for d in block], progress=bar),
                                manifest["dense"], [])
                elif bar is not None:
                    bar(len(block))
                documents.extend(block)
        return _finish(tmp, index.directory, manifest, documents, index.dense, index.encoder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _finish(tmp: Path, output: Path, manifest: dict, documents: list[Document], faiss_index, encoder) -> Index:
    """Write the FAISS and BM25 parts and the manifest into ``tmp``, then put it in place of ``output``."""
    bm25 = None
    if faiss_index is not None:
        require("faiss").write_index(faiss_index, str(tmp / DENSE_FILE))
    if manifest["bm25"] is not None:
        bm25 = build_bm25([document.text for document in documents])
        bm25.save(str(tmp / BM25_DIR), show_progress=False)
    manifest["files"] = {str(path.relative_to(tmp)): file_record(path)
                         for path in sorted(tmp.rglob("*")) if path.is_file()}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")  # last: the index is complete
    replace_directory(tmp, output)
    return Index(output, manifest, documents, faiss_index, bm25, encoder)


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse to replace an existing index without ``overwrite``, and any other folder at all."""
    if not output.exists():
        return
    if output.is_dir() and not any(output.iterdir()):
        return
    if not (output / MANIFEST).is_file():
        raise EncoderkitError(f"{output} exists and is not an encoderkit index; choose another output folder")
    if not overwrite:
        raise EncoderkitError(f"{output} already holds an index; pass --overwrite to replace it, "
                              "or use 'encoderkit index add' to append documents to it")


def documents_of(corpus, fmt, text_field, id_field, passage_words, overlap_words) -> Iterator[Document]:
    documents = iter_documents(corpus, fmt, text_field, id_field, *_passage_settings(passage_words, overlap_words))
    if passage_words is not None and not Path(corpus).is_dir():
        documents = split_records(documents, *_passage_settings(passage_words, overlap_words))
    return check_unique_ids(documents, str(corpus))


def _passage_settings(passage_words: int | None, overlap_words: int | None) -> tuple[int, int]:
    """Words per passage and overlap; the default overlap is a fifth of the passage."""
    from encoderkit.index.documents import PASSAGE_WORDS

    words = PASSAGE_WORDS if passage_words is None else passage_words
    return words, (words // 5 if overlap_words is None else overlap_words)


def split_records(documents: Iterable[Document], passage_words: int, overlap_words: int) -> Iterator[Document]:
    """Cut each record of a corpus file into passages (ids ``ID#N``), for long documents."""
    from encoderkit.index.documents import passages

    for document in documents:
        for number, (start, passage) in enumerate(passages(document.text, passage_words, overlap_words)):
            yield Document(f"{document.id}#{number}", passage,
                           {**document.source, "passage": number, "char": start})


def _blocks(documents: Iterable[Document], size: int) -> Iterator[list[Document]]:
    block = []
    for document in documents:
        block.append(document)
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


def write_documents(handle, documents: list[Document]) -> None:
    for document in documents:
        handle.write(json.dumps({"id": document.id, "text": document.text, "source": document.source},
                                ensure_ascii=False) + "\n")


def faiss_settings(faiss_type: str, total: int, hnsw_m: int, ivf_lists: int | None) -> dict:
    if faiss_type == "hnsw":
        return {"type": "hnsw", "m": int(hnsw_m), "ef_construction": HNSW_DEFAULTS["ef_construction"],
                "ef_search": HNSW_DEFAULTS["ef_search"]}
    if faiss_type == "ivf":
        # FAISS wants about 39 training vectors per list; the first vectors of the corpus train it.
        lists = ivf_lists or max(1, min(round(4 * math.sqrt(total)), total // 39))
        if lists > total:
            raise ConfigError(f"an IVF index with {lists} lists needs at least {lists} documents; this corpus has "
                              f"{total} (lower --ivf-lists or use the exact index)")
        return {"type": "ivf", "lists": int(lists), "nprobe": min(int(lists), 16),
                "train_size": int(min(total, max(39 * lists, 20000)))}
    return {"type": "exact"}


def new_faiss_index(settings: dict):
    faiss = require("faiss")
    dim, options = settings["dim"], settings["faiss"]
    if options["type"] == "hnsw":
        index = faiss.IndexHNSWFlat(dim, options["m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = options["ef_construction"]
        return index
    if options["type"] == "ivf":
        # (FAISS's Python wrapper keeps the quantizer alive as long as the index.)
        return faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, options["lists"], faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexFlatIP(dim)


def add_vectors(index, vectors: np.ndarray, settings: dict, pending: list) -> None:
    """Add a block of document vectors; an untrained IVF index first gathers ``train_size`` of them
    in ``pending``, trains on them, then adds them."""
    vectors = np.ascontiguousarray(_unit_rows(vectors) if settings["normalize"] else vectors, dtype=np.float32)
    if index.is_trained:
        index.add(vectors)
        return
    pending.append(vectors)
    gathered = sum(len(block) for block in pending)
    if gathered >= settings["faiss"]["train_size"]:
        sample = np.concatenate(pending)
        index.train(sample)
        index.add(sample)
        pending.clear()


def build_bm25(texts: list[str]):
    bm25s = require("bm25s")
    retriever = bm25s.BM25(method=BM25_SETTINGS["method"], k1=BM25_SETTINGS["k1"], b=BM25_SETTINGS["b"])
    retriever.index(bm25s.tokenize(texts, stopwords=BM25_SETTINGS["stopwords"], show_progress=False),
                    show_progress=False)
    return retriever


# -- loading -----------------------------------------------------------------------------------


def file_record(path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise DataError(f"index not found: {directory}")
    if not path.is_file():
        raise DataError(f"{directory} is not an encoderkit index (no {MANIFEST}); build one with 'encoderkit index build'")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is damaged (not valid JSON: {error}); rebuild the index") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{path} was not written by encoderkit (no format '{FORMAT}')")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{directory} has index format v{manifest.get('format_version')}; this encoderkit reads "
                        f"v{FORMAT_VERSION}: rebuild the index")
    for name, expected in (manifest.get("files") or {}).items():
        file = directory / name
        if not file.is_file():
            raise DataError(f"{directory} is incomplete: {name} is missing; rebuild the index")
        actual = file_record(file)
        if actual != expected:
            what = "truncated" if actual["bytes"] < expected["bytes"] else "damaged"
            raise DataError(f"{file} is {what} ({actual['bytes']:,} bytes, its manifest says {expected['bytes']:,} "
                            "with another checksum); rebuild the index or copy it again")
    return manifest


def load_index(path: str | Path, model: str | Path | IndexEncoder | None = None) -> Index:
    """Open an index for searching.

    Args:
        path: the index directory (``encoderkit index build``).
        model: the model to embed queries with (default: the one recorded in the manifest). Any
            model whose weights differ from the ones the index was built with is refused.
    """
    directory = Path(path)
    manifest = read_manifest(directory)
    documents = [Document(record["id"], record["text"], record.get("source") or {})
                 for record in _document_records(directory / DOCUMENTS)]
    dense = bm25 = encoder = None
    if manifest.get("dense"):
        faiss = require("faiss")
        try:
            dense = faiss.read_index(str(directory / DENSE_FILE))
        except RuntimeError as error:
            raise DataError(f"{directory / DENSE_FILE} is damaged ({str(error).splitlines()[0][:120]}); "
                            "rebuild the index") from None
        encoder = matching_encoder(directory, manifest["dense"], model)
    if manifest.get("bm25"):
        bm25s = require("bm25s")
        try:
            bm25 = bm25s.BM25.load(str(directory / BM25_DIR), show_progress=False)
        except Exception as error:  # bm25s raises several types for a broken file
            raise DataError(f"{directory / BM25_DIR} is damaged ({type(error).__name__}); rebuild the index") from None
    counts = {len(documents), manifest.get("count")} | ({dense.ntotal} if dense is not None else set())
    if len(counts) != 1:
        raise DataError(f"{directory} is inconsistent: {len(documents)} documents, manifest count "
                        f"{manifest.get('count')}, {dense.ntotal if dense is not None else '-'} vectors; rebuild it")
    return Index(directory, manifest, documents, dense, bm25, encoder)


def _document_records(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{path}:{number} is damaged (not valid JSON); rebuild the index") from None


def matching_encoder(directory: Path, dense: dict, model) -> IndexEncoder:
    """The query encoder: ``model`` or the recorded one, refused unless its weights are the index's."""
    built = dense["model"]
    if isinstance(model, IndexEncoder):
        encoder = model
    else:
        source = model if model is not None else built["path"]
        settings = dense["embedding"] if built["kind"] == "checkpoint" else {}
        try:
            encoder = open_encoder(source, settings.get("pooling"), settings.get("normalize"), settings.get("max_length"))
        except ModelDirectoryError as error:
            if model is None:
                raise ModelDirectoryError(f"{directory} was built with {built['path']}, which cannot be loaded now "
                                          f"({error}); pass the model with --model") from None
            raise
    if encoder.model["sha256"] != built["sha256"]:
        raise EncoderkitError(f"{directory} was built with {built['path']} (weights {built['sha256'][:12]}); "
                              f"{encoder.model['path']} has other weights ({encoder.model['sha256'][:12]}): search "
                              "with the model the index was built with, or rebuild the index with this one")
    if encoder.settings != dense["embedding"]:
        raise EncoderkitError(f"{directory} was built with embedding settings {dense['embedding']}; the query "
                              f"model has {encoder.settings}; search with the same settings or rebuild the index")
    return encoder

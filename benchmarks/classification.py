"""Classification benchmark: every encoder family, shipped defaults, real corpora, next to peers.

    python benchmarks/classification.py                      # TREC (coarse) and SMS spam
    python benchmarks/classification.py --data my/folder     # any folder with train.jsonl / test.jsonl
    python benchmarks/classification.py --seeds 13 1 2 3     # each family over several seeds, with the mean

Each family trains with its shipped config (``configs/<family>.yaml``) unchanged except for the
data paths and the output folder (and ``seed`` with ``--seeds``), so the numbers are what a user
gets on their own data. The seed sets both the validation split and the initial weights; on a 500-question
test set one question is 0.2 points, so the mean over seeds is the figure to compare. The same
run fits the scikit-learn peers (TF-IDF word 1-2 grams + logistic regression; TF-IDF char 2-5
grams + LinearSVC) on the same splits. Writes ``benchmarks/results/classification.json`` and the
``## Classification`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import write_json, write_section  # noqa: E402

from encoderkit.config import load_config  # noqa: E402
from encoderkit.model_dir import load_model  # noqa: E402
from encoderkit.tasks.classify import train  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
#: Named corpora in a config's recipe, read from ../shared/data instead of fetched (the same bytes:
#: the decompressed corpus:wikitext2 equals wiki.train.raw, SHA-256 6707892f...).
SHARED_COPIES = {"corpus:wikitext2": SHARED / "wikitext2" / "wiki.train.raw"}
FAMILIES = ["bow", "cnn", "rnn", "lstm", "gru", "transformer", "cnn_word2vec"]


def read_jsonl(path: Path) -> tuple[list[str], list[str]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in records], [str(r["label"]) for r in records]


def peer_rows(dataset: str, folder: Path) -> list[dict]:
    """scikit-learn baselines on the same split (the classic strong linear models)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    train_x, train_y = read_jsonl(folder / "train.jsonl")
    test_x, test_y = read_jsonl(folder / "test.jsonl")
    peers = {
        "tfidf-word-1-2g + logreg": make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                                                  LogisticRegression(C=10, max_iter=2000)),
        "tfidf-char-2-5g + linearsvc": make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True), LinearSVC()),
    }
    rows = []
    for name, pipeline in peers.items():
        started = time.perf_counter()
        pipeline.fit(train_x, train_y)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        predicted = pipeline.predict(test_x)
        speed = len(test_x) / (time.perf_counter() - started)
        rows.append({"dataset": dataset, "encoder": f"peer: {name}", "pooling": "-",
                     "accuracy": accuracy_score(test_y, predicted),
                     "macro_f1": f1_score(test_y, predicted, average="macro"), "parameters": None,
                     "train_seconds": seconds, "sentences_per_second": speed})
    return rows


def vector_recipe(config_path: Path) -> list[str] | None:
    """The ``encoderkit wordvec train ...`` command a config's header comment says to run first, if any."""
    for line in config_path.read_text(encoding="utf-8").splitlines():
        command = line.lstrip("# ").strip()
        if command.startswith("encoderkit wordvec train "):
            return [str(SHARED_COPIES[arg]) if arg in SHARED_COPIES and SHARED_COPIES[arg].is_file() else arg
                    for arg in shlex.split(command)[1:]]
    return None


def make_vectors(family: str, work: Path, made: dict[str, dict]) -> dict | None:
    """Run the family's word-vector recipe once per benchmark (into ``work``): its output path and seconds."""
    recipe = vector_recipe(ROOT / "configs" / f"{family}.yaml")
    if recipe is None:
        return None
    if family not in made:
        output = work / "vectors" / Path(recipe[recipe.index("-o") + 1]).name
        recipe[recipe.index("-o") + 1] = str(output)
        started = time.perf_counter()
        subprocess.run([str(Path(sys.executable).with_name("encoderkit")), *recipe, "--no-progress"], cwd=ROOT, check=True)
        made[family] = {"path": output, "seconds": time.perf_counter() - started}
    return made[family]


def run_family(family: str, dataset: str, folder: Path, work: Path, threads: int, seed: int | None = None,
               vectors: dict | None = None) -> dict:
    overrides = [f"data.train={folder / 'train.jsonl'}", f"data.test={folder / 'test.jsonl'}",
                 f"output_dir={work / dataset / family / str(seed)}", f"train.num_threads={threads}"]
    if seed is not None:
        overrides.append(f"seed={seed}")
    if vectors is not None:
        overrides.append(f"embedding.pretrained={vectors['path']}")
    config = load_config(ROOT / "configs" / f"{family}.yaml", overrides)
    result = train(config, echo=lambda *a, **k: None)
    texts, _ = read_jsonl(folder / "test.jsonl")
    model = load_model(result.model_dir)
    model.predict_proba(texts[:64])  # warm-up
    started = time.perf_counter()
    model.predict_proba(texts, batch_size=128)
    speed = len(texts) / (time.perf_counter() - started)
    return {"dataset": dataset, "encoder": family, "pooling": config.pooling, "seed": config.seed,
            "accuracy": result.test_metrics["accuracy"], "macro_f1": result.test_metrics["macro_f1"],
            "parameters": result.parameters, "train_seconds": result.train_seconds,
            "sentences_per_second": speed,
            "validation_macro_f1": result.validation_metrics.get("macro_f1"),
            "vectors_seconds": vectors["seconds"] if vectors else None}


def mean_rows(rows: list[dict]) -> list[dict]:
    """One row per dataset and encoder: the mean over seeds (peers are deterministic: one row each)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["encoder"]), []).append(row)
    merged = []
    for group in groups.values():
        row = dict(group[0])
        for key in ("accuracy", "macro_f1", "train_seconds", "sentences_per_second"):
            row[key] = statistics.mean(r[key] for r in group)
        row["seeds"] = [r.get("seed") for r in group]
        row["accuracy_by_seed"] = [r["accuracy"] for r in group]
        merged.append(row)
    return merged


def table(rows: list[dict]) -> str:
    rows = mean_rows(rows)
    several = any(len(row["seeds"]) > 1 for row in rows)
    lines = ["| dataset | encoder | pooling | accuracy | macro-F1 | parameters | train s | sentences/s |"
             + (" accuracy by seed |" if several else ""),
             "|---|---|---|---:|---:|---:|---:|---:|" + ("---|" if several else "")]
    for row in rows:
        parameters = f"{row['parameters']:,}" if row["parameters"] else "-"
        lines.append(f"| {row['dataset']} | {row['encoder']} | {row['pooling']} | {row['accuracy']:.4f} | "
                     f"{row['macro_f1']:.4f} | {parameters} | {row['train_seconds']:.1f} | "
                     f"{row['sentences_per_second']:,.0f} |"
                     + (f" {' / '.join(f'{a:.3f}' for a in row['accuracy_by_seed'])} |"
                        if several and row["parameters"] else (" - |" if several else "")))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append",
                        help="Folder with train.jsonl and test.jsonl (text, label); repeatable. "
                             "Default: ../shared/data/trec and ../shared/data/sms_spam.")
    parser.add_argument("--families", nargs="+", default=FAMILIES, choices=FAMILIES)
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="Train each family once per seed and report the mean (default: the config's seed).")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="Print the table only.")
    parser.add_argument("--rows-from", type=Path,
                        help="Write the results from the JSON rows an earlier run printed (its log), without training.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folders = args.data or [SHARED / "trec", SHARED / "sms_spam"]
    rows = []
    if args.rows_from:
        lines = args.rows_from.read_text(encoding="utf-8", errors="replace").splitlines()
        rows = [json.loads(line) for line in lines if line.startswith('{"dataset"')]
        folders = []
    made_vectors: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="encoderkit-bench-") as tmp:
        for folder in folders:
            dataset = folder.name
            for family in args.families:
                vectors = make_vectors(family, Path(tmp), made_vectors)
                for seed in args.seeds or [None]:
                    row = run_family(family, dataset, folder, Path(tmp), args.threads, seed, vectors)
                    print(json.dumps(row), flush=True)
                    rows.append(row)
            for row in peer_rows(dataset, folder):
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(table(rows))
    if args.no_write:
        return
    write_json("classification.json", {"threads": args.threads, "torch": torch.__version__, "rows": rows})
    write_section("## Classification", (
        "Test split, shipped defaults (`configs/<family>.yaml`) unchanged on every dataset; peers fitted in the "
        f"same run on the same split. {args.threads} CPU threads. With several seeds, accuracy, macro-F1 and "
        "times are means over the seeds (each seed: its own validation split and initial weights), and the "
        "last column lists each seed's accuracy. `train s` is time in the training loop "
        "(all epochs until early stopping); `sentences/s` is inference on the test set at batch 128. "
        f"{vectors_note(rows)}\n"
        f"Reproduce: `python benchmarks/classification.py{seeds_flag(rows)}`.\n\n" + table(rows)))


def vectors_note(rows: list[dict]) -> str:
    """How the word vectors of ``cnn_word2vec`` were made, and in how long (not part of `train s`)."""
    seconds = [row["vectors_seconds"] for row in rows if row.get("vectors_seconds")]
    if not seconds:
        return ""
    return ("`cnn_word2vec` is `cnn` on word2vec vectors that the run first trains from scratch on WikiText-2 "
            "with the command in `configs/cnn_word2vec.yaml` (no downloaded weights; "
            f"{seconds[0]:.0f} s once on one thread, which gives the same vectors on every run; not counted in "
            "`train s`).")


def seeds_flag(rows: list[dict]) -> str:
    seeds = list(dict.fromkeys(row["seed"] for row in rows if row.get("seed") is not None))
    return f" --seeds {' '.join(map(str, seeds))}" if len(seeds) > 1 else ""


if __name__ == "__main__":
    main()

"""``encoderkit compare`` on TREC and SMS spam with the default candidates and 3 seeds: the whole report.

    python benchmarks/compare.py            # both data sets, 3 seeds, 10/30/100% (about 70 min on 2 idle cores)
    python benchmarks/compare.py --quick    # 600 training / 100 test texts, 1 seed, 1 epoch (minutes)

Runs the command users run (``encoderkit.compare.runner.compare``: bow, cnn, lstm, transformer and
trec_minilm when installed, plus the TF-IDF + linear SVM baseline) into ``--work`` (a second run
continues there), records the wall time, writes ``benchmarks/results/compare.json`` and the
``## Choosing an encoder`` section of ``benchmarks/RESULTS.md``, and copies each report with its
plots into ``docs/compare/<data set>/`` for ``docs/choosing-an-encoder.md``. ``--quick`` writes
under ``benchmarks/results/quick/`` only.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from results_md import QUICK_DIR, cpu_name, quick_slice, write_results  # noqa: E402

from encoderkit.compare.runner import compare  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
HEADING = "## Choosing an encoder"
REPORT_FILES = ("report.md", "report.json", "accuracy_vs_speed.png", "learning_curve.png")


def summary_table(reports: dict[str, dict]) -> str:
    lines = ["| data | candidate | accuracy [95% interval] | ± seeds | macro-F1 | vs best (p) | sentences/s | train s |",
             "|---|---|---|---:|---:|---|---:|---:|"]
    for dataset, report in reports.items():
        for row in report["rows"]:
            versus = row.get("versus_best")
            against = f"-{100 * versus['difference']:.1f} ({versus['p_bootstrap']:.3f})" if versus else "best"
            low, high = row["accuracy_interval"]
            lines.append(f"| {dataset} | {row['candidate']}{' *' if row['pareto'] else ''} | "
                         f"{100 * row['accuracy']:.1f} [{100 * low:.1f}, {100 * high:.1f}] | "
                         f"{100 * row['accuracy_seed_std']:.1f} | {100 * row['macro_f1']:.1f} | {against} | "
                         f"{row['sentences_per_second']:,.0f} | {row['train_seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=[SHARED / "trec", SHARED / "sms_spam"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-compare")
    parser.add_argument("--quick", action="store_true", help="600 training / 100 test texts, 1 seed, 1 epoch.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = args.work / "quick" if args.quick else args.work
    seeds = 1 if args.quick else args.seeds
    reports, timing = {}, {}
    for source in args.data:
        folder = quick_slice(source, work, 600, 100) if args.quick else source
        started = time.perf_counter()
        comparison = compare(folder, None, out=work / source.name, seeds=seeds, threads=args.threads,
                             overrides=["train.epochs=1"] if args.quick else [], echo=print)
        timing[source.name] = {"this_run_seconds": time.perf_counter() - started,
                               "all_runs_seconds": comparison.summary["runs_seconds"]}
        reports[source.name] = comparison.summary
        target = (QUICK_DIR / "compare" if args.quick else ROOT / "docs" / "compare") / source.name
        target.mkdir(parents=True, exist_ok=True)
        for name in REPORT_FILES:
            shutil.copyfile(work / source.name / name, target / name)
    payload = {"quick": args.quick, "seeds": seeds, "threads": args.threads, "cpu": cpu_name(),
               "torch": torch.__version__, "timing": timing, "reports": reports}
    body = (f"`python benchmarks/compare.py{' --quick' if args.quick else ''}` on {payload['cpu']}, {args.threads} torch "
            f"threads: `encoderkit compare` with the default candidates, {seeds} seed(s), 10/30/100% of the training "
            "data. Wall time of all runs: " + ", ".join(f"{name} {t['all_runs_seconds'] / 60:.0f} min"
                                                       for name, t in timing.items()) + ". "
            "Accuracy: mean over seeds with a 95% bootstrap interval over test examples; `vs best`: points behind the "
            "most accurate, paired bootstrap p-value; `*`: Pareto front of accuracy and speed. The full reports with "
            "plots and recommendations: `docs/compare/<data>/report.md`.\n\n" + summary_table(reports) + "\n\n"
            + "\n".join(f"- **{name}**: " + " ".join(report["recommendation"]) for name, report in reports.items()))
    print(body)
    write_results("compare.json", HEADING, body, payload, args.quick)


if __name__ == "__main__":
    main()

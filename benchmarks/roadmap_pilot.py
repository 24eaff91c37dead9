"""Hold-out benchmark on the 25 real Roadmap pilot tracks (5 cell types x 5 histone marks).

Each fold of a cyclic 5 x 5 Latin square hides one track per cell type and per assay. For
every fold the other 20 tracks are ingested, each model is trained with its defaults
through the ``epimpute`` command line (one child process per step, so time and peak
memory are the command's own), the 5 hidden tracks are imputed and scored against the
truth on the arcsinh scale.

Folds are named by the Latin square's shift: ``0`` (= fold A) .. ``4``; fold ``2`` is B.

Usage::

    python benchmarks/roadmap_pilot.py --folds A,B --models average,edice
    python benchmarks/roadmap_pilot.py --folds all

Results go to ``benchmarks/results/pilot/``: ``results.tsv``, ``summary.md``, and per fold
the store, models, imputations and an ``epimpute evaluate`` report (``foldN/report/``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from epimpute.evaluation.correlation import gwcorr
from epimpute.evaluation.error import mse
from epimpute.evaluation.topbins import mse1imp, mse1obs

CELLS = ["E003", "E017", "E065", "E116", "E117"]
ASSAYS = ["H3K4me3", "H3K27me3", "H3K36me3", "H3K9me3", "H3K4me1"]
FOLD_ALIASES = {"A": 0, "B": 2}
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "roadmap_pilot"


def fold_tracks(shift: int) -> list[str]:
    """The 5 held-out keys of the Latin-square fold with this shift."""
    return [f"{cell}:{ASSAYS[(i + shift) % 5]}" for i, cell in enumerate(CELLS)]


def run_command(args: list[str], log_file: Path, *,
                threads: int | None = None) -> tuple[float, float]:
    """Run a command (with ``threads`` torch threads when given); return (wall seconds,
    peak resident memory in MiB)."""
    env = None if threads is None else dict(os.environ, OMP_NUM_THREADS=str(threads),
                                            MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    with open(log_file, "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed ({' '.join(args)}); see {log_file}")
    return seconds, usage.ru_maxrss / 1024


def score(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {"mse": mse(truth, predicted), "pearson": gwcorr(truth, predicted),
            "mse1obs": mse1obs(truth, predicted), "mse1imp": mse1imp(truth, predicted)}


def run_fold(shift: int, models: list[str], data: Path, out: Path, *, max_minutes: float,
             seed: int) -> list[dict]:
    """Ingest, train, impute and score one fold; returns one row per (model, track)."""
    epimpute = [sys.executable, "-m", "epimpute", "-q"]
    held_out = fold_tracks(shift)
    fold_dir = out / f"fold{shift}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    sheet = fold_dir / "samples.tsv"
    rows = [{"cell_type": c, "assay": a, "path": str(data / f"{c}.{a}.pilot.arcsinh.npz"),
             "chrom": "pilot"} for c in CELLS for a in ASSAYS if f"{c}:{a}" not in held_out]
    pd.DataFrame(rows).to_csv(sheet, sep="\t", index=False)
    store = fold_dir / "train.zarr"
    ingest_s, _ = run_command(epimpute + ["ingest", str(sheet), "--out", str(store),
                                          "--transformed", "--overwrite"],
                              fold_dir / "ingest.log")
    truth = {k: np.load(data / f"{k.replace(':', '.')}.pilot.arcsinh.npz")["arr_0"]
             for k in held_out}
    n_bins = len(next(iter(truth.values())))
    results = []
    for model in models:
        model_dir = fold_dir / "models" / model
        imputed = fold_dir / "imputed" / model
        train_s, train_mib = run_command(
            epimpute + ["train", str(store), "--model", model, "--out", str(model_dir),
                        "--seed", str(seed), "--max-minutes", str(max_minutes),
                        "--device", "cpu", "--resume"],
            fold_dir / f"train-{model}.log")
        targets = [arg for key in held_out for arg in ("--target", key)]
        impute_s, impute_mib = run_command(
            epimpute + ["impute", str(model_dir), str(store), "--out", str(imputed),
                        "--format", "npz", "--device", "cpu"] + targets,
            fold_dir / f"impute-{model}.log")
        record = json.loads((model_dir / "config.json").read_text())
        history = record["provenance"].get("history", {})
        epochs = history.get("epochs", [])
        best = history.get("best_epoch", -1)
        for key in held_out:
            predicted = np.load(imputed / f"{key.replace(':', '.')}.npz")["pilot"]
            results.append({
                "fold": shift, "model": model, "track": key,
                **score(truth[key], predicted),
                "train_s": train_s, "train_peak_mib": train_mib,
                "train_bins_per_s": history.get("bins_seen", 0) / max(history.get("seconds", 0), 1e-9),
                "time_to_best_s": epochs[best - 1]["seconds"] if best > 0 else 0.0,
                "epochs": len(epochs),
                "impute_s": impute_s, "impute_peak_mib": impute_mib,
                "impute_bins_per_s_per_track": n_bins * len(held_out) / impute_s,
                "ingest_s": ingest_s,
            })
        print(f"fold {shift} {model}: mean MSE "
              f"{np.mean([r['mse'] for r in results if r['model'] == model]):.4f} "
              f"(train {train_s:.0f} s, impute {impute_s:.1f} s)", flush=True)
    truth_sheet = out / "truth.tsv"
    if not (out / "truth.zarr").exists():
        pd.DataFrame([{"cell_type": c, "assay": a, "chrom": "pilot",
                       "path": str(data / f"{c}.{a}.pilot.arcsinh.npz")}
                      for c in CELLS for a in ASSAYS]).to_csv(truth_sheet, sep="\t", index=False)
        run_command(epimpute + ["ingest", str(truth_sheet), "--out", str(out / "truth.zarr"),
                                "--transformed"], out / "ingest-truth.log")
    predictions = [arg for model in models
                   for arg in ("--pred", f"{model}={fold_dir / 'imputed' / model}")]
    run_command(epimpute + ["evaluate", "--truth", str(out / "truth.zarr"), "--out",
                            str(fold_dir / "report"), "--overwrite", "--bootstrap", "200"]
                + predictions, fold_dir / "evaluate.log")
    return results


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table (no extra dependency)."""
    def cell(value: object) -> str:
        return f"{value:.{digits}f}" if isinstance(value, (float, np.floating)) else str(value)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def summarise(table: pd.DataFrame) -> str:
    """Markdown: per-fold means per model, and the MSE ratio to the average baseline."""
    by = table.groupby(["fold", "model"])
    summary = by[["mse", "pearson", "mse1obs", "mse1imp"]].mean()
    figures = by[["train_s", "time_to_best_s", "train_bins_per_s", "impute_s",
                  "impute_bins_per_s_per_track", "train_peak_mib", "impute_peak_mib"]].first()
    summary = summary.join(figures)
    if "average" in table["model"].unique():
        baseline = summary.xs("average", level="model")["mse"]
        summary["mse_vs_average"] = [row["mse"] / baseline[fold]
                                     for (fold, _), row in summary.iterrows()]
    return markdown(summary.reset_index())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", default="A,B", help="comma list of 0-4, A, B, or 'all'")
    parser.add_argument("--models", default="average,edice")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "pilot")
    parser.add_argument("--max-minutes", type=float, default=9.0,
                        help="training budget per model and fold")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data} not found: the Roadmap pilot tracks are needed (see README)")
    names = ["0", "1", "2", "3", "4"] if args.folds == "all" else args.folds.split(",")
    shifts = [FOLD_ALIASES.get(n, None) if n in FOLD_ALIASES else int(n) for n in names]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for shift in shifts:
        rows += run_fold(shift, args.models.split(","), args.data, args.out,
                         max_minutes=args.max_minutes, seed=args.seed)
        table = pd.DataFrame(rows)
        table.to_csv(args.out / "results.tsv", sep="\t", index=False)
    per_track = table[["fold", "model", "track", "mse", "pearson", "mse1obs", "mse1imp"]]
    text = ("## Per track\n\n" + markdown(per_track, 4)
            + "\n\n## Per fold (means)\n\n" + summarise(table) + "\n")
    (args.out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

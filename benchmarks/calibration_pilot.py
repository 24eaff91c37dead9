"""Calibration of eDICE's predicted sd on the real Roadmap pilot tracks (folds A and B).

For each fold of :mod:`roadmap_pilot` (5 tracks hidden, one per cell type and assay) an
eDICE model with ``uncertainty`` and the average baseline are trained on the other 20
tracks through the ``epimpute`` command line, the hidden tracks are imputed (eDICE with
``--uncertainty``) and ``epimpute evaluate`` scores them. Printed per fold: the MSE of both
models and their ratio, and the share of bins inside the central 50/80/95% predicted
intervals (with the half-widths ``imputation.json`` records), overall and per specificity
stratum (from the report's ``calibration.tsv``, means over the 5 tracks).

Usage (the README's figures: one fold after the other, one core and one thread each)::

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/calibration_pilot.py --folds A \
        --max-minutes 12 --threads 1

Two folds run at once need the truth store ``OUT/truth.zarr`` made first (one of them
creates it when absent).

Results go to ``benchmarks/results/calibration/`` (models, imputations, reports); a step
whose output is there already is not run again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from roadmap_pilot import (  # noqa: E402 - the sibling benchmark
    ASSAYS,
    CELLS,
    DEFAULT_DATA,
    FOLD_ALIASES,
    fold_tracks,
    markdown,
    run_command,
    score,
)

from epimpute.intervals import REPORTED_LEVELS, coverage  # noqa: E402

STRATA = ("all", "high_specificity", "low_specificity", "count=0")


def run_fold(shift: int, data: Path, out: Path, *, max_minutes: float, seed: int,
             threads: int) -> dict:
    """Train, impute and evaluate one fold; returns its figures."""
    epimpute = [sys.executable, "-m", "epimpute", "-q"]
    held_out = fold_tracks(shift)
    fold = out / f"fold{shift}"
    fold.mkdir(parents=True, exist_ok=True)
    sheet = fold / "samples.tsv"
    pd.DataFrame([{"cell_type": c, "assay": a, "chrom": "pilot",
                   "path": str(data / f"{c}.{a}.pilot.arcsinh.npz")}
                  for c in CELLS for a in ASSAYS if f"{c}:{a}" not in held_out]
                 ).to_csv(sheet, sep="\t", index=False)
    store = fold / "train.zarr"
    if not store.exists():
        run_command(epimpute + ["ingest", str(sheet), "--out", str(store), "--transformed"],
                    fold / "ingest.log")
    config = fold / "edice.json"
    config.write_text(json.dumps({"model": {"uncertainty": True}}))
    targets = [arg for key in held_out for arg in ("--target", key)]
    seconds = {}
    for model, extra in (("average", []), ("edice", ["--config", str(config)])):
        model_dir = fold / "models" / model
        if not (model_dir / "config.json").exists():
            seconds[f"train_{model}"] = run_command(
                epimpute + ["train", str(store), "--model", model, "--out", str(model_dir),
                            "--seed", str(seed), "--max-minutes", str(max_minutes),
                            "--device", "cpu", "--resume"] + extra,
                fold / f"train-{model}.log", threads=threads)[0]
        imputed = fold / "imputed" / model
        if not (imputed / "imputation.json").exists():
            flags = ["--uncertainty"] if model == "edice" else []
            seconds[f"impute_{model}"] = run_command(
                epimpute + ["impute", str(model_dir), str(store), "--out", str(imputed),
                            "--format", "npz", "--device", "cpu", "--overwrite"]
                + targets + flags, fold / f"impute-{model}.log", threads=threads)[0]
    truth_store = out / "truth.zarr"
    if not truth_store.exists():
        truth_sheet = out / "truth.tsv"
        pd.DataFrame([{"cell_type": c, "assay": a, "chrom": "pilot",
                       "path": str(data / f"{c}.{a}.pilot.arcsinh.npz")}
                      for c in CELLS for a in ASSAYS]).to_csv(truth_sheet, sep="\t",
                                                              index=False)
        run_command(epimpute + ["ingest", str(truth_sheet), "--out", str(truth_store),
                                "--transformed"], out / "ingest-truth.log")
    report = fold / "report"
    run_command(epimpute + ["evaluate", "--truth", str(truth_store), "--out", str(report),
                            "--overwrite", "--bootstrap", "0",
                            "--pred", f"edice={fold / 'imputed' / 'edice'}",
                            "--pred", f"average={fold / 'imputed' / 'average'}"],
                fold / "evaluate.log", threads=threads)
    recorded = json.loads((fold / "imputed" / "edice" / "imputation.json").read_text())
    shapes = recorded.get("interval_half_widths", {"levels": [], "tracks": {}})
    rows = []
    for key in held_out:
        name = key.replace(":", ".")
        truth = np.load(data / f"{name}.pilot.arcsinh.npz")["arr_0"]
        mean = np.load(fold / "imputed" / "edice" / f"{name}.npz")["pilot"]
        sd = np.load(fold / "imputed" / "edice" / f"{name}.sd.npz")["pilot"]
        average = np.load(fold / "imputed" / "average" / f"{name}.npz")["pilot"]
        ratio = np.abs(truth - mean) / sd
        if key in shapes["tracks"]:  # the model's measured interval shape
            widths = [shapes["tracks"][key][shapes["levels"].index(p)] for p in REPORTED_LEVELS]
            direct = np.array([np.mean(ratio <= w) for w in widths])
        else:
            direct = coverage(ratio, REPORTED_LEVELS)
        rows.append({"track": key, "edice_mse": score(truth, mean)["mse"],
                     "average_mse": score(truth, average)["mse"], "mean_sd": float(sd.mean()),
                     **{f"cover{round(100 * p)}": c for p, c in zip(REPORTED_LEVELS, direct)}})
    tracks = pd.DataFrame(rows)
    calibration = pd.read_csv(report / "calibration.tsv", sep="\t")
    calibration = calibration[calibration["model"] == "edice"]
    strata = (calibration[calibration["stratum"].isin(STRATA)]
              .groupby(["stratum", "level"])["coverage"].mean().unstack("level"))
    return {"fold": shift, "tracks": tracks, "strata": strata, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", default="A,B", help="comma list of 0-4, A, B")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "calibration")
    parser.add_argument("--max-minutes", type=float, default=32.0,
                        help="eDICE training budget per fold")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per command")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data} not found: the Roadmap pilot tracks are needed (see README)")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.folds.split(","):
        result = run_fold(FOLD_ALIASES.get(name, None) if name in FOLD_ALIASES else int(name),
                          args.data, args.out, max_minutes=args.max_minutes, seed=args.seed,
                          threads=args.threads)
        tracks = result["tracks"]
        edice, average = tracks["edice_mse"].mean(), tracks["average_mse"].mean()
        print(f"\n## fold {name} (shift {result['fold']})\n")
        print(markdown(tracks, 4))
        print(f"\nMSE eDICE {edice:.4f}, average {average:.4f}, ratio {edice / average:.3f}")
        means = tracks[[c for c in tracks.columns if c.startswith("cover")]].mean()
        print("coverage over the 5 tracks (mean): "
              + ", ".join(f"{c} {v:.3f}" for c, v in means.items()))
        print("\ncoverage by stratum (evaluate's calibration.tsv, mean over tracks):\n")
        print(markdown(result["strata"].reset_index(), 3))
        print(f"\nseconds: {result['seconds']}", flush=True)


if __name__ == "__main__":
    main()

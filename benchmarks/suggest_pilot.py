"""Does measuring the track ``epimpute suggest`` ranks first help most? (Roadmap pilot)

On the first ``--bins`` bins of the 25 real pilot tracks, a fold of :mod:`roadmap_pilot`
hides 5 tracks (one per cell type and assay). An eDICE model with ``uncertainty`` is
trained on the other 20 and ``epimpute suggest`` ranks the 5 hidden ones. Then, for every
hidden track ``h`` in turn, ``h`` is "measured" (added to the training tracks), a model is
retrained from scratch with the same seed and budget, and the other 4 hidden tracks are
imputed again: the gain of measuring ``h`` is the drop of their mean MSE from the first
model's (both averaged over the same ``--repeats`` seeds; the ranking is seed 0's). Printed: the ranking, each choice's gain, and where the top-ranked choice's gain
stands among the 5 (and against their mean, which is what a random choice gains on
average). One retraining per choice (``--repeats`` seeds each when more).

Usage::

    OMP_NUM_THREADS=2 nice -n 15 python benchmarks/suggest_pilot.py --bins 200000

Files go to ``benchmarks/results/suggest/``.
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
)

EPIMPUTE = [sys.executable, "-m", "epimpute", "-q"]


def train_and_impute(arrays: Path, keys: list[str], hidden: list[str], folder: Path, *,
                     minutes: float, seed: int, threads: int) -> dict[str, np.ndarray]:
    """Ingest ``keys``, train eDICE with uncertainty, impute ``hidden``; returns the means."""
    folder.mkdir(parents=True, exist_ok=True)
    sheet = folder / "samples.tsv"
    pd.DataFrame([{"cell_type": k.split(":")[0], "assay": k.split(":")[1], "chrom": "pilot",
                   "path": str(arrays / f"{k.replace(':', '.')}.npz")} for k in keys]
                 ).to_csv(sheet, sep="\t", index=False)
    store, model, imputed = folder / "train.zarr", folder / "model", folder / "imputed"
    if not store.exists():
        run_command(EPIMPUTE + ["ingest", str(sheet), "--out", str(store), "--transformed"],
                    folder / "ingest.log")
    config = folder / "edice.json"
    config.write_text(json.dumps({"model": {"uncertainty": True}}))
    if not (model / "config.json").exists():
        run_command(EPIMPUTE + ["train", str(store), "--model", "edice", "--out", str(model),
                                "--config", str(config), "--seed", str(seed), "--max-minutes",
                                str(minutes), "--device", "cpu", "--resume"],
                    folder / "train.log", threads=threads)
    if not (imputed / "imputation.json").exists():
        targets = [arg for key in hidden for arg in ("--target", key)]
        run_command(EPIMPUTE + ["impute", str(model), str(store), "--out", str(imputed),
                                "--format", "npz", "--device", "cpu", "--overwrite"] + targets,
                    folder / "impute.log", threads=threads)
    return {k: np.load(imputed / f"{k.replace(':', '.')}.npz")["pilot"] for k in hidden}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fold", default="A", help="0-4, A or B")
    parser.add_argument("--bins", type=int, default=200_000, help="first bins of the pilot")
    parser.add_argument("--minutes", type=float, default=1.5, help="training budget per model")
    parser.add_argument("--repeats", type=int, default=1, help="seeds per retraining")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "suggest")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data} not found: the Roadmap pilot tracks are needed (see README)")
    shift = FOLD_ALIASES[args.fold] if args.fold in FOLD_ALIASES else int(args.fold)
    hidden = fold_tracks(shift)
    everything = [f"{c}:{a}" for c in CELLS for a in ASSAYS]
    arrays = args.out / "arrays"
    arrays.mkdir(parents=True, exist_ok=True)
    truth = {}
    for key in everything:
        name = key.replace(":", ".")
        values = np.load(args.data / f"{name}.pilot.arcsinh.npz")["arr_0"][:args.bins]
        if key in hidden:
            truth[key] = values
        if not (arrays / f"{name}.npz").exists():
            np.savez(arrays / f"{name}.npz", arr_0=values)
    observed = [k for k in everything if k not in hidden]
    base_dir = args.out / f"fold{shift}" / "base"
    bases = [train_and_impute(arrays, observed, hidden,
                              base_dir if seed == 0 else base_dir.with_name(f"base-s{seed}"),
                              minutes=args.minutes, seed=seed, threads=args.threads)
             for seed in range(args.repeats)]  # "before" with the seeds of "after"
    ranking_file = base_dir / "suggest.tsv"
    run_command(EPIMPUTE + ["suggest", str(base_dir / "model"), str(base_dir / "train.zarr"),
                            "--out", str(ranking_file), "--overwrite", "--device", "cpu"],
                base_dir / "suggest.log", threads=args.threads)
    ranking = pd.read_csv(ranking_file, sep="\t")
    ranked = [f"{c}:{a}" for c, a in zip(ranking["cell_type"], ranking["assay"])]
    rows = []
    for measured in hidden:
        rest = [k for k in hidden if k != measured]
        before = np.mean([np.mean((truth[k] - base[k]) ** 2) for base in bases for k in rest])
        after = []
        for seed in range(args.repeats):
            folder = args.out / f"fold{shift}" / f"with-{measured.replace(':', '.')}-s{seed}"
            means = train_and_impute(arrays, observed + [measured], rest, folder,
                                     minutes=args.minutes, seed=seed, threads=args.threads)
            after.append(np.mean([np.mean((truth[k] - means[k]) ** 2) for k in rest]))
        rows.append({"measured": measured, "suggest_rank": ranked.index(measured) + 1,
                     "score": float(ranking["score"][ranked.index(measured)]),
                     "mse_rest_before": before, "mse_rest_after": float(np.mean(after)),
                     "gain": before - float(np.mean(after))})
    table = pd.DataFrame(rows).sort_values("suggest_rank")
    print(markdown(table, 4))
    top = table.iloc[0]
    place = int((table["gain"] > top["gain"]).sum()) + 1
    print(f"\nfold {args.fold}, first {args.bins:,} bins, {args.minutes} min per model, "
          f"{args.repeats} retraining(s) per choice: measuring the top-ranked track "
          f"{top['measured']} gains {top['gain']:.4f} MSE on the other hidden tracks, "
          f"place {place} of {len(table)} (mean gain of the 5 choices, i.e. of a random one: "
          f"{table['gain'].mean():.4f}); Spearman(score, gain) "
          f"{table['score'].rank().corr(table['gain'].rank()):.2f}")


if __name__ == "__main__":
    main()

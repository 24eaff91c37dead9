"""Does measuring the track ``epimpute suggest`` ranks first help most? (Roadmap pilot)

On the first ``--bins`` bins of the 25 real pilot tracks, a fold of :mod:`roadmap_pilot`
hides 5 tracks (one per cell type and assay); with ``--sparse CELL:ASSAY`` the cell type
CELL keeps only ASSAY, so its 4 other tracks are hidden instead of its one (8 hidden in
all): the situation of a cell type profiled with one assay. An eDICE model with
``uncertainty`` is trained on the observed tracks and ``epimpute suggest`` ranks the hidden
ones with each criterion (``simulated``, ``retrained`` with ``--retrain-epochs`` epochs per
retraining and seed ``--retrain-seed``, ``spread``; seed 0's model). Then, for every
hidden track ``h`` in turn, ``h`` is "measured" (added to the training tracks), a model is
retrained from scratch with the same seed and budget, and the other hidden tracks are
imputed again: the gain of measuring ``h`` is the drop of their mean MSE from the first
model's (both averaged over the same ``--repeats`` seeds). Printed: each choice's ranks and
gain, the mean gain of all choices (what a random choice gains on average), and per
criterion where its top-ranked choice's gain stands and the Spearman correlation of score
and gain. Models are cached in the output folder, so a rerun only adds what is missing.

``--update finetune``: instead of retraining from scratch, each seed's first model is
fine-tuned with the measured track added (``epimpute extend --mode finetune --probe-share
0``, ``--update-minutes`` each, same seed), so every choice starts from the same weights and
differs from the others only by its track; the extra training is the same for every choice
(it lowers "after" for all of them alike), so top-versus-random comparisons stay fair.

Usage::

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/suggest_pilot.py --fold A \
        --sparse E116:H3K4me3 --bins 200000 --minutes 1.5 --repeats 2 --threads 1

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
CRITERIA = ("simulated", "retrained", "spread")
UPDATES = ("scratch", "finetune")


def _ingest(arrays: Path, keys: list[str], folder: Path) -> Path:
    """The store of ``keys`` in ``folder`` (ingested once)."""
    folder.mkdir(parents=True, exist_ok=True)
    sheet, store = folder / "samples.tsv", folder / "train.zarr"
    pd.DataFrame([{"cell_type": k.split(":")[0], "assay": k.split(":")[1], "chrom": "pilot",
                   "path": str(arrays / f"{k.replace(':', '.')}.npz")} for k in keys]
                 ).to_csv(sheet, sep="\t", index=False)
    if not store.exists():
        run_command(EPIMPUTE + ["ingest", str(sheet), "--out", str(store), "--transformed"],
                    folder / "ingest.log")
    return store


def _impute(model: Path, store: Path, hidden: list[str], folder: Path, threads: int
            ) -> dict[str, np.ndarray]:
    imputed = folder / "imputed"
    if not (imputed / "imputation.json").exists():
        targets = [arg for key in hidden for arg in ("--target", key)]
        run_command(EPIMPUTE + ["impute", str(model), str(store), "--out", str(imputed),
                                "--format", "npz", "--device", "cpu", "--overwrite"] + targets,
                    folder / "impute.log", threads=threads)
    return {k: np.load(imputed / f"{k.replace(':', '.')}.npz")["pilot"] for k in hidden}


def train_and_impute(arrays: Path, keys: list[str], hidden: list[str], folder: Path, *,
                     minutes: float, seed: int, threads: int) -> dict[str, np.ndarray]:
    """Ingest ``keys``, train eDICE with uncertainty, impute ``hidden``; returns the means."""
    store, model = _ingest(arrays, keys, folder), folder / "model"
    config = folder / "edice.json"
    config.write_text(json.dumps({"model": {"uncertainty": True}}))
    if not (model / "config.json").exists():
        run_command(EPIMPUTE + ["train", str(store), "--model", "edice", "--out", str(model),
                                "--config", str(config), "--seed", str(seed), "--max-minutes",
                                str(minutes), "--device", "cpu", "--resume"],
                    folder / "train.log", threads=threads)
    return _impute(model, store, hidden, folder, threads)


def finetune_and_impute(arrays: Path, keys: list[str], hidden: list[str], base: Path,
                        folder: Path, *, minutes: float, seed: int, threads: int
                        ) -> dict[str, np.ndarray]:
    """Ingest ``keys`` (the base model's tracks and one more), fine-tune the model in
    ``base`` on them (``extend --mode finetune --probe-share 0``), impute ``hidden``."""
    store, model = _ingest(arrays, keys, folder), folder / "model"
    if not (model / "config.json").exists():
        run_command(EPIMPUTE + ["extend", str(base), str(store), "--out", str(model),
                                "--mode", "finetune", "--probe-share", "0", "--seed",
                                str(seed), "--max-minutes", str(minutes), "--device", "cpu"],
                    folder / "extend.log", threads=threads)
    return _impute(model, store, hidden, folder, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fold", default="A", help="0-4, A or B")
    parser.add_argument("--bins", type=int, default=200_000, help="first bins of the pilot")
    parser.add_argument("--minutes", type=float, default=1.5, help="training budget per model")
    parser.add_argument("--repeats", type=int, default=1, help="seeds per retraining")
    parser.add_argument("--update", choices=UPDATES, default="scratch",
                        help="how a measured track enters the model: scratch (retrain from "
                             "scratch) or finetune (fine-tune the first model, same seed)")
    parser.add_argument("--update-minutes", type=float, default=0.5,
                        help="fine-tuning budget per choice (--update finetune)")
    parser.add_argument("--retrain-epochs", type=int, default=2,
                        help="epochs per retraining of the retrained criterion (2: about what "
                             "--minutes 1.5 trains on 200,000 bins)")
    parser.add_argument("--retrain-seed", type=int, default=0,
                        help="seed of the retrained criterion's retrainings")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sparse", metavar="CELL:ASSAY",
                        help="CELL keeps only ASSAY: its other 4 tracks are hidden too")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "suggest")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data} not found: the Roadmap pilot tracks are needed (see README)")
    shift = FOLD_ALIASES[args.fold] if args.fold in FOLD_ALIASES else int(args.fold)
    hidden = fold_tracks(shift)
    design = f"fold{shift}"
    if args.sparse:
        cell, kept = args.sparse.split(":")
        if cell not in CELLS or kept not in ASSAYS:
            sys.exit(f"--sparse {args.sparse}: expected one of {CELLS}, a colon, one of {ASSAYS}")
        hidden = [k for k in hidden if not k.startswith(f"{cell}:")] + \
            [f"{cell}:{a}" for a in ASSAYS if a != kept]
        design += f"-{cell}.{kept}"
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
    base_dir = args.out / design / "base"
    base_dirs = [base_dir] + [base_dir.with_name(f"base-s{seed}")
                              for seed in range(1, args.repeats)]  # one per seed
    bases = [train_and_impute(arrays, observed, hidden, folder, minutes=args.minutes,
                              seed=seed, threads=args.threads)
             for seed, folder in enumerate(base_dirs)]  # "before" with the seeds of "after"
    rankings = {}
    for criterion in CRITERIA:
        options, name = [], criterion
        if criterion == "retrained":  # costly: cached per number of epochs
            options = ["--retrain-epochs", str(args.retrain_epochs), "--seed",
                       str(args.retrain_seed), "--sample-bins", str(args.bins)]
            name += f"-e{args.retrain_epochs}" + (f"-s{args.retrain_seed}"
                                                  if args.retrain_seed else "")
        ranking_file = base_dir / f"suggest-{name}.tsv"
        if criterion != "retrained" or not ranking_file.exists():
            seconds, peak = run_command(
                EPIMPUTE + ["suggest", str(base_dir / "model"), str(base_dir / "train.zarr"),
                            "--criterion", criterion, "--out", str(ranking_file),
                            "--overwrite", "--device", "cpu"] + options,
                base_dir / f"suggest-{name}.log", threads=args.threads)
            print(f"suggest --criterion {criterion}: {seconds:.0f} s, peak {peak:.0f} MiB")
        ranking = pd.read_csv(ranking_file, sep="\t")
        keys = [f"{c}:{a}" for c, a in zip(ranking["cell_type"], ranking["assay"])]
        rankings[criterion] = {k: (rank, score) for k, rank, score
                               in zip(keys, ranking["rank"], ranking["score"])}
    rows, seed_gains = [], {}
    for measured in hidden:
        rest = [k for k in hidden if k != measured]
        before = [np.mean([np.mean((truth[k] - base[k]) ** 2) for k in rest]) for base in bases]
        after = []
        for seed in range(args.repeats):
            name = measured.replace(":", ".")
            if args.update == "scratch":
                means = train_and_impute(arrays, observed + [measured], rest,
                                         args.out / design / f"with-{name}-s{seed}",
                                         minutes=args.minutes, seed=seed, threads=args.threads)
            else:
                folder = args.out / design / f"finetune{args.update_minutes:g}-{name}-s{seed}"
                means = finetune_and_impute(arrays, observed + [measured], rest,
                                            base_dirs[seed] / "model", folder,
                                            minutes=args.update_minutes, seed=seed,
                                            threads=args.threads)
            after.append(np.mean([np.mean((truth[k] - means[k]) ** 2) for k in rest]))
        row = {"measured": measured}
        for criterion, ranked in rankings.items():
            row[f"{criterion}_rank"], row[f"{criterion}_score"] = ranked[measured]
        seed_gains[measured] = np.subtract(before, after)  # same seed before and after
        rows.append(row | {"mse_rest_before": float(np.mean(before)),
                           "mse_rest_after": float(np.mean(after)),
                           "gain": float(np.mean(seed_gains[measured]))})
    table = pd.DataFrame(rows).sort_values(f"{CRITERIA[0]}_rank")
    random_gain = np.mean(list(seed_gains.values()), axis=0)  # per seed
    update = ("retraining(s) from scratch" if args.update == "scratch" else
              f"fine-tuning(s) of the first model ({args.update_minutes} min)")
    print(markdown(table, 4))
    print(f"\n{design}, first {args.bins:,} bins, {args.minutes} min per model, "
          f"{args.repeats} {update} per choice; mean gain of the {len(table)} choices "
          f"(a random one's): {table['gain'].mean():.4f}")
    for criterion in CRITERIA:
        top = table.loc[table[f"{criterion}_rank"].idxmin()]
        place = int((table["gain"] > top["gain"]).sum()) + 1
        spearman = table[f"{criterion}_score"].rank().corr(table["gain"].rank())
        margins = ", ".join(f"{m:+.4f}" for m in seed_gains[top["measured"]] - random_gain)
        print(f"{criterion}: the top-ranked track {top['measured']} gains {top['gain']:.4f} "
              f"MSE on the other hidden tracks, place {place} of {len(table)}; "
              f"Spearman(score, gain) {spearman:.2f}; its gain minus a random one's, "
              f"seed by seed: {margins}")

if __name__ == "__main__":
    main()

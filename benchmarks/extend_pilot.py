"""Extending a trained model with a new cell type, on the 25 real Roadmap pilot tracks.

For each of the 5 cell types X: an eDICE model is trained on the other 4 cell types (20
tracks; ``--exclude 'X:*'``), then given 1 or 2 of X's tracks and asked for X's remaining
tracks, four ways:

- ``freeze``: ``epimpute extend --mode freeze`` (only X's embedding and input columns learn);
- ``finetune``: ``epimpute extend --mode finetune`` (X's parameters alone for half the
  budget, then everything at a tenth of the rate);
- ``retrain``: a new model trained from scratch on the 20 + k tracks (2-track case only,
  to keep the CPU cost modest);
- ``average``: the average-activity baseline.

Every step is its own ``epimpute`` command (wall time and peak memory are the command's
own), run with one torch thread. X's given tracks rotate with the cell type so that every
assay serves as a given track. Scores: MSE and Pearson on the arcsinh scale over all
1,126,469 bins (or the first ``--bins``), per track and averaged over X's remaining tracks.

Usage::

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/extend_pilot.py --base-minutes 2

Results go to ``benchmarks/results/extend/`` (``results.tsv``, ``summary.md``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from avocado_pilot import ingest_all  # noqa: E402  (the benchmarks folder is on sys.path)
from roadmap_pilot import (  # noqa: E402
    ASSAYS,
    CELLS,
    DEFAULT_DATA,
    markdown,
    run_command,
    score,
)

EPIMPUTE = [sys.executable, "-m", "epimpute", "-q"]


def given_tracks(cell: str, k: int) -> list[str]:
    """The ``k`` tracks of ``cell`` the extension sees (rotating with the cell type)."""
    shift = CELLS.index(cell)
    return [f"{cell}:{ASSAYS[(shift + i) % len(ASSAYS)]}" for i in range(k)]


def fit_seconds(model_dir: Path) -> float:
    """Seconds the training loop ran (without loading data), from the model's record."""
    record = json.loads((model_dir / "config.json").read_text())
    return float(record["provenance"].get("history", {}).get("seconds", 0.0))


def impute_and_score(model_dir: Path, store: Path, targets: list[str], out: Path,
                     truth: dict[str, np.ndarray], log: Path) -> tuple[list[dict], float]:
    args = [a for key in targets for a in ("--target", key)]
    seconds, _ = run_command(EPIMPUTE + ["impute", str(model_dir), str(store), "--out",
                                         str(out), "--format", "npz", "--device", "cpu"] + args,
                             log, threads=1)
    rows = []
    for key in targets:
        predicted = np.load(out / f"{key.replace(':', '.')}.npz")["pilot"]
        rows.append({"track": key, **score(truth[key], predicted)})
    return rows, seconds


def first_bins(data: Path, out: Path, n_bins: int | None) -> Path:
    """``data``, or copies of its tracks cut to their first ``n_bins`` bins (made once)."""
    if n_bins is None:
        return data
    folder = (out / f"pilot-first-{n_bins}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for cell in CELLS:
        for assay in ASSAYS:
            name = f"{cell}.{assay}.pilot.arcsinh.npz"
            if not (folder / name).exists():
                np.savez(folder / name, arr_0=np.load(data / name)["arr_0"][:n_bins])
    return folder


def run_cell(cell: str, store: Path, data: Path, out: Path, *, base_minutes: float,
             extend_minutes: float, seed: int, counts: list[int]) -> list[dict]:
    folder = out / cell
    folder.mkdir(parents=True, exist_ok=True)
    truth = {f"{cell}:{a}": np.load(data / f"{cell}.{a}.pilot.arcsinh.npz")["arr_0"]
             for a in ASSAYS}
    common = ["--seed", str(seed), "--device", "cpu"]
    base = folder / "base"
    if not (base / "config.json").exists():
        base_s, base_mib = run_command(
            EPIMPUTE + ["train", str(store), "--model", "edice", "--out", str(base),
                        "--exclude", f"{cell}:*", "--max-minutes", str(base_minutes)] + common,
            folder / "train-base.log", threads=1)
    else:
        base_s, base_mib = float("nan"), float("nan")
    results = []
    for k in counts:
        given = given_tracks(cell, k)
        targets = [key for key in truth if key not in given]
        hide = [a for key in targets for a in ("--exclude", key)]
        runs: dict[str, tuple[list[str], Path]] = {}
        for mode in ("freeze", "finetune"):
            runs[mode] = (EPIMPUTE + ["extend", str(base), str(store), "--mode", mode,
                                      "--max-minutes", str(extend_minutes)] + hide + common,
                          folder / f"{mode}-{k}")
        if k == max(counts):
            runs["retrain"] = (EPIMPUTE + ["train", str(store), "--model", "edice",
                                           "--max-minutes", str(base_minutes)] + hide + common,
                               folder / f"retrain-{k}")
        runs["average"] = (EPIMPUTE + ["train", str(store), "--model", "average"] + hide,
                           folder / f"average-{k}")
        for method, (command, model_dir) in runs.items():
            if (model_dir / "config.json").exists():
                train_s, train_mib = float("nan"), float("nan")
            else:
                train_s, train_mib = run_command(command + ["--out", str(model_dir)],
                                                 folder / f"train-{method}-{k}.log", threads=1)
            rows, impute_s = impute_and_score(model_dir, store, targets,
                                              folder / "imputed" / f"{method}-{k}", truth,
                                              folder / f"impute-{method}-{k}.log")
            for row in rows:
                results.append(dict(row, cell=cell, given=k, method=method, train_s=train_s,
                                    fit_s=fit_seconds(model_dir),
                                    train_peak_mib=train_mib, impute_s=impute_s,
                                    base_train_s=base_s, base_peak_mib=base_mib))
            mean = np.mean([r["mse"] for r in rows])
            print(f"{cell} given {k}: {method} MSE {mean:.4f} (train {train_s:.0f} s)",
                  flush=True)
    return results


def summarise(table: pd.DataFrame) -> str:
    """Markdown tables: per cell type and number of given tracks, and overall means."""
    by = table.groupby(["cell", "given", "method"], sort=False)
    per_cell = by[["mse", "pearson"]].mean().join(by[["train_s", "fit_s", "impute_s"]].first())
    baseline = per_cell.xs("average", level="method")["mse"]
    per_cell["mse_vs_average"] = [row["mse"] / baseline[(cell, given)]
                                  for (cell, given, _), row in per_cell.iterrows()]
    overall = per_cell.groupby(["given", "method"], sort=False)[
        ["mse", "pearson", "mse_vs_average", "train_s", "fit_s"]].mean()
    wins = per_cell["mse_vs_average"].lt(1.0).groupby(["given", "method"], sort=False).sum()
    overall["cells_beating_average"] = wins.astype(int).astype(str) + " / " + str(
        table["cell"].nunique())
    return ("## Per cell type (mean over its remaining tracks)\n\n"
            + markdown(per_cell.reset_index(), 4)
            + "\n\n## Over the 5 cell types\n\n" + markdown(overall.reset_index(), 4) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "extend")
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--given", default="1,2", help="numbers of the cell's tracks given")
    parser.add_argument("--base-minutes", type=float, default=3.0,
                        help="training budget of the base and the retrained models")
    parser.add_argument("--extend-minutes", type=float, default=1.0,
                        help="training budget of freeze and finetune")
    parser.add_argument("--bins", type=int,
                        help="use only the first BINS bins of the pilot regions (cheaper "
                             "loading and imputation); default all 1,126,469")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summarise-only", action="store_true",
                        help="rewrite summary.md from results.tsv and the saved models")
    args = parser.parse_args()
    if args.summarise_only:
        table = pd.read_csv(args.out / "results.tsv", sep="\t")
        table["fit_s"] = [fit_seconds(args.out / r.cell / f"{r.method}-{r.given}")
                          if r.method != "average" else 0.0 for r in table.itertuples()]
        table.to_csv(args.out / "results.tsv", sep="\t", index=False)
        text = summarise(table)
        (args.out / "summary.md").write_text(text)
        print(text)
        return
    if not args.data.is_dir():
        sys.exit(f"{args.data} not found: the Roadmap pilot tracks are needed (see README)")
    args.out.mkdir(parents=True, exist_ok=True)
    data = first_bins(args.data, args.out, args.bins)
    store = ingest_all(data, args.out, threads=1)
    rows: list[dict] = []
    for cell in args.cells.split(","):
        rows += run_cell(cell, store, data, args.out, base_minutes=args.base_minutes,
                         extend_minutes=args.extend_minutes, seed=args.seed,
                         counts=[int(k) for k in args.given.split(",")])
        table = pd.DataFrame(rows)
        table.to_csv(args.out / "results.tsv", sep="\t", index=False)
        text = summarise(table)
        (args.out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

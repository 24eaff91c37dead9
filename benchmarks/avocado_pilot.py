"""Avocado on the 25 real Roadmap pilot tracks, fold by fold, against the average baseline.

The 25 tracks (5 cell types x 5 histone marks, one 1,126,469-bin contig) are ingested once.
Each fold of the cyclic 5 x 5 Latin square hides one track per cell type and per assay:
both models are trained with ``--exclude`` for those 5 tracks and their defaults, the 5
tracks are imputed with ``--target`` and scored against the observed signal (arcsinh
scale). Every step runs as its own ``epimpute`` command, so its wall time and peak memory
are the command's own.

First, the seconds per training epoch of the ``small`` configuration over all 1,126,469
positions are timed in process (no validation, no checkpoint; ``--timing-threads``): with
its default ensemble of members, and with one member (what each member costs alone).
Then, per fold: per-track and mean MSE and Pearson of both models, the MSE ratio to the
baseline, Avocado's training time (the whole command: loading, both stages, validation,
a checkpoint after every epoch), number of epochs, seconds per epoch as the command ran
them (with validation and checkpoint), imputation time and throughput, and peak memory of
training and imputation.

Folds are named by the Latin square's shift, ``0`` .. ``4``; ``A`` is 0 and ``B`` is 2.

Usage::

    python benchmarks/avocado_pilot.py                    # folds A and B
    python benchmarks/avocado_pilot.py --folds all --threads 1

Results go to ``benchmarks/results/avocado/`` (``results.tsv``, ``summary.md``, and per fold
the models, imputations and command logs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd
import torch
from roadmap_pilot import (  # noqa: E402  (the benchmarks folder is on sys.path)
    ASSAYS,
    CELLS,
    DEFAULT_DATA,
    FOLD_ALIASES,
    fold_tracks,
    markdown,
    run_command,
)

from epimpute.evaluation.correlation import gwcorr
from epimpute.evaluation.error import mse
from epimpute.store import Store

MODELS = ("average", "avocado")


def ingest_all(data: Path, out: Path, *, threads: int) -> Path:
    """The store of all 25 tracks (made once)."""
    store = out / "pilot.zarr"
    if not store.exists():
        sheet = out / "samples.tsv"
        pd.DataFrame([{"cell_type": c, "assay": a, "chrom": "pilot",
                       "path": str(data / f"{c}.{a}.pilot.arcsinh.npz")}
                      for c in CELLS for a in ASSAYS]).to_csv(sheet, sep="\t", index=False)
        run_command([sys.executable, "-m", "epimpute", "-q", "ingest", str(sheet),
                     "--out", str(store), "--transformed"], out / "ingest.log", threads=threads)
    return store


def epoch_seconds(history: dict) -> float:
    """Median wall seconds between the ends of consecutive stage-1 epochs of a training
    command."""
    chosen = [e for e in history.get("epochs", []) if e.get("stage", 1) == 1]
    times = [b["seconds"] - a["seconds"] for a, b in zip(chosen, chosen[1:])]
    return median(times) if times else float("nan")


def time_epochs(store_path: Path, *, n_epochs: int, seed: int, members: int | None = None
                ) -> list[float]:
    """Wall seconds of ``n_epochs`` stage-1 epochs of the ``small`` configuration (with
    ``members`` ensemble members, default: the preset's) over every pilot position
    (20 tracks, as in a fold), in this process: no validation, no checkpoint, so only
    training is timed."""
    from epimpute.models.avocado import AvocadoConfig
    from epimpute.training.avocado import AvocadoTrainingConfig, train_avocado
    from epimpute.training.loop import RunSettings

    training = AvocadoTrainingConfig(max_epochs=n_epochs, validation_fraction=0.0)
    config = AvocadoConfig(preset="small", members=members)
    _, history = train_avocado(Store.open(store_path), config=config,
                               training=training, settings=RunSettings(seed=seed, device="cpu"),
                               exclude=fold_tracks(0))
    seconds = [e["seconds"] for e in history.epochs]
    return [b - a for a, b in zip([0.0] + seconds, seconds)]


def run_fold(shift: int, store_path: Path, out: Path, *, max_minutes: float, seed: int,
             threads: int) -> list[dict]:
    """Train, impute and score both models on one fold; one row per (model, track)."""
    epimpute = [sys.executable, "-m", "epimpute", "-q"]
    held_out = fold_tracks(shift)
    fold_dir = out / f"fold{shift}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(store_path)
    truth = {k: store.read("pilot", tracks=[store.track_index(k)])[0] for k in held_out}
    n_bins = store.n_bins("pilot")
    excluded = [arg for key in held_out for arg in ("--exclude", key)]
    targets = [arg for key in held_out for arg in ("--target", key)]
    rows = []
    for model in MODELS:
        model_dir = fold_dir / "models" / model
        imputed = fold_dir / "imputed" / model
        train_s, train_mib = run_command(
            epimpute + ["train", str(store_path), "--model", model, "--out", str(model_dir),
                        "--seed", str(seed), "--max-minutes", str(max_minutes), "--device",
                        "cpu", "--resume"] + excluded,
            fold_dir / f"train-{model}.log", threads=threads)
        impute_s, impute_mib = run_command(
            epimpute + ["impute", str(model_dir), str(store_path), "--out", str(imputed),
                        "--format", "npz", "--device", "cpu"] + targets,
            fold_dir / f"impute-{model}.log", threads=threads)
        record = json.loads((model_dir / "config.json").read_text())
        history = record["provenance"].get("history", {})
        for key in held_out:
            predicted = np.load(imputed / f"{key.replace(':', '.')}.npz")["pilot"]
            rows.append({
                "fold": shift, "model": model, "track": key,
                "members": record.get("config", {}).get("members", 1),
                "mse": mse(truth[key], predicted), "pearson": gwcorr(truth[key], predicted),
                "train_s": train_s, "train_peak_mib": train_mib,
                "epochs": len(history.get("epochs", [])),
                "chosen_epochs": history.get("best_epoch", 0),
                "epoch_s": epoch_seconds(history),
                "impute_s": impute_s, "impute_peak_mib": impute_mib,
                "impute_bins_per_s": n_bins * len(held_out) / impute_s,
            })
        mean = np.mean([r["mse"] for r in rows if r["model"] == model])
        print(f"fold {shift} {model}: mean MSE {mean:.4f} (train {train_s:.0f} s, "
              f"impute {impute_s:.1f} s)", flush=True)
    return rows


def summarise(table: pd.DataFrame) -> str:
    """Markdown: per-track scores, then per-fold means with the ratio to the baseline."""
    wide = table.pivot_table(index=["fold", "track"], columns="model",
                             values=["mse", "pearson"]).reset_index()
    wide.columns = [" ".join(c).strip() if isinstance(c, tuple) else c for c in wide.columns]
    wide["mse ratio"] = wide["mse avocado"] / wide["mse average"]
    means = table.groupby(["fold", "model"])[["mse", "pearson"]].mean().unstack("model")
    means.columns = [f"{a} {b}" for a, b in means.columns]
    means["mse ratio"] = means["mse avocado"] / means["mse average"]
    avocado = table[table["model"] == "avocado"].groupby("fold").first()
    figures = avocado[["members", "train_s", "epochs", "chosen_epochs", "epoch_s", "impute_s",
                       "impute_bins_per_s", "train_peak_mib", "impute_peak_mib"]]
    summary = means.join(figures).reset_index()
    return ("## Per track (arcsinh scale)\n\n" + markdown(wide, 4)
            + "\n\n## Per fold: means, and Avocado's time and memory\n\n"
            + markdown(summary, 3) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", default="A,B", help="comma list of 0-4, A, B, or 'all'")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "avocado")
    parser.add_argument("--max-minutes", type=float, default=10.0,
                        help="training budget per model and fold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads per command (use 1 on a busy machine)")
    parser.add_argument("--epoch-timing", type=int, default=5, metavar="N",
                        help="first time N training epochs in process (0: skip)")
    parser.add_argument("--timing-threads", type=int, default=2,
                        help="torch threads of the epoch timing")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"{args.data} not found: the Roadmap pilot tracks are needed (see README)")
    names = ["0", "1", "2", "3", "4"] if args.folds == "all" else args.folds.split(",")
    shifts = [FOLD_ALIASES[n] if n in FOLD_ALIASES else int(n) for n in names]
    args.out.mkdir(parents=True, exist_ok=True)
    store = ingest_all(args.data, args.out, threads=args.threads)
    if args.epoch_timing:
        torch.set_num_threads(args.timing_threads)
        timing = {"threads": args.timing_threads}
        for label, members in (("ensemble", None), ("one_member", 1)):
            epochs = time_epochs(store, n_epochs=args.epoch_timing, seed=args.seed,
                                 members=members)
            timing[label] = epochs
            print(f"small configuration ({label.replace('_', ' ')}), {args.timing_threads} "
                  f"thread(s): seconds per epoch over 1,126,469 positions: "
                  + ", ".join(f"{s:.2f}" for s in epochs)
                  + f" (median {median(epochs):.2f})", flush=True)
        (args.out / "epoch_timing.json").write_text(json.dumps(timing) + "\n")
    rows: list[dict] = []
    for shift in shifts:
        rows += run_fold(shift, store, args.out, max_minutes=args.max_minutes,
                         seed=args.seed, threads=args.threads)
        table = pd.DataFrame(rows)
        table.to_csv(args.out / "results.tsv", sep="\t", index=False)
    text = summarise(pd.DataFrame(rows))
    (args.out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

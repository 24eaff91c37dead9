"""eDICE training and imputation cost at three compendium shapes.

Each shape is a store of random low-rank signal (one contig, ``--bins`` bins) whose
observed tracks follow a real pattern:

- ``pilot``: 5 x 5, every track observed (25 tracks);
- ``roadmap``: 127 biosamples x 24 assays, the five core marks everywhere and 465 more
  tracks spread over the other assays, more on the common ones (1,100 tracks);
- ``encode``: the ENCODE2018-Core observation pattern (400 x 84, 3,814 tracks) read from
  ``../shared/data/ENCODE2018Core.tsv``.

For each shape ``epimpute train --model edice`` runs for ``--minutes`` in a child process
(bins/s over the training loop, peak resident memory of the command), then a child process
imputes every unobserved pair on ``--impute-bins`` bins with the trained model (track-bins
per second of ``impute_region``, peak memory). Usage::

    python benchmarks/edice_scale.py --shapes pilot,roadmap,encode --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ENCODE_MANIFEST = (Path(__file__).resolve().parents[1].parent / "shared" / "data"
                   / "ENCODE2018Core.tsv")
ROADMAP_CORE = ["H3K4me1", "H3K4me3", "H3K27me3", "H3K36me3", "H3K9me3"]


def pattern(shape: str, rng: np.random.Generator, manifest: Path = ENCODE_MANIFEST
            ) -> list[tuple[str, str]]:
    """Observed ``(biosample, assay)`` pairs of a shape."""
    if shape == "pilot":
        return [(f"C{b}", f"A{a}") for b in range(5) for a in range(5)]
    if shape == "roadmap":
        others = [f"M{a:02d}" for a in range(19)]
        pairs = [(f"E{b:03d}", a) for b in range(127) for a in ROADMAP_CORE]
        weight = 1.0 / np.arange(1, 20)
        cells = [(b, a) for b in range(127) for a in range(19)]
        p = np.array([weight[a] for _, a in cells])
        chosen = rng.choice(len(cells), size=465, replace=False, p=p / p.sum())
        return pairs + [(f"E{cells[i][0]:03d}", others[cells[i][1]]) for i in sorted(chosen)]
    if shape == "encode":
        if not manifest.exists():
            sys.exit(f"{manifest} is needed for the encode shape (see --manifest)")
        with open(manifest) as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        return sorted({(row["Biosample Index"], row["Assay"]) for row in rows})
    raise ValueError(f"unknown shape {shape!r}")


def make_store(path: Path, shape: str, n_bins: int, seed: int = 0,
               manifest: Path = ENCODE_MANIFEST) -> None:
    """Write a store of rank-4 random signal with the observation pattern of ``shape``."""
    from epimpute.store import Track, create_store

    rng = np.random.default_rng(seed)
    pairs = pattern(shape, rng, manifest)
    biosamples = sorted({b for b, _ in pairs})
    assays = sorted({a for _, a in pairs})
    rank = 4
    # smooth positive genome factors with peaks, and positive item loadings
    raw = rng.exponential(1.0, (rank, n_bins)) * (rng.random((rank, n_bins)) < 0.05)
    kernel = np.ones(9) / 9
    genome = np.stack([np.convolve(row, kernel, mode="same") for row in raw]) * 4
    b_load = dict(zip(biosamples, rng.gamma(2.0, 0.5, (len(biosamples), rank))))
    a_load = dict(zip(assays, rng.gamma(2.0, 0.5, (len(assays), rank))))
    tracks = [Track(b, a) for b, a in pairs]
    writer = create_store(path, tracks=tracks, contigs={"chr1": n_bins * 25}, bin_size=25)
    for row, (b, a) in enumerate(pairs):
        signal = (b_load[b] * a_load[a]) @ genome + rng.normal(0, 0.05, n_bins)
        writer.write(row, "chr1", np.arcsinh(np.maximum(signal, 0.0)).astype(np.float32))


def run(args: list[str], threads: int) -> tuple[float, float, str]:
    """Run a command with ``threads`` threads; (wall seconds, peak MiB, stdout)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, env=env, text=True)
    out = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed: {' '.join(args)}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, out


def impute_child(model_dir: Path, store_path: Path, n_bins: int, threads: int) -> None:
    """Impute every unobserved pair on ``n_bins`` bins; print track-bins/s as JSON."""
    import torch

    from epimpute.hardware import autocast, uses_bf16
    from epimpute.model_dir import load_model
    from epimpute.store import Store

    torch.set_num_threads(threads)
    imputer = load_model(model_dir)
    store = Store.open(store_path)
    layout = imputer.layout
    observed = set(layout.tracks)
    targets = [(b, a) for b in range(layout.n_biosamples) for a in range(layout.n_assays)
               if (b, a) not in observed] or sorted(observed)  # pilot: every pair observed
    margin = imputer.context_bins
    rows = [store.track_index(key) for key in layout.keys]
    signal = store.read("chr1", 1000 - margin, 1000 + n_bins + margin, tracks=rows)
    available = np.ones(len(rows), dtype=bool)
    cpu = torch.device("cpu")
    start = time.perf_counter()
    with autocast(cpu, enabled=uses_bf16("auto", cpu)):  # as ``epimpute impute`` runs
        imputer.impute_region(signal, available, targets, contig="chr1", start=1000)
    seconds = time.perf_counter() - start
    print(json.dumps({"targets": len(targets), "seconds": seconds,
                      "track_bins_per_s": len(targets) * n_bins / seconds}))


def measure(shape: str, work: Path, args: argparse.Namespace) -> dict[str, float]:
    store = work / f"{shape}.zarr"
    if not store.exists():
        make_store(store, shape, args.bins, manifest=args.manifest)
    model_dir = work / f"{shape}-model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    epimpute = [sys.executable, "-m", "epimpute", "-q"]
    config = work / "config.json"
    config.write_text(json.dumps({"training": {"validation_max_bins": 2000}}))
    train_s, train_mib, _ = run(epimpute + [
        "train", str(store), "--model", "edice", "--out", str(model_dir), "--device", "cpu",
        "--max-minutes", str(args.minutes), "--config", str(config),
    ], args.threads)
    history = json.loads((model_dir / "config.json").read_text())["provenance"]["history"]
    _, impute_mib, out = run([sys.executable, __file__, "--impute-child", str(model_dir),
                              str(store), str(args.impute_bins), str(args.threads)],
                             args.threads)
    imputed = json.loads(out.strip().splitlines()[-1])
    return {"train_bins_per_s": history["bins_seen"] / max(history["seconds"], 1e-9),
            "train_wall_s": train_s, "train_peak_mib": train_mib,
            "impute_targets": imputed["targets"],
            "impute_track_bins_per_s": imputed["track_bins_per_s"],
            "impute_peak_mib": impute_mib}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--impute-child":
        model_dir, store, n_bins, threads = sys.argv[2:6]
        impute_child(Path(model_dir), Path(store), int(n_bins), int(threads))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="pilot,roadmap,encode")
    parser.add_argument("--bins", type=int, default=50_000, help="bins of each store")
    parser.add_argument("--minutes", type=float, default=1.0, help="training budget")
    parser.add_argument("--impute-bins", type=int, default=256,
                        help="bins imputed (every unobserved pair) per shape")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--manifest", type=Path, default=ENCODE_MANIFEST,
                        help="ENCODE2018-Core manifest (observation pattern of 'encode')")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/edice_scale"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for shape in args.shapes.split(","):
        result = measure(shape, args.work, args)
        print(f"{shape}: train {result['train_bins_per_s']:.0f} bins/s, peak "
              f"{result['train_peak_mib']:.0f} MiB ({result['train_wall_s']:.0f} s wall); "
              f"impute {result['impute_targets']} pairs at "
              f"{result['impute_track_bins_per_s']:.0f} track-bins/s, peak "
              f"{result['impute_peak_mib']:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()

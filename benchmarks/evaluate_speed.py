"""Time scoring one real 1.1 M-bin track on the full metric set.

The truth is Roadmap E003 (H1) H3K4me3 from ``../shared/data/roadmap_pilot`` (one contig,
1,126,469 bins of 25 bp); the "imputation" is the same mark in E017 (IMR-90), a copy-another-
cell-type baseline. Timed, each as the median of ``--repeats`` runs:

- ``genome-wide``: every metric (challenge + eDICE) on all bins, with the cross-cell-type
  variance of the 5 cell types and region coverage (synthetic regions: the pilot bins carry no
  coordinates) supplied, i.e. :class:`epimpute.evaluation.scoring.TrackScorer` from the raw
  arrays to the scores (peak calling on both tracks included);
- ``with strata``: the same plus every metric in each specificity stratum (count 0..5, high
  and low specificity halves), the specificity counts given.

With ``--report DIR`` it also runs ``evaluate`` on all 25 pilot tracks for two baselines
(mean of the other four cell types; copy of another cell type) and writes the full report.

Usage::

    python benchmarks/evaluate_speed.py [--repeats 3] [--report benchmarks/results/pilot_eval]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from epimpute.evaluation.accumulators import RunningVariance
from epimpute.evaluation.peaks import call_peaks, peak_mask
from epimpute.evaluation.scoring import TrackScorer
from epimpute.evaluation.strata import specificity_counts

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "roadmap_pilot"
CELLS = ["E003", "E017", "E065", "E116", "E117"]
ASSAYS = ["H3K4me3", "H3K27me3", "H3K36me3", "H3K9me3", "H3K4me1"]
BIN = 25


def load(cell: str, assay: str) -> np.ndarray:
    return np.load(DATA / f"{cell}.{assay}.pilot.arcsinh.npz")["arr_0"]


def region_coverage(n: int, count: int, width: int, seed: int) -> np.ndarray:
    """Coverage of ``count`` random regions of ``width`` bins (stand-in for genes / enhancers)."""
    starts = np.random.default_rng(seed).integers(0, n - width, count)
    edges = np.bincount(starts, minlength=n + 1) - np.bincount(starts + width, minlength=n + 1)
    return np.cumsum(edges[:n]).astype(np.int32)


def time_scoring(
    truth: np.ndarray, predicted: np.ndarray, context: dict, *, strata: bool, repeats: int
) -> tuple[float, dict]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        scorer = TrackScorer(n_cell_types=len(CELLS) if strata else 0, bin_size=BIN)
        scorer.update(
            truth,
            predicted,
            contig="pilot",
            specificity=context["counts"] if strata else None,
            variance=context["variance"],
            promoters=context["promoters"],
            genes=context["genes"],
            enhancers=context["enhancers"],
        )
        result = scorer.result()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result.values


def write_pilot_report(out: Path) -> float:
    """Evaluate two simple baselines on all 25 pilot tracks into ``out``; returns seconds."""
    from epimpute.evaluation import evaluate
    from epimpute.store import Track, create_store

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        data = {(c, a): load(c, a) for c in CELLS for a in ASSAYS}
        n = next(iter(data.values())).size
        tracks = [Track(c, a) for c in CELLS for a in ASSAYS]
        writer = create_store(root / "pilot.zarr", tracks=tracks, contigs={"pilot": n * BIN}, bin_size=BIN)
        for row, track in enumerate(tracks):
            writer.write(row, "pilot", data[(track.cell_type, track.assay)])
        for model in ("average", "copy"):
            (root / model).mkdir()
        for i, cell in enumerate(CELLS):
            for assay in ASSAYS:
                others = [data[(o, assay)] for o in CELLS if o != cell]
                np.savez(
                    root / "average" / f"{cell}.{assay}.npz", pilot=np.mean(others, axis=0).astype(np.float32)
                )
                np.savez(root / "copy" / f"{cell}.{assay}.npz", pilot=data[(CELLS[(i + 1) % 5], assay)])
        start = time.perf_counter()
        evaluate(
            root / "pilot.zarr", {"average": root / "average", "copy": root / "copy"}, out, overwrite=True
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting (median reported)")
    parser.add_argument("--report", type=Path, help="also write the evaluation report of two baselines here")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: the benchmark needs ../shared/data/roadmap_pilot")

    truth, predicted = load("E003", "H3K4me3"), load("E017", "H3K4me3")
    n = truth.size
    variance = RunningVariance(n)
    masks = []
    for cell in CELLS:
        track = load(cell, "H3K4me3")
        variance.update(track)
        masks.append(peak_mask(call_peaks(track, bin_size=BIN), n_bins=n, bin_size=BIN))
    context = {
        "variance": variance.variance(),
        "counts": specificity_counts(np.stack(masks)),
        "promoters": region_coverage(n, 600, 80, 1),
        "genes": region_coverage(n, 600, 1000, 2),
        "enhancers": region_coverage(n, 700, 20, 3),
    }
    plain, values = time_scoring(truth, predicted, context, strata=False, repeats=args.repeats)
    stratified, _ = time_scoring(truth, predicted, context, strata=True, repeats=args.repeats)
    print(f"scoring one {n:,}-bin track (E003 H3K4me3 vs E017 H3K4me3), {len(values['all'])} metrics:")
    print(f"  genome-wide:             {plain:.2f} s")
    print(f"  with specificity strata: {stratified:.2f} s ({len(CELLS) + 4} strata)")
    print("  " + ", ".join(f"{k}={v:.4g}" for k, v in values["all"].items()))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        seconds = write_pilot_report(args.report)
        print(f"pilot report (25 tracks x 2 baselines) written to {args.report} in {seconds:.0f} s")


if __name__ == "__main__":
    main()

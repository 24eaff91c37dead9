"""Differential peaks and peak shapes from imputed vs observed Roadmap pilot tracks.

Needs the pilot store and an imputation of both cell types' tracks of each mark (see the
README section "Differential peaks and peak shapes from imputed tracks" for the ingest,
train and impute commands). For each mark and the cell-type pair:

1. ``replicates``: N negative-binomial replicates of each cell type's observed track and,
   with the same dispersion trend, scale, block and seed, of its imputed track;
2. ``differential``: PyDESeq2 on the consensus peaks of each replicate set ("own peaks"),
   and on the imputed replicates again over the observed consensus peaks ("shared");
3. overlap of the significant peaks (sharing a bin): PPV (imputed calls overlapping an
   observed call) and recall (observed calls overlapping an imputed call), in peaks;
4. ``compare``: Spearman correlation of the peak-shape Wasserstein distances between the
   two cell types, observed vs imputed, over the observed consensus peaks.

    PYTHONPATH=src python benchmarks/differential_pilot.py --store pilot.zarr \\
        --imputed imputed/edice --work differential_work
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from epimpute.differential import compare, differential, replicates
from epimpute.differential.replicates import replicate_settings
from epimpute.evaluation.peaks import Peaks, overlaps_mask, peak_mask
from epimpute.store import Store


def _significant(tsv: Path, fdr: float) -> pd.DataFrame:
    table = pd.read_csv(tsv, sep="\t", na_values=["NA"])
    return table[table["padj"] < fdr].sort_values(["chrom", "start"])


def _peaks(table: pd.DataFrame, contig: str) -> Peaks:
    rows = table[table["chrom"] == contig]
    start, end = rows["start"].to_numpy(np.int64), rows["end"].to_numpy(np.int64)
    return Peaks(contig, start, end, start.copy(), np.zeros(len(rows), dtype=np.float32))


def _overlapping(a: pd.DataFrame, b: pd.DataFrame, store: Store) -> np.ndarray:
    """For each interval of ``a``, whether it shares a bin with an interval of ``b``."""
    hit = np.zeros(len(a), dtype=bool)
    for contig in store.contigs:
        mask = peak_mask(_peaks(b, contig), n_bins=store.n_bins(contig), bin_size=store.bin_size)
        mine = (a["chrom"] == contig).to_numpy()
        hit[mine] = overlaps_mask(_peaks(a, contig), mask, bin_size=store.bin_size)
    return hit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--imputed", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="folder for the outputs")
    parser.add_argument("--cell-types", default="E003,E116")
    parser.add_argument("--marks", default="H3K4me3,H3K27me3")
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--scale", type=float, default=10.0)
    parser.add_argument("--block", type=int, default=40)
    parser.add_argument("--fdr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    first, second = args.cell_types.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    store = Store.open(args.store)
    rows = []
    for mark in args.marks.split(","):
        targets = [f"{first}:{mark}", f"{second}:{mark}"]
        started = time.perf_counter()
        calls = {}
        for source, imputed in (("observed", None), ("imputed", args.imputed)):
            reps = replicates(store, args.work / f"{source}.{mark}.zarr", targets=targets,
                              imputed=imputed, n=args.n, scale=args.scale, block=args.block,
                              seed=args.seed, overwrite=True, progress=True)
            result = differential([reps], args.work / f"{source}.{mark}", cell_types=[first, second],
                                  assay=mark, fdr=args.fdr, overwrite=True, progress=True)
            calls[source] = (result, _significant(result.tsv, args.fdr))
        regions = args.work / f"observed.{mark}.regions.bed"
        pd.read_csv(calls["observed"][0].tsv, sep="\t")[["chrom", "start", "end"]].to_csv(
            regions, sep="\t", header=False, index=False)
        shared = differential([args.work / f"imputed.{mark}.zarr"], args.work / f"shared.{mark}",
                              cell_types=[first, second], assay=mark, fdr=args.fdr,
                              peaks=regions, overwrite=True, progress=True)
        calls["shared"] = (shared, _significant(shared.tsv, args.fdr))
        shapes = compare(store, args.imputed, args.work / f"shapes.{mark}.tsv",
                         cell_types=[first, second], assay=mark, overwrite=True, progress=True)
        observed = calls["observed"][1]
        a0, a1 = replicate_settings(Store.open(args.work / f"observed.{mark}.zarr"))["trends"][mark]
        row = {"mark": mark, "trend_a0": a0, "trend_a1": a1,
               "peaks_obs": calls["observed"][0].n_peaks,
               "diff_obs": len(observed)}
        for name in ("imputed", "shared"):
            result, imputed = calls[name]
            hits = int(_overlapping(imputed, observed, store).sum())
            found = int(_overlapping(observed, imputed, store).sum())
            row |= {f"peaks_{name}": result.n_peaks, f"diff_{name}": len(imputed),
                    f"ppv_{name}": hits / len(imputed) if len(imputed) else float("nan"),
                    f"recall_{name}": found / len(observed) if len(observed) else float("nan")}
        row |= {"shape_peaks": shapes.n_peaks, "shape_spearman": shapes.spearman,
                "seconds": time.perf_counter() - started}
        rows.append(row)
    table = pd.DataFrame(rows)
    print(f"{first} vs {second}, {args.n} replicates, scale {args.scale:g}, block {args.block}, "
          f"FDR {args.fdr:g}, seed {args.seed}")
    print(table.T.to_string(header=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

"""seqcell against the cross-cell-type average on held-out cell types of synth-sequence.

Generates the default synth-sequence window (hg19 chr22 16.05-22 Mb, 6 cell types), trains
seqcell with the held-out cell types' tracks excluded (``--max-minutes`` budget), imputes
their marks from their ATAC alone and scores each held-out track, over the window's 25 bp
bins, against the generated observed track: Pearson and MSE for seqcell and for the mean of
the training cell types' tracks of the mark. The cell-type-specific stratum is the bins
within 25 bins of the centre of a truth site (``truth/sites.tsv``) accessible in the held-out
cell type only. Prints a markdown table, the training time and peak memory (ru_maxrss). The held-out
tracks are imputed over the window only, through the model's ``impute_region``.

    PYTHONPATH=src python benchmarks/sequence.py [--max-minutes 5] [--held-out cell5,cell6]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from epimpute import api
from epimpute.imputation import input_availability
from epimpute.model_dir import load_model
from epimpute.seqcell_inputs import prepare_imputation
from epimpute.store import Store

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "sequence" / \
    "hg19.chr22_1-22000000.fa.gz"
MARKS = ("H3K27ac", "H3K4me1", "H3K4me3", "H3K36me3", "H3K27me3")


def _scores(x: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    return float(np.corrcoef(x, truth)[0, 1]), float(((x - truth) ** 2).mean())


def _impute_window(model: Path, store: Store, genome: Path, cells: list[str], start: int,
                   end: int) -> dict[tuple[str, str], np.ndarray]:
    """The held-out tracks over the window only (the contig's other 16 Mb are N), through
    the imputer's own :meth:`impute_region`, as ``epimpute impute`` calls it."""
    imputer = load_model(model)
    with prepare_imputation(imputer, store, genome):
        rows, available = input_availability(imputer, store)
        lo, hi, margin = start // 25, end // 25, imputer.context_bins
        signal = np.zeros((len(rows), hi - lo + 2 * margin), dtype=np.float32)
        present = np.flatnonzero(rows >= 0)
        signal[present] = store.read("22", lo - margin, hi + margin, tracks=rows[present])
        pairs = [(c, m) for c in cells for m in MARKS]
        targets = [imputer.layout.index_of(f"{c}:{m}") for c, m in pairs]
        values = imputer.impute_region(signal, available, targets, contig="22", start=lo)
    return dict(zip(pairs, values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genome", type=Path, default=DEFAULT)
    parser.add_argument("--held-out", default="cell5,cell6")
    parser.add_argument("--max-minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path, help="seqcell configuration JSON")
    args = parser.parse_args()
    held_out = args.held_out.split(",")
    start, end = 16_050_000, 22_000_000
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        store = api.synth_sequence(args.genome, work / "s.zarr", cell_types=6, seed=args.seed,
                                   start=start, end=end)
        began = time.perf_counter()
        model = api.train(store, work / "model", model="seqcell", config=args.config,
                          exclude=[f"{c}:*" for c in held_out], seed=args.seed, device="cpu",
                          max_minutes=args.max_minutes, genome=args.genome, progress=True)
        train_seconds = time.perf_counter() - began
        history = json.loads((model / "config.json").read_text())["provenance"]["history"]
        began = time.perf_counter()
        predictions = _impute_window(model, store, args.genome, held_out, start, end)
        impute_seconds = time.perf_counter() - began
        sites = pd.read_csv(store.path / "truth" / "sites.tsv", sep="\t")
        lo, hi = start // 25, end // 25
        training_cells = [b for b in store.biosamples if b not in held_out]
        rows = []
        for (cell, mark), predicted in predictions.items():
            truth = store.read("22", lo, hi, tracks=[store.track_index(f"{cell}:{mark}")])[0]
            average = store.read("22", lo, hi, tracks=[store.track_index(f"{b}:{mark}")
                                                       for b in training_cells]).mean(axis=0)
            own = sites[sites["cells"] == cell]
            stratum = np.zeros(hi - lo, dtype=bool)
            for centre in ((own["start"] + own["end"]) // 2 // 25 - lo):
                stratum[max(centre - 25, 0): centre + 26] = True
            row = {"track": f"{cell}:{mark}"}
            for name, values in (("seqcell", predicted), ("average", average)):
                row[f"{name} r"], row[f"{name} mse"] = _scores(values, truth)
                row[f"{name} r specific"], row[f"{name} mse specific"] = _scores(
                    values[stratum], truth[stratum])
            rows.append(row)
    table = pd.DataFrame(rows)
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for _, row in table.iterrows():
        print("| " + " | ".join(row["track"] if k == "track" else f"{row[k]:.3f}"
                                for k in table.columns) + " |")
    print(f"\nmean over tracks:\n{table.drop(columns='track').mean().to_string()}")
    print(f"\ntraining {train_seconds:.0f} s wall ({len(history['epochs'])} epochs, stopped: "
          f"{history['stopped_because']}), imputing {len(predictions)} tracks over the window {impute_seconds:.0f} s")
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()

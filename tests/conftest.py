"""Shared fixtures: small generated compendia as real stores, and the real pilot data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from epimpute.store import Store, ingest
from epimpute.synthetic import SyntheticSpec, generate

# Tiny models run fastest on one thread, and tests stay fast on a busy machine.
torch.set_num_threads(1)

PILOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "roadmap_pilot"


def write_array_compendium(folder: Path, spec: SyntheticSpec) -> tuple[Path, dict]:
    """Write every observed track of a generated compendium as .npz (one array per contig)
    and a sample sheet; returns the sheet and the truth of the missing tracks (arcsinh)."""
    compendium = generate(spec)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for (cell, assay) in compendium.observed:
        path = folder / f"{cell}.{assay}.npz"
        np.savez(path, **compendium.signal[(cell, assay)])
        rows.append({"cell_type": cell, "assay": assay, "path": path.name})
    sheet = folder / "samples.tsv"
    pd.DataFrame(rows).to_csv(sheet, sep="\t", index=False)
    truth = {f"{c}:{a}": {k: np.arcsinh(v) for k, v in compendium.signal[(c, a)].items()}
             for c, a in compendium.missing}
    return sheet, truth


SMALL = SyntheticSpec(n_cell_types=4, contigs={"chrA": 300_000, "chrB": 200_000},
                      assays=("H3K4me3", "H3K27ac", "H3K36me3", "H3K27me3"),
                      missing_fraction=0.2, seed=3)


@pytest.fixture(scope="session")
def small_compendium(tmp_path_factory) -> tuple[Store, dict]:
    """A 16-track generated compendium (20k bins) as a store, and its held-back truth."""
    folder = tmp_path_factory.mktemp("small")
    sheet, truth = write_array_compendium(folder / "arrays", SMALL)
    store = ingest(sheet, folder / "small.zarr", bin_size=SMALL.bin_size,
                   chrom_sizes=SMALL.contigs)
    return store, truth


def require_pilot() -> Path:
    if not PILOT.is_dir():
        pytest.skip(f"real Roadmap pilot tracks not found at {PILOT} (../shared/data absent)")
    return PILOT

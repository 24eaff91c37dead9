"""``epimpute demo``: generate a compendium, then ingest, train, impute and score it."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from epimpute import api
from epimpute.evaluation.correlation import gwcorr
from epimpute.evaluation.error import mse
from epimpute.evaluation.topbins import mse1obs
from epimpute.io.bigwig import BigWigWriter, chrom_sizes, read_binned
from epimpute.synthetic import SyntheticCompendium, SyntheticSpec, generate

log = logging.getLogger(__name__)


def write_compendium(compendium: SyntheticCompendium, folder: Path) -> tuple[Path, Path]:
    """Write observed tracks as bigWigs + a sample sheet, and the held-back truth.

    Returns the sample sheet and the truth folder (one bigWig per missing track).
    """
    tracks, truth = folder / "tracks", folder / "truth"
    tracks.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    rows = []
    missing = set(compendium.missing)
    for (cell, assay), per_contig in compendium.signal.items():
        target = truth if (cell, assay) in missing else tracks
        path = target / f"{cell}.{assay}.bw"
        with BigWigWriter(path, compendium.contigs, bin_size=compendium.bin_size) as writer:
            for contig, values in per_contig.items():
                writer.write(contig, 0, values)
        if (cell, assay) not in missing:
            rows.append({"cell_type": cell, "assay": assay, "path": f"tracks/{path.name}"})
    sheet = folder / "samples.tsv"
    pd.DataFrame(rows).to_csv(sheet, sep="\t", index=False)
    return sheet, truth


def score_folder(imputed: Path, truth: Path) -> pd.DataFrame:
    """MSE, Pearson and top-1% MSE (arcsinh scale) of every imputed bigWig with a truth."""
    rows = []
    for truth_file in sorted(truth.glob("*.bw")):
        predicted_file = imputed / truth_file.name
        if not predicted_file.exists():
            continue
        sizes = chrom_sizes(truth_file)
        y_true = np.concatenate([read_binned(truth_file, c, length=n, bin_size=25)
                                 for c, n in sizes.items()])
        y_pred = np.concatenate([read_binned(predicted_file, c, length=n, bin_size=25)
                                 for c, n in sizes.items()])
        y_true, y_pred = np.arcsinh(y_true), np.arcsinh(y_pred)
        cell, assay = truth_file.name.split(".")[:2]
        rows.append({"track": f"{cell}:{assay}", "mse": mse(y_true, y_pred),
                     "pearson": gwcorr(y_true, y_pred), "mse1obs": mse1obs(y_true, y_pred)})
    return pd.DataFrame(rows)


def run_demo(out: Path, *, seed: int = 0, max_minutes: float = 1.0,
             progress: bool = False) -> str:
    """Run the whole pipeline on a generated compendium in ``out``; returns a text report.

    ``out`` is replaced if it holds an earlier demo. Files left behind: ``samples.tsv``,
    ``tracks/`` (inputs), ``truth/`` (held-back tracks), ``compendium.zarr``,
    ``models/{average,edice}``, ``imputed/{average,edice}``, ``scores.tsv``.
    """
    out = Path(out)
    if out.exists():
        if not (out / "demo.json").exists():
            raise FileExistsError(f"{out} exists and is not an epimpute demo folder")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.time()
    compendium = generate(SyntheticSpec(seed=seed))
    sheet, truth = write_compendium(compendium, out)
    log.info("generated %d observed and %d held-back tracks", len(compendium.observed),
             len(compendium.missing))
    store = api.ingest(sheet, out / "compendium.zarr", jobs=2, progress=progress)
    tables = []
    for model in ("average", "edice"):
        model_dir = api.train(store, out / "models" / model, model=model, seed=seed,
                              max_minutes=max_minutes, progress=progress, device="cpu")
        api.impute(model_dir, store, out / "imputed" / model, missing=True, progress=progress,
                   device="cpu")
        scores = score_folder(out / "imputed" / model, truth)
        scores.insert(0, "model", model)
        tables.append(scores)
    scores = pd.concat(tables, ignore_index=True)
    scores.to_csv(out / "scores.tsv", sep="\t", index=False)
    (out / "demo.json").write_text(json.dumps({"seed": seed, "seconds": time.time() - started}))
    summary = scores.groupby("model")[["mse", "pearson", "mse1obs"]].mean()
    lines = [
        f"epimpute demo: {len(compendium.observed)} observed tracks, "
        f"{len(compendium.missing)} held back and imputed ({time.time() - started:.0f} s)",
        "",
        scores.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
        "",
        "mean over held-back tracks (arcsinh scale):",
        summary.to_string(float_format=lambda v: f"{v:.3f}"),
        "",
        f"outputs in {out}/: tracks/ truth/ compendium.zarr models/ imputed/ scores.tsv",
    ]
    return "\n".join(lines)

"""``epimpute demo``: generate a compendium, then ingest, train, impute and score it."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import pandas as pd

from epimpute import api
from epimpute.io.bigwig import BigWigWriter
from epimpute.synthetic import SyntheticCompendium, SyntheticSpec, generate

log = logging.getLogger(__name__)


def write_compendium(compendium: SyntheticCompendium, folder: Path) -> tuple[Path, Path]:
    """Write every track as a bigWig, with one sample sheet for the observed tracks and one
    for the held-back truth; returns the two sheets."""
    tracks, truth = folder / "tracks", folder / "truth"
    tracks.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    rows: dict[Path, list[dict[str, str]]] = {tracks: [], truth: []}
    missing = set(compendium.missing)
    for (cell, assay), per_contig in compendium.signal.items():
        target = truth if (cell, assay) in missing else tracks
        path = target / f"{cell}.{assay}.bw"
        with BigWigWriter(path, compendium.contigs, bin_size=compendium.bin_size) as writer:
            for contig, values in per_contig.items():
                writer.write(contig, 0, values)
        rows[target].append({"cell_type": cell, "assay": assay,
                             "path": f"{target.name}/{path.name}"})
    sheets = folder / "samples.tsv", folder / "truth.tsv"
    for sheet, entries in zip(sheets, rows.values()):
        pd.DataFrame(entries).to_csv(sheet, sep="\t", index=False)
    return sheets


def run_demo(out: Path, *, seed: int = 0, max_minutes: float = 1.0, progress: bool = False,
             spec: SyntheticSpec | None = None) -> str:
    """Run the whole pipeline on a generated compendium in ``out``; returns a text report.

    ``out`` is replaced if it holds an earlier demo. Files left behind: ``samples.tsv`` and
    ``tracks/`` (inputs), ``truth.tsv`` and ``truth/`` (held-back tracks), ``compendium.zarr``
    and ``truth.zarr`` (stores), ``models/{average,edice}``, ``imputed/{average,edice}``
    and ``report/`` (``epimpute evaluate``'s metrics, figures and ``report.html``).
    """
    out = Path(out)
    if out.exists():
        if not (out / "demo.json").exists():
            raise FileExistsError(f"{out} exists and is not an epimpute demo folder")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.time()
    compendium = generate(spec or SyntheticSpec(seed=seed))
    sheet, truth_sheet = write_compendium(compendium, out)
    log.info("generated %d observed and %d held-back tracks", len(compendium.observed),
             len(compendium.missing))
    store = api.ingest(sheet, out / "compendium.zarr", progress=progress)
    truth = api.ingest(truth_sheet, out / "truth.zarr", progress=progress)
    imputed = {}
    for model in ("average", "edice"):
        model_dir = api.train(store, out / "models" / model, model=model, seed=seed,
                              max_minutes=max_minutes, progress=progress, device="cpu")
        imputed[model] = out / "imputed" / model
        api.impute(model_dir, store, imputed[model], missing=True, progress=progress,
                   device="cpu")
    metrics = api.evaluate(truth, imputed, out / "report", bootstrap=200, progress=progress)
    (out / "demo.json").write_text(json.dumps({"seed": seed, "seconds": time.time() - started}))
    overall = metrics[metrics["stratum"] == "all"]
    shown = ["mse", "gwcorr", "mse1obs", "catch1obs", "auprc"]
    per_track = overall[overall["metric"].isin(shown[:2])].pivot_table(
        index=["cell_type", "assay"], columns=["metric", "model"], values="value")
    summary = overall[overall["metric"].isin(shown)].pivot_table(
        index="model", columns="metric", values="value")[shown]
    lines = [
        f"epimpute demo: {len(compendium.observed)} observed tracks, "
        f"{len(compendium.missing)} held back and imputed ({time.time() - started:.0f} s)",
        "",
        per_track.to_string(float_format=lambda v: f"{v:.3f}"),
        "",
        "mean over held-back tracks (arcsinh scale):",
        summary.to_string(float_format=lambda v: f"{v:.3f}"),
        "",
        f"outputs in {out}/: tracks/ truth/ compendium.zarr truth.zarr models/ imputed/ "
        f"report/report.html",
    ]
    return "\n".join(lines)

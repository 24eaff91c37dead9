"""``epimpute demo``: generate a compendium, then ingest, train, impute and score it.

The demo's budgets are counted in epochs and bins, never in seconds, and it trains on the
CPU in fp32 with one torch thread, so it gives the same numbers on every machine and every
run with the same seed (see :class:`DemoSpec`).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike

from epimpute import api
from epimpute.io.atomic import check_destination
from epimpute.io.bigwig import BigWigWriter
from epimpute.provenance import write_json_record
from epimpute.synthetic import SyntheticCompendium, SyntheticSpec, generate

__all__ = ["DemoResult", "DemoSpec", "LocusView", "run_demo", "sparkline", "write_compendium"]

log = logging.getLogger(__name__)

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
HEADLINE_METRICS = ("mse", "gwcorr", "mse1obs", "auprc")
NARROW_MARKS = ("H3K4me3", "H3K27ac")


def _edice_config() -> dict[str, Any]:
    return {
        "model": {"d_model": 32, "feedforward": 64, "decoder_hidden": [128, 128]},
        "training": {"max_epochs": 5, "epoch_bins": 16_000, "batch_size": 512,
                     "learning_rate": 0.002, "ema_decay": None},
    }


@dataclass
class DemoSpec:
    """What the demo generates, and how much it trains and scores.

    Attributes
    ----------
    data
        The generated compendium (its ``seed`` is replaced by :func:`run_demo`'s).
    edice
        eDICE's ``--config`` (``{"model": {...}, "training": {...}}``), written to
        ``edice.json`` in the demo folder: a small network trained for a fixed number of
        epochs of a fixed number of bins.
    bootstrap
        Bootstrap resamples of the evaluation.
    locus_chars, locus_step
        The locus shown in the terminal: ``locus_chars`` characters, each the mean of
        ``locus_step`` bins (a peak of a narrow mark spans 2-4 kb).
    """

    data: SyntheticSpec = field(default_factory=lambda: SyntheticSpec(
        contigs={"chrA": 700_000, "chrB": 500_000}))
    edice: dict[str, Any] = field(default_factory=_edice_config)
    bootstrap: int = 100
    locus_chars: int = 72
    locus_step: int = 3


@dataclass
class LocusView:
    """A window of one held-back track: observed and imputed signal (arcsinh scale)."""

    key: str
    contig: str
    start_bin: int
    bin_size: int
    signals: dict[str, np.ndarray]
    """``observed`` first, then one entry per model."""
    step: int = 1
    """Bins per character when drawn."""


@dataclass
class DemoResult:
    """What :func:`run_demo` made, and the text the command prints."""

    out: Path
    n_observed: int
    n_held_back: int
    per_track: pd.DataFrame
    summary: pd.DataFrame
    locus: LocusView | None
    seconds: float
    n_bins: int
    """Bins of each track."""

    @property
    def report(self) -> Path:
        return self.out / "report" / "report.html"

    def text(self) -> str:
        """The demo's terminal summary; its last lines show a locus and where the report is."""
        lines = [
            (f"epimpute demo: {self.n_observed} observed tracks, {self.n_held_back} held back "
             f"and imputed ({self.seconds:.0f} s)"),
            "",
            self.per_track.to_string(float_format=_three_decimals),
            "",
            (f"mean over the {self.n_held_back} held-back tracks, {self.n_bins:,} bins each "
             "(arcsinh scale):"),
            self.summary.to_string(float_format=_three_decimals),
            "",
            (f"outputs in {self.out}/: tracks/ truth/ compendium.zarr truth.zarr models/ "
             "imputed/ report/"),
        ]
        if self.locus is not None:
            lines += ["", *_locus_lines(self.locus)]
        lines += [
            "",
            f"report: {self.report}",
            f"open it in a browser, e.g. python -m webbrowser {self.report.resolve().as_uri()}",
        ]
        return "\n".join(lines)


def _three_decimals(value: float) -> str:
    return f"{value:.3f}"


def sparkline(values: ArrayLike, *, top: float | None = None) -> str:
    """One block character per value, from ``▁`` (0 or less) to ``█`` (``top`` or more).

    Parameters
    ----------
    values
        1-D values; NaN becomes a space.
    top
        The value drawn as a full block (default: the largest finite value), so several
        lines can share one scale.

    Returns
    -------
    str
        ``len(values)`` characters.
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    finite = data[np.isfinite(data)]
    if top is None:
        top = float(finite.max()) if finite.size else 0.0
    if not top > 0:
        return "".join(" " if math.isnan(v) else SPARK_LEVELS[0] for v in data)
    top_level = len(SPARK_LEVELS) - 1
    levels = np.clip(np.rint(np.nan_to_num(data / top) * top_level), 0, top_level).astype(int)
    return "".join(" " if math.isnan(v) else SPARK_LEVELS[k] for v, k in zip(data, levels))


def _locus_lines(locus: LocusView) -> list[str]:
    drawn = {name: v[: v.size // locus.step * locus.step].reshape(-1, locus.step).mean(axis=1)
             for name, v in locus.signals.items()}
    top = max(float(np.nanmax(v)) for v in drawn.values())
    width = max(len(name) for name in drawn)
    first_bp = locus.start_bin * locus.bin_size
    last_bp = (locus.start_bin + len(locus.signals["observed"])) * locus.bin_size
    lines = [(f"{locus.key} (held back) at {locus.contig}:{first_bp:,}-{last_bp:,}, where the "
              "two imputations differ most"),
             f"({locus.step * locus.bin_size} bp per character, arcsinh scale):"]
    observed = locus.signals["observed"]
    for name, values in locus.signals.items():
        error = "" if name == "observed" else f"  MSE {np.mean((values - observed) ** 2):.2f}"
        lines.append(f"  {name:<{width}} {sparkline(drawn[name], top=top)}{error}")
    return lines


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


def run_demo(out: Path, *, seed: int = 0, progress: bool = False,
             spec: DemoSpec | None = None) -> DemoResult:
    """Run the whole pipeline on a generated compendium in ``out``.

    ``out`` is replaced if it holds an earlier demo. Files left behind: ``samples.tsv`` and
    ``tracks/`` (inputs), ``truth.tsv`` and ``truth/`` (held-back tracks), ``edice.json``
    (eDICE's configuration), ``compendium.zarr`` and ``truth.zarr`` (stores),
    ``models/{average,edice}``, ``imputed/{average,edice}`` and ``report/``
    (``epimpute evaluate``'s metrics, figures and ``report.html``). Torch runs on one CPU
    thread meanwhile (restored afterwards), so results do not depend on the machine's cores.
    """
    spec = spec or DemoSpec()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    check_destination(out, kind="demo folder", is_own=lambda p: (p / "demo.json").is_file(),
                      overwrite=True)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(out, seed=seed, progress=progress, spec=spec)
    finally:
        torch.set_num_threads(threads)


def _run(out: Path, *, seed: int, progress: bool, spec: DemoSpec) -> DemoResult:
    started = time.time()
    compendium = generate(replace(spec.data, seed=seed))
    sheet, truth_sheet = write_compendium(compendium, out)
    log.info("generated %d observed and %d held-back tracks", len(compendium.observed),
             len(compendium.missing))
    store = api.ingest(sheet, out / "compendium.zarr", progress=progress)
    truth = api.ingest(truth_sheet, out / "truth.zarr", progress=progress)
    config = out / "edice.json"
    config.write_text(json.dumps(spec.edice, indent=2) + "\n")
    imputed = {}
    for model in ("average", "edice"):
        model_dir = api.train(store, out / "models" / model, model=model, seed=seed,
                              config=config if model == "edice" else None,
                              progress=progress, device="cpu", precision="fp32")
        imputed[model] = out / "imputed" / model
        api.impute(model_dir, store, imputed[model], missing=True, progress=progress,
                   device="cpu", precision="fp32")
    metrics = api.evaluate(truth, imputed, out / "report", bootstrap=spec.bootstrap, seed=seed,
                           plot_metrics=HEADLINE_METRICS[:3], progress=progress)
    seconds = time.time() - started
    write_json_record(out / "demo.json", {"seed": seed, "seconds": round(seconds, 1)})
    overall = metrics[metrics["stratum"] == "all"]
    per_track = overall[overall["metric"].isin(HEADLINE_METRICS[:2])].pivot_table(
        index=["cell_type", "assay"], columns=["metric", "model"], values="value")
    summary = overall[overall["metric"].isin(HEADLINE_METRICS)].pivot_table(
        index="model", columns="metric", values="value")[list(HEADLINE_METRICS)]
    locus = _pick_locus(truth, imputed, compendium.missing,
                        width=spec.locus_chars * spec.locus_step, step=spec.locus_step)
    n_bins = sum(store.n_bins(c) for c in store.contigs)
    return DemoResult(out, len(compendium.observed), len(compendium.missing), per_track,
                      summary, locus, seconds, n_bins)


def _pick_locus(truth: Any, imputed: dict[str, Path], held_back: list[tuple[str, str]], *,
                width: int, step: int = 1) -> LocusView | None:
    """A window of a held-back narrow-mark track where eDICE's and the average's errors
    differ most (whichever model is the better there), centred on its strongest signal:
    the ``width`` bins whose summed squared errors differ most, then re-centred on the
    largest observed value (smoothed over 5 bins) among them."""
    from epimpute.evaluation.sources import PredictionDir

    order = sorted(imputed, key=lambda name: name == "average")  # the baseline last
    sources = {name: PredictionDir(imputed[name], name=name) for name in order}
    kernel, window_sum = np.ones(5) / 5, np.ones(width)
    best: tuple[float, LocusView] | None = None
    for cell, assay in held_back:
        if assay not in NARROW_MARKS:
            continue
        key = f"{cell}:{assay}"
        row = truth.track_index(key)
        for contig in truth.contigs:
            n = truth.n_bins(contig)
            if n < width:
                continue
            signals = {"observed": truth.read(contig, tracks=[row])[0]}
            for name, source in sources.items():
                signals[name] = source.read(key, contig, length=truth.contigs[contig],
                                            bin_size=truth.bin_size)
            errors = {n: (v - signals["observed"]) ** 2 for n, v in signals.items()}
            gap = np.abs(np.convolve(errors["edice"] - errors["average"], window_sum,
                                     mode="same"))
            centre = int(np.argmax(gap))
            if best is None or gap[centre] > best[0]:
                lo, hi = max(0, centre - width // 2), min(n, centre + width // 2)
                smooth = np.convolve(signals["observed"][lo:hi], kernel, mode="same")
                summit = lo + int(np.argmax(smooth))
                start = min(max(0, summit - width // 2), n - width)
                window = {name: np.asarray(v[start:start + width], dtype=np.float32)
                          for name, v in signals.items()}
                best = float(gap[centre]), LocusView(key, contig, start, truth.bin_size, window,
                                                     step)
    return None if best is None else best[1]

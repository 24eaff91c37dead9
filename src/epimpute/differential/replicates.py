"""Simulated replicate tracks of observed or imputed means, written as a store.

A track's bins (arcsinh scale) become expected pseudo-counts ``scale * sinh(x)``
(:func:`epimpute.differential.nb.to_counts`); ``n`` negative-binomial replicates are drawn
from them with the dispersion trend of the track's assay, fitted to the observed tracks of
that assay in the store across cell types (block sums of ``block`` bins, so the dispersion
is that of peak-sized regions). Without real replicates the spread across cell types is
the only variability the data show; it includes the differences between cell types, which
the trend fit's outlier rule removes only in part, so the simulated replicates are, if
anything, more variable than real ones (a conservative test).

The output is a store with ``transform: "none"`` (values are counts) and one track per
replicate: ``cell_type``, ``assay`` and ``individual`` ``rep1 .. repN``. Its group
attribute ``epimpute_replicates`` records the scale, block, seed, source and trends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from tqdm.auto import tqdm

from epimpute.differential.nb import (
    DispersionTrend,
    block_sums,
    fit_dispersion_trend,
    sample_replicates,
    to_counts,
)
from epimpute.errors import InputError
from epimpute.evaluation.sources import PredictionDir
from epimpute.io.atomic import publish_dir
from epimpute.io.trackkey import TrackKey
from epimpute.store import Store, Track, create_store
from epimpute.store.store import is_store

__all__ = ["REPLICATES_ATTR", "estimate_dispersion", "replicate_settings", "replicates"]

REPLICATES_ATTR = "epimpute_replicates"
_FIT_REGIONS = 200_000
_WINDOW_BINS = 1 << 20  # bins read at a time for the dispersion fit


def estimate_dispersion(store: Store, assay: str, *, scale: float, block: int,
                        seed: int = 0) -> DispersionTrend:
    """Dispersion trend of ``assay`` from its observed tracks across cell types.

    Parameters
    ----------
    store
        The observed store.
    assay
        Assay whose tracks are used (at least two).
    scale
        Pseudo-reads per unit of ``-log10 p`` (see :func:`to_counts`).
    block
        Bins summed into one region.
    seed
        Seed of the subsample of at most 200,000 regions the trend is fitted to.

    Returns
    -------
    DispersionTrend
        Fitted to squared coefficients of variation (``poisson=False``): observed tracks
        are continuous signal, so all their spread counts as dispersion.
    """
    rows = [i for i, t in enumerate(store.tracks) if t.assay == assay]
    if len(rows) < 2:
        raise InputError(f"{store.path}: assay {assay!r} has {len(rows)} observed track(s); "
                         "the dispersion needs at least 2")
    step = block * max(1, _WINDOW_BINS // block)  # whole blocks, bounded memory
    sums = np.concatenate(
        [block_sums(to_counts(store.read(c, s, min(s + step, store.n_bins(c)), tracks=rows),
                              scale=scale), block)
         for c in store.contigs for s in range(0, store.n_bins(c), step)], axis=1)
    if sums.shape[1] > _FIT_REGIONS:
        pick = np.random.default_rng(seed).choice(sums.shape[1], _FIT_REGIONS, replace=False)
        sums = sums[:, np.sort(pick)]
    return fit_dispersion_trend(sums, poisson=False)


def replicates(
    store: Path | Store,
    out: Path,
    *,
    targets: Sequence[str],
    imputed: Path | None = None,
    n: int = 3,
    scale: float = 10.0,
    block: int = 40,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Draw ``n`` negative-binomial replicates of each target track into a new store.

    Parameters
    ----------
    store
        Observed store: the source of the means (without ``imputed``), of the contigs and
        bin size, and of each assay's dispersion trend.
    out
        Store to create (e.g. ``replicates.zarr``).
    targets
        Tracks ``CELL:ASSAY`` whose mean is replicated.
    imputed
        Folder written by ``epimpute impute``; the means are read from it instead of the store.
    n
        Replicates per target (at least 1).
    scale
        Pseudo-reads per bin for one unit of ``-log10 p``.
    block
        Bins sharing one replicate-level fluctuation (40 bins of 25 bp: 1 kb).
    seed
        Seed of the draws and of the dispersion fits (non-negative).
    overwrite
        Replace an existing replicate store at ``out``.
    progress
        Show a progress bar.

    Returns
    -------
    pathlib.Path
        The store written.
    """
    source = store if isinstance(store, Store) else Store.open(store)
    if not targets:
        raise InputError("give at least one --target CELL:ASSAY")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"--n must be a positive number of replicates, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed!r}")
    keys = [TrackKey.parse(t) for t in targets]
    if len({str(k) for k in keys}) != len(keys):
        raise InputError("a --target is given twice")
    predictions = None if imputed is None else PredictionDir(imputed, name="imputed")
    for key in keys:
        if predictions is None and source.track_index(str(key)) is None:
            raise InputError(f"{source.path}: no observed track {str(key)!r}")
        if predictions is not None and predictions.file_for(str(key)) is None:
            raise InputError(f"{imputed}: no imputed track {str(key)!r}")
    trends = {a: estimate_dispersion(source, a, scale=scale, block=block, seed=seed)
              for a in dict.fromkeys(k.assay for k in keys)}
    tracks = [Track(cell_type=k.cell_type, assay=k.assay,
                    individual=f"{k.individual}-rep{r + 1}" if k.individual else f"rep{r + 1}",
                    source=str(imputed if imputed is not None else source.path))
              for k in keys for r in range(n)]
    settings = {"scale": float(scale), "block": int(block), "seed": seed, "n": n,
                "source": "imputed" if imputed is not None else "observed",
                "trends": {a: [t.a0, t.a1] for a, t in trends.items()}}
    out = Path(out)
    with publish_dir(out, kind="replicate store", is_own=_is_replicates, overwrite=overwrite,
                     inputs=[source.path] + ([Path(imputed)] if imputed is not None else [])) as tmp:
        writer = create_store(tmp, tracks=tracks, contigs=source.contigs,
                              bin_size=source.bin_size, transform="none")
        zarr.open_group(tmp, mode="r+").attrs[REPLICATES_ATTR] = settings
        work = [(i, k, c) for i, k in enumerate(keys) for c in source.contigs]
        for i, key, contig in tqdm(work, desc="replicates", unit="track", disable=not progress):
            if predictions is None:
                row = source.track_index(str(key))
                mean = source.read(contig, tracks=[row])[0]
            else:
                mean = predictions.read(str(key), contig, length=source.contigs[contig],
                                        bin_size=source.bin_size)
            rng = np.random.default_rng([seed, i, list(source.contigs).index(contig)])
            draws = sample_replicates(to_counts(mean, scale=scale), trends[key.assay], n=n,
                                      block=block, rng=rng)
            for r in range(n):
                writer.write(i * n + r, contig, draws[r])
    return out


def replicate_settings(store: Store) -> dict[str, Any]:
    """The ``epimpute_replicates`` attribute of a replicate store (InputError if absent)."""
    settings = zarr.open_group(store.path, mode="r").attrs.get(REPLICATES_ATTR)
    if not isinstance(settings, dict) or "scale" not in settings:
        raise InputError(f"{store.path}: not a replicate store (written by epimpute replicates)")
    return json.loads(json.dumps(settings))


def _is_replicates(path: Path) -> bool:
    return is_store(path) and REPLICATES_ATTR in zarr.open_group(path, mode="r").attrs

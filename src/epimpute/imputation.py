"""Stream a store through a trained model, window by window, into files or a store.

A *window* is a run of bins of one contig. Each window's inputs are read once and every
target is imputed from them in one pass of the model per group of targets that share
the same inputs; the window's length shrinks so that the imputed values of all targets
fit in :data:`WINDOW_MEMORY`. Outputs: one bigWig or ``.npz`` file per target (at most
:data:`epimpute.export.MAX_OPEN_FILES` open; more targets go through a temporary store,
then :func:`epimpute.export.export_tracks`), or an output store
(:mod:`epimpute.imputed_store`) written window by window, resumable, optionally on Dask.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from epimpute.errors import InputError
from epimpute.hardware import autocast, uses_bf16
from epimpute.intervals import CURVE_LEVELS
from epimpute.io.trackkey import output_path, spread_key
from epimpute.models.base import Imputer
from epimpute.provenance import write_json_record
from epimpute.store import Store

if TYPE_CHECKING:
    from epimpute.imputed_store import WindowRunner

log = logging.getLogger(__name__)

OutputFormat = Literal["bigwig", "npz", "zarr"]
WINDOW_MEMORY = 512 * 2**20
"""Bytes of input and imputed float32 values one window may hold."""
RECORD_FILE = "imputation.json"
"""Written into the output folder last: what the latest imputation wrote, and how."""


@dataclass(frozen=True)
class Target:
    """One track to impute and the model inputs it may use."""

    key: str
    pair: tuple[int, int]
    leave_out: int | None
    """Input row hidden for a leave-one-out imputation of an observed track."""


def resolve_targets(
    imputer: Imputer,
    store: Store,
    *,
    targets: Sequence[str] = (),
    missing: bool = False,
) -> list[Target]:
    """Turn ``--target`` keys and/or ``--missing`` into :class:`Target` objects.

    ``missing`` selects every (biosample, assay) pair of the model that has no track in
    ``store``. A named target that is one of the model's inputs is imputed with that
    input hidden (leave-one-out).
    """
    layout = imputer.layout
    keys: list[str] = list(targets)
    if missing:
        observed = {t.key for t in store.tracks}
        keys += [layout.key(b, a) for b in range(layout.n_biosamples)
                 for a in range(layout.n_assays) if layout.key(b, a) not in observed]
    if not keys:
        raise InputError("nothing to impute: give --target CELL:ASSAY or --missing")
    input_row = {key: i for i, key in enumerate(layout.keys)}
    resolved, seen = [], set()
    for key in keys:
        if key in seen:
            continue
        seen.add(key)
        resolved.append(Target(key, layout.index_of(key), input_row.get(key)))
    return resolved


def input_availability(imputer: Imputer, store: Store) -> tuple[np.ndarray, np.ndarray]:
    """Map the model's input tracks onto store rows.

    Returns ``rows`` (store row per model input, -1 when the store lacks it) and
    ``available`` (bool per model input).
    """
    found = (store.track_index(k) for k in imputer.layout.keys)
    rows = np.array([-1 if row is None else row for row in found], dtype=np.int64)
    available = rows >= 0
    if not available.any():
        raise InputError(f"{store.path} holds none of the tracks the model takes as input")
    lacking = [k for k, ok in zip(imputer.layout.keys, available) if not ok]
    if lacking:
        log.warning("the store lacks %d of the model's input tracks (%s); imputing without them",
                    len(lacking), ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else ""))
    return rows, available


def output_file(out_dir: Path, key: str, output_format: OutputFormat) -> Path:
    """``OUT_DIR/BIOSAMPLE.ASSAY.bw`` or ``.npz`` (see :func:`epimpute.io.trackkey.output_path`)."""
    return output_path(out_dir, key, ".bw" if output_format == "bigwig" else ".npz")


def output_keys(targets: Sequence[Target], *, spread: bool = False) -> list[str]:
    """Keys of the tracks an imputation writes: the targets', then with ``spread`` their sd
    tracks' (``CELL:ASSAY.sd``, see :func:`epimpute.io.trackkey.spread_key`)."""
    keys = [t.key for t in targets]
    return keys + ([spread_key(k) for k in keys] if spread else [])


def window_bins(chunk_bins: int, n_targets: int, n_inputs: int) -> int:
    """Bins per window: ``chunk_bins``, fewer (a multiple of 256) when the window's input
    and output values would exceed :data:`WINDOW_MEMORY`."""
    if chunk_bins < 1:
        raise InputError(f"chunk_bins must be positive, got {chunk_bins}")
    fit = WINDOW_MEMORY // (4 * max(1, n_targets + n_inputs))
    return int(min(chunk_bins, max(256, fit // 256 * 256)))


@dataclass(frozen=True)
class Window:
    """Bins ``lo .. hi`` of ``contig``, window number ``index`` of that contig."""

    contig: str
    index: int
    lo: int
    hi: int


def plan_windows(store: Store, contigs: Sequence[str], bins: int) -> list[Window]:
    """Every window of ``bins`` bins (the last of a contig shorter), in genome order."""
    return [Window(contig, i, lo, min(lo + bins, store.n_bins(contig)))
            for contig in contigs for i, lo in enumerate(range(0, store.n_bins(contig), bins))]


class WindowImputer:
    """Imputes every target over one window; built once per process.

    Parameters
    ----------
    imputer
        The trained model (moved to ``device``).
    store
        The inputs.
    targets
        What to impute (see :func:`resolve_targets`).
    device, precision
        Where the model runs and its autocast (see :func:`impute`).
    spread
        Also impute each target's sd (:meth:`Imputer.impute_region_spread`): the rows of a
        window are then the means, then the sds, in the order of :func:`output_keys`.

    Attributes
    ----------
    rows, available
        Store row of each model input (-1 when absent) and whether it is present (see
        :func:`input_availability`).
    """

    def __init__(self, imputer: Imputer, store: Store, targets: Sequence[Target], *,
                 device: torch.device | str = "cpu", precision: str = "fp32",
                 spread: bool = False) -> None:
        if spread:
            imputer.require_uncertainty()
        self.imputer, self.store, self.targets = imputer, store, list(targets)
        self.spread = spread
        device = torch.device(device)
        imputer.to(device)
        self._reduced = (device, imputer.reduced_precision and uses_bf16(precision, device))
        self.rows, self.available = input_availability(imputer, store)
        self._present = np.flatnonzero(self.rows >= 0)
        self._groups = _group_by_inputs(self.targets, self.available)

    @property
    def n_outputs(self) -> int:
        """Rows of a window: the targets, twice with ``spread``."""
        return len(self.targets) * (2 if self.spread else 1)

    def read_inputs(self, window: Window) -> np.ndarray:
        """``(model inputs, hi - lo + 2 * context_bins)`` float32 input signal of ``window``
        with its context margins (0 for inputs the store lacks)."""
        margin = self.imputer.context_bins
        lo, hi = window.lo, window.hi
        signal = np.zeros((len(self.rows), hi - lo + 2 * margin), dtype=np.float32)
        if self.imputer.reads_signal:  # Avocado imputes from its genome factors alone
            signal[self._present] = self.store.read(window.contig, lo - margin, hi + margin,
                                                    tracks=self.rows[self._present])
        return signal

    def predict(self, signal: np.ndarray, mask: np.ndarray, pairs: Sequence[tuple[int, int]],
                window: Window) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The model's means of ``pairs`` over ``window`` (with ``spread`` also their sds)
        from the inputs of :meth:`read_inputs` that ``mask`` marks available."""
        with autocast(self._reduced[0], enabled=self._reduced[1]):
            if self.spread:
                return self.imputer.impute_region_spread(signal, mask, pairs,
                                                         contig=window.contig, start=window.lo)
            return self.imputer.impute_region(signal, mask, pairs, contig=window.contig,
                                              start=window.lo)

    def __call__(self, window: Window) -> np.ndarray:
        """``(n_outputs, hi - lo)`` float32 imputed arcsinh signal (then sds) of ``window``."""
        signal = self.read_inputs(window)
        n = len(self.targets)
        out = np.empty((self.n_outputs, window.hi - window.lo), dtype=np.float32)
        for mask, members in self._groups:
            predicted = self.predict(signal, mask, [self.targets[i].pair for i in members],
                                     window)
            if self.spread:
                predicted, sd = predicted
                out[[n + i for i in members]] = sd
            out[members] = predicted
        return out


def impute(  # noqa: PLR0913 - keyword-only options, one per command-line option
    imputer: Imputer,
    store: Store,
    targets: Sequence[Target],
    out: Path,
    *,
    output_format: OutputFormat = "bigwig",
    arcsinh_scale: bool = False,
    chunk_bins: int = 100_000,
    contigs: Sequence[str] | None = None,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    resume: bool = False,
    runner: WindowRunner | None = None,
    model_dir: Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    spread: bool = False,
) -> list[Path]:
    """Impute ``targets`` genome-wide from the inputs in ``store``.

    Memory does not grow with contig length or the number of targets (see
    :func:`window_bins`), nor do open files. bigWig values are on the ``-log10 p`` scale
    (``sinh`` of the model's output, floored at 0) unless ``arcsinh_scale``; npz files hold
    one float32 array per contig on the arcsinh scale; ``zarr`` writes the store ``out``
    (tracks = targets, arcsinh scale; see :mod:`epimpute.imputed_store`), resumable with
    ``resume`` and run window by window by ``runner`` (in this process by default; see
    :mod:`epimpute.distributed`, which needs ``model_dir``, the folder of ``imputer``). Files and stores appear only when complete.
    ``precision`` (``fp32``, ``bf16`` or ``auto``, see :func:`epimpute.hardware.uses_bf16`)
    sets the autocast of the forward passes of models that allow it. With ``spread`` (models
    that predict uncertainty) each target's predicted sd is written too, as the track
    ``CELL:ASSAY.sd`` (file ``CELL.ASSAY.sd.bw`` / ``.npz``), always on the arcsinh scale.

    Returns
    -------
    list[Path]
        The written files in the order of :func:`output_keys`, or ``[out]`` for ``zarr``.
    """
    from epimpute import imputed_store
    from epimpute.export import MAX_OPEN_FILES, export_tracks

    out = Path(out)
    contig_names = list(store.contigs) if contigs is None else list(contigs)
    if output_format == "zarr":
        return [imputed_store.impute_to_store(
            imputer, store, targets, out, chunk_bins=chunk_bins, contigs=contig_names,
            device=device, precision=precision, resume=resume, runner=runner,
            model_dir=model_dir, overwrite=overwrite, progress=progress, spread=spread)]
    keys = output_keys(targets, spread=spread)
    if runner is not None or len(keys) > MAX_OPEN_FILES:
        out.mkdir(parents=True, exist_ok=True)
        scratch = out / ".imputed.zarr"
        try:
            imputed = imputed_store.impute_to_store(
                imputer, store, targets, scratch, chunk_bins=chunk_bins,
                contigs=contig_names, device=device, precision=precision, resume=resume,
                runner=runner, model_dir=model_dir, progress=progress, spread=spread)
            paths = export_tracks(Store.open(imputed), keys, out,
                                  output_format=output_format, arcsinh_scale=arcsinh_scale,
                                  progress=progress)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    else:
        paths = _impute_to_files(WindowImputer(imputer, store, targets, device=device,
                                               precision=precision, spread=spread),
                                 out, output_format=output_format, arcsinh_scale=arcsinh_scale,
                                 chunk_bins=chunk_bins, contigs=contig_names,
                                 progress=progress)
    record = {
        "model": imputer.name, "store": str(store.path), "targets": [t.key for t in targets],
        "files": [p.name for p in paths[:len(targets)]], "format": output_format,
        "scale": "arcsinh" if arcsinh_scale or output_format == "npz" else "-log10 p"}
    if spread:
        record.update({"sd_files": [p.name for p in paths[len(targets):]],
                       "sd_scale": "arcsinh",
                       "sd": "per-bin sd around the imputed value on the arcsinh scale, "
                             "calibrated on held-out validation bins; the central interval at "
                             "level p is mean +- w_p * sd (interval_half_widths)"})
        widths = imputer.interval_widths([t.pair for t in targets])
        if widths is not None:
            record["interval_half_widths"] = {
                "levels": list(CURVE_LEVELS),
                "tracks": {t.key: [round(float(w), 6) for w in row]
                           for t, row in zip(targets, widths)}}
    write_json_record(out / RECORD_FILE, record)
    return paths


def _impute_to_files(work: WindowImputer, out_dir: Path, *, output_format: str,
                     arcsinh_scale: bool, chunk_bins: int, contigs: list[str],
                     progress: bool) -> list[Path]:
    """Stream every window into one open file per target (few targets)."""
    from epimpute.export import TrackFiles, key_values

    store = work.store
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = output_keys(work.targets, spread=work.spread)
    paths = [output_file(out_dir, key, output_format) for key in keys]
    bins = window_bins(chunk_bins, len(keys), len(work.rows))
    with ExitStack() as stack:
        files = TrackFiles(paths, output_format, {c: store.contigs[c] for c in contigs},
                           bin_size=store.bin_size, stack=stack)
        bar = stack.enter_context(tqdm(total=sum(store.n_bins(c) for c in contigs),
                                       unit="bin", unit_scale=True, desc="imputing",
                                       disable=not progress))
        for contig in contigs:
            files.begin(store.n_bins(contig), contig)
            for window in plan_windows(store, [contig], bins):
                block = work(window)
                files.write(contig, window.lo,
                            key_values(block, keys, output_format, arcsinh_scale=arcsinh_scale))
                bar.update(window.hi - window.lo)
    return paths


def _group_by_inputs(
    targets: Sequence[Target], available: np.ndarray
) -> list[tuple[np.ndarray, list[int]]]:
    """Targets sharing the same available inputs, so each group needs one model pass."""
    groups: dict[bytes, tuple[np.ndarray, list[int]]] = {}
    for i, target in enumerate(targets):
        mask = available.copy()
        if target.leave_out is not None:
            mask[target.leave_out] = False
        if not mask.any():
            raise InputError(f"no inputs are left to impute {target.key}")
        groups.setdefault(mask.tobytes(), (mask, []))[1].append(i)
    return list(groups.values())

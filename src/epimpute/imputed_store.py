"""Imputation into an output store, window by window, resumable by window.

The output is a store of the usual format (:mod:`epimpute.store`) whose tracks are the
imputed targets, on the arcsinh scale, with chunks of :data:`TRACK_BLOCK` tracks x one
window of bins, so each window writes its own chunks and no two windows share one. While
it is written it lives beside its final path as ``.NAME.partial/``, holding
``imputation.json`` (what is imputed, to check a resumed run is the same) and one empty
marker per finished window in ``.done/``. When every window is done the markers go and
the folder is renamed to its final name.

Windows are run by a *runner*: by default one after the other in this process; or by
:class:`epimpute.distributed.DaskRunner`, which sends each window to a Dask worker. Such a
worker rebuilds the imputation from a :class:`StoreJob` (model folder, input store,
targets), once per process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from epimpute.errors import InputError
from epimpute.imputation import (
    Target,
    Window,
    WindowImputer,
    output_keys,
    plan_windows,
    window_bins,
)
from epimpute.io.atomic import atomic_file, check_destination, publish
from epimpute.models.base import Imputer
from epimpute.models.layout import split_key
from epimpute.store import Store, Track, create_store
from epimpute.store.store import StoreWriter, is_store

RECORD_FILE = "imputation.json"
DONE_DIR = ".done"
TRACK_BLOCK = 64
"""Tracks per chunk of an output store."""


@dataclass(frozen=True)
class StoreJob:
    """Everything a process needs to impute windows into a partial output store (picklable).

    Attributes
    ----------
    model_dir
        The trained model's folder.
    inputs
        The input store.
    partial
        The output store being written.
    targets
        What to impute, in output-row order.
    device, precision
        As for :func:`epimpute.imputation.impute`.
    """

    model_dir: str
    inputs: str
    partial: str
    targets: tuple[Target, ...]
    device: str = "cpu"
    precision: str = "fp32"
    weights: str = ""
    """Digest of the model's parameters (:func:`weights_digest`), so a worker never reuses
    a model loaded for another imputation."""
    spread: bool = False
    """Also write each target's predicted sd (tracks after the targets')."""

    def build(self) -> WindowWriter:
        """Load the model and open both stores."""
        from epimpute.model_dir import load_model

        work = WindowImputer(load_model(Path(self.model_dir)), Store.open(self.inputs),
                             self.targets, device=self.device, precision=self.precision,
                             spread=self.spread)
        return WindowWriter(work, Path(self.partial))


class WindowRunner(Protocol):
    """Runs ``writer_of(job)(window)`` for every window, calling ``on_done`` after each."""

    def __call__(self, job: StoreJob | None, local: WindowWriter,
                 windows: Sequence[Window], on_done: Callable[[Window], None]) -> None: ...


class WindowWriter:
    """Imputes a window, writes it into the partial store, then marks it done."""

    def __init__(self, work: WindowImputer, partial: Path) -> None:
        self.work = work
        self.partial = Path(partial)
        self._writer = StoreWriter(partial)

    def __call__(self, window: Window) -> Window:
        block = self.work(window)
        self._writer.write_block(0, window.contig, block, start=window.lo)
        (self.partial / DONE_DIR / marker(window)).touch()
        return window


def run_here(job: StoreJob | None, local: WindowWriter, windows: Sequence[Window],
             on_done: Callable[[Window], None]) -> None:
    """The default runner: every window in this process, in order."""
    for window in windows:
        on_done(local(window))


def marker(window: Window) -> str:
    """File name of a finished window's marker."""
    return f"{window.contig}.{window.index}"


def partial_path(out: Path) -> Path:
    """Where the output store ``out`` is written until it is complete."""
    return out.with_name(f".{out.name}.partial")


def target_track(key: str) -> Track:
    """The output store's track for target ``BIOSAMPLE:ASSAY`` (``CELL@INDIVIDUAL`` split)."""
    biosample, assay = split_key(key)
    cell, _, individual = biosample.partition("@")
    return Track(cell, assay, individual, source="imputed")


def impute_to_store(  # noqa: PLR0913 - keyword-only options, one per command-line option
    imputer: Imputer,
    store: Store,
    targets: Sequence[Target],
    out: Path,
    *,
    chunk_bins: int,
    contigs: Sequence[str],
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    resume: bool = False,
    runner: WindowRunner | None = None,
    model_dir: Path | None = None,
    overwrite: bool = False,
    progress: bool = False,
    spread: bool = False,
) -> Path:
    """Impute ``targets`` into the new store ``out``; returns ``out``.

    With ``spread`` the store also holds each target's predicted sd, track
    ``CELL:ASSAY.sd`` (arcsinh scale), after the targets' tracks.

    With ``resume``, an unfinished ``.NAME.partial`` of the same imputation is continued
    and its finished windows are skipped. A ``runner`` other than the default needs
    ``model_dir`` (the folder ``imputer`` was loaded from), to rebuild it in its workers.
    With ``overwrite`` an earlier epimpute store at ``out`` is replaced when this one is
    complete.

    Raises
    ------
    InputError
        If ``out`` exists (and is not an epimpute store to ``overwrite``), or an unfinished imputation is there and ``resume`` is not set
        or it imputes something else.
    """
    out = Path(out)
    destination = {"kind": "store", "is_own": is_store, "overwrite": overwrite}
    out.parent.mkdir(parents=True, exist_ok=True)
    check_destination(out, **destination)
    partial = partial_path(out)
    local = WindowImputer(imputer, store, targets, device=device, precision=precision,
                          spread=spread)
    keys = output_keys(targets, spread=spread)
    bins = window_bins(chunk_bins, len(keys), len(local.rows))
    record = _record(imputer, store, keys, contigs, bins)
    _open_partial(partial, record, store, keys, contigs, bins, resume=resume)
    windows = plan_windows(store, contigs, bins)
    finished = set(os.listdir(partial / DONE_DIR))
    todo = [w for w in windows if marker(w) not in finished]
    job = None
    if runner is not None and runner is not run_here:
        if model_dir is None:
            raise ValueError("a runner other than run_here needs model_dir")
        job = StoreJob(str(Path(model_dir).resolve()), str(store.path.resolve()),
                       str(partial.resolve()), tuple(targets), str(device), precision,
                       record["weights"], spread)
    total = sum(w.hi - w.lo for w in windows)
    with tqdm(total=total, initial=total - sum(w.hi - w.lo for w in todo), unit="bin",
              unit_scale=True, desc=f"imputing {len(keys)} tracks",
              disable=not progress) as bar:
        (runner or run_here)(job, WindowWriter(local, partial), todo,
                             lambda w: bar.update(w.hi - w.lo))
    missing = [w for w in windows if not (partial / DONE_DIR / marker(w)).exists()]
    if missing:
        raise RuntimeError(f"{len(missing)} windows of {partial} were not written")
    shutil.rmtree(partial / DONE_DIR)
    publish(partial, out, **destination)
    return out


def weights_digest(imputer: Imputer) -> str:
    """SHA-1 of the model's parameters (its state_dict, without per-contig state)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(imputer.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _record(imputer: Imputer, store: Store, keys: Sequence[str],
            contigs: Sequence[str], bins: int) -> dict[str, Any]:
    """What identifies an imputation, as JSON values."""
    value = {"model": imputer.name, "weights": weights_digest(imputer),
             "config": imputer.config_dict(),
             "layout": imputer.layout.to_dict(), "inputs": str(store.path.resolve()),
             "targets": list(keys), "contigs": list(contigs),
             "window_bins": bins}
    return json.loads(json.dumps(value, default=str))


def _open_partial(partial: Path, record: dict[str, Any], store: Store,
                  keys: Sequence[str], contigs: Sequence[str], bins: int, *,
                  resume: bool) -> None:
    """Create the partial output store, or check that the one there continues this run."""
    record_file = partial / RECORD_FILE
    if partial.exists():
        if not resume:
            raise InputError(f"{partial} holds an unfinished imputation; rerun with --resume "
                             "to continue it, or delete it")
        try:
            previous = json.loads(record_file.read_text())
        except (OSError, json.JSONDecodeError):
            raise InputError(f"{partial}: no readable {RECORD_FILE}; delete the folder") from None
        changed = sorted(k for k in record if previous.get(k) != record[k])
        if changed:
            raise InputError(f"{partial}: cannot resume, the imputation differs in "
                             f"{', '.join(changed)}")
        return
    create_store(partial, tracks=[target_track(key) for key in keys],
                 contigs={c: store.contigs[c] for c in contigs}, bin_size=store.bin_size,
                 chunks=(TRACK_BLOCK, bins))
    (partial / DONE_DIR).mkdir()
    with atomic_file(record_file) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")

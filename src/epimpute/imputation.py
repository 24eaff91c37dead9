"""Stream a store through a trained model, contig by contig, into bigWig or npz files."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from epimpute.errors import InputError
from epimpute.hardware import autocast, uses_bf16
from epimpute.io.bigwig import BigWigWriter
from epimpute.io.npz_stream import NpzStreamWriter
from epimpute.io.trackkey import output_path
from epimpute.models.base import Imputer
from epimpute.provenance import write_json_record
from epimpute.store import Store

log = logging.getLogger(__name__)

OutputFormat = Literal["bigwig", "npz"]
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


def impute(
    imputer: Imputer,
    store: Store,
    targets: Sequence[Target],
    out_dir: Path,
    *,
    output_format: OutputFormat = "bigwig",
    arcsinh_scale: bool = False,
    chunk_bins: int = 100_000,
    contigs: Sequence[str] | None = None,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    progress: bool = False,
) -> list[Path]:
    """Impute ``targets`` genome-wide from the inputs in ``store``.

    Reads ``chunk_bins`` bins (plus the model's context) of every input at a time, so
    memory does not grow with contig length. bigWig values are on the ``-log10 p`` scale
    (``sinh`` of the model's output, floored at 0) unless ``arcsinh_scale``; npz files
    hold one float32 array per contig on the arcsinh scale. Files appear only when
    complete. ``precision`` (``fp32``, ``bf16`` or ``auto``, see
    :func:`epimpute.hardware.uses_bf16`) sets the autocast of the forward passes of
    models that allow it (:attr:`Imputer.reduced_precision`).

    Returns
    -------
    list[Path]
        The written files, in the order of ``targets``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    imputer.to(device)
    reduced = autocast(device, imputer.reduced_precision and uses_bf16(precision, device))
    rows, available = input_availability(imputer, store)
    contig_names = list(store.contigs) if contigs is None else list(contigs)
    sizes = {c: store.contigs[c] for c in contig_names}
    margin = imputer.context_bins
    groups = _group_by_inputs(targets, available)
    paths = [output_file(out_dir, t.key, output_format) for t in targets]
    total = sum(store.n_bins(c) for c in contig_names)
    with ExitStack() as stack:
        writers = []
        for path in paths:
            if output_format == "bigwig":
                writers.append(stack.enter_context(
                    BigWigWriter(path, sizes, bin_size=store.bin_size)))
            else:
                writers.append(stack.enter_context(NpzStreamWriter(path)))
        bar = stack.enter_context(tqdm(total=total, unit="bin", unit_scale=True,
                                       desc="imputing", disable=not progress))
        present = np.flatnonzero(rows >= 0)
        for contig in contig_names:
            n_bins = store.n_bins(contig)
            if output_format == "npz":
                for writer in writers:
                    writer.begin(contig, n_bins)
            for lo in range(0, n_bins, chunk_bins):
                hi = min(lo + chunk_bins, n_bins)
                signal = np.zeros((len(rows), hi - lo + 2 * margin), dtype=np.float32)
                signal[present] = store.read(contig, lo - margin, hi + margin,
                                             tracks=rows[present])
                for mask, members in groups:
                    with reduced:
                        predicted = imputer.impute_region(
                            signal, mask, [targets[i].pair for i in members],
                            contig=contig, start=lo)
                    for i, values in zip(members, predicted):
                        if output_format == "bigwig":
                            values = values if arcsinh_scale else np.sinh(np.maximum(values, 0))
                            writers[i].write(contig, lo, values)
                        else:
                            writers[i].write(values)
                bar.update(hi - lo)
    write_json_record(out_dir / RECORD_FILE, {
        "model": imputer.name, "store": str(store.path), "targets": [t.key for t in targets],
        "files": [p.name for p in paths], "format": output_format,
        "scale": "arcsinh" if arcsinh_scale or output_format == "npz" else "-log10 p"})
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

"""``impute``, ``export`` and ``factors``: write what a model predicts or learnt."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from epimpute.api._common import check_settings, expand_keys
from epimpute.errors import InputError
from epimpute.hardware import resolve_device
from epimpute.imputation import OutputFormat, output_file, output_keys, resolve_targets
from epimpute.imputation import impute as impute_store
from epimpute.io.atomic import check_destination, check_not_input
from epimpute.model_dir import (
    load_model,
)
from epimpute.registry import build_config, model_spec
from epimpute.store import Store

log = logging.getLogger(__name__)


def impute(  # noqa: PLR0913 - keyword-only options, one per command-line option
    model_dir: Path,
    store: Path | Store,
    out: Path,
    *,
    targets: Sequence[str] = (),
    missing: bool = False,
    format: OutputFormat = "bigwig",
    arcsinh: bool = False,
    device: str = "auto",
    precision: str = "auto",
    chunk_bins: int = 100_000,
    resume: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
    genome: Path | None = None,
    uncertainty: bool = False,
) -> list[Path]:
    """Impute tracks genome-wide with the model in ``model_dir`` from the inputs in ``store``.

    Parameters
    ----------
    model_dir
        The trained model.
    store
        Store with the input tracks (path or opened store), binned like the training store.
    out
        Output folder, one file ``CELL.ASSAY.bw`` or ``CELL.ASSAY.npz`` per track; for
        ``zarr``, the store of the imputed tracks to create.
    targets
        Tracks to impute (``CELL:ASSAY``); an observed one is left out of the inputs
        (leave-one-out).
    missing
        Also impute every cell type x assay of the model that ``store`` lacks.
    format
        ``bigwig`` (one bigWig per track) or ``npz`` (one float32 array of shape
        ``(n_bins,)`` per contig, on the arcsinh scale, named by the contig) or ``zarr`` (a
        store of the imputed tracks, arcsinh scale, written window by window).
    arcsinh
        bigWig values on the arcsinh scale instead of ``-log10 p``.
    device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    precision
        ``auto`` runs networks under bf16 autocast where the hardware computes in bf16
        (about twice as fast on such CPUs; values differ from ``fp32`` by ~0.01 on the
        arcsinh scale), or ``fp32`` / ``bf16``.
    chunk_bins
        Bins imputed per window (plus the model's context; fewer when there are many
        tracks, so memory stays bounded).
    resume
        ``zarr``: continue an interrupted imputation, skipping its finished windows.
    workers
        Spread the windows over a local Dask cluster of this many processes (the output is
        identical to a run in one process).
    scheduler
        Address of a running Dask scheduler to spread the windows over instead.
    overwrite
        Replace files of the same tracks already in ``out`` (for ``zarr``: an earlier
        epimpute store at ``out``).
    progress
        Show a progress bar on stderr.
    genome
        Reference genome of sequence models (``seqcell``); None: the one the model records.
    uncertainty
        Also write each track's predicted sd beside it, ``CELL.ASSAY.sd.bw`` / ``.npz`` (for
        ``zarr``: track ``CELL:ASSAY.sd``), always on the arcsinh scale, whatever
        ``arcsinh`` says; needs a model that predicts uncertainty.

    Returns
    -------
    list[pathlib.Path]
        The written files, in target order (named targets first, then the missing ones;
        with ``uncertainty`` the sd files after them, in the same order); ``[out]`` for
        ``zarr``.

    Raises
    ------
    InputError
        On a bad setting, no target, an unknown target or one whose assay the model has no
        training track of, a bin size other than the model's, ``uncertainty`` for a model
        without it, or outputs that exist without ``overwrite``.
    """
    from epimpute.distributed import DaskRunner

    check_settings(device=device, precision=precision)
    model_dir, out = Path(model_dir), Path(out)
    imputer = load_model(model_dir)
    if uncertainty:
        imputer.require_uncertainty(where=str(model_dir))
    store = store if isinstance(store, Store) else Store.open(store)
    store.require_model_bins(imputer.layout.bin_size)
    from epimpute.seqcell_inputs import prepare_imputation

    needs_genome = model_spec(imputer.name).needs_genome
    if needs_genome and (workers is not None or scheduler is not None):
        # Dask workers rebuild the model from its folder, without the genome and the store's
        # accessibility inputs that prepare_imputation adds to this process's copy
        raise InputError(f"{imputer.name} imputes in one process: drop --workers/--scheduler")
    reference = prepare_imputation(imputer, store, genome) if needs_genome else None
    resolved = resolve_targets(imputer, store, targets=targets, missing=missing)
    _check_learnt(imputer, resolved)
    if workers is not None and scheduler is not None:
        raise InputError("give --workers or --scheduler, not both")
    if format == "zarr":
        check_not_input(out, kind="store", inputs=[model_dir, store.path])
    else:
        _check_outputs(out, [output_file(out, key, format)
                             for key in output_keys(resolved, spread=uncertainty)],
                       inputs=[model_dir, store.path], overwrite=overwrite)
    created = [p for p in (out, *out.parents) if not p.exists()]  # made by the writer
    distributed = workers is not None or scheduler is not None
    runner = DaskRunner(workers=workers, scheduler=scheduler) if distributed else nullcontext()
    try:
        with runner as active:
            return impute_store(imputer, store, resolved, out, output_format=format,
                                arcsinh_scale=arcsinh, chunk_bins=chunk_bins,
                                device=str(resolve_device(device)), precision=precision,
                                resume=resume, runner=active, model_dir=model_dir,
                                overwrite=overwrite, progress=progress, spread=uncertainty)
    except BaseException:
        for folder in created:  # innermost first; stops at the first one not empty
            if not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()
        raise
    finally:
        if reference is not None:
            reference.close()


def _check_learnt(imputer: Any, targets: Sequence[Any]) -> None:
    """InputError for a target whose assay the model has no input track of (never learnt)."""
    layout = imputer.layout
    trained = {a for _, a in layout.tracks}
    for target in targets:
        if target.pair[1] not in trained:
            raise InputError(f"cannot impute {target.key}: the model was trained without any "
                             f"track of assay {layout.assays[target.pair[1]]}")


def _check_outputs(out: Path, paths: Sequence[Path], *, inputs: Sequence[Path],
                   overwrite: bool) -> None:
    """The output folder is no input and holds none of ``paths`` unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    target = out.resolve()
    for item in inputs:
        item = Path(item).resolve()
        if target == item or item in target.parents:
            raise InputError(f"{out}: refusing to write imputations into the input {item}")
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        raise InputError(f"{out} already holds {existing[0].name}"
                         + (f" and {len(existing) - 1} more" if len(existing) > 1 else "")
                         + "; use --overwrite (overwrite=True) to replace them")
    folders = [p for p in existing if p.is_dir()]
    if folders:
        raise InputError(f"{folders[0]} is a folder; not replacing it with an imputation")


def export(
    store: Path | Store,
    out: Path,
    *,
    tracks: Sequence[str] = (),
    all_tracks: bool = False,
    format: str = "bigwig",
    arcsinh: bool = False,
    progress: bool = False,
) -> list[Path]:
    """Write tracks of any store (for example one written by ``impute --format zarr``) as files.

    Parameters
    ----------
    store
        The store (path or opened store).
    out
        Output folder; one ``CELL.ASSAY.bw`` or ``CELL.ASSAY.npz`` per track.
    tracks
        Tracks to write (``CELL:ASSAY``, shell patterns allowed).
    all_tracks
        Write every track of the store instead.
    format
        ``bigwig`` (``-log10 p`` unless ``arcsinh``) or ``npz`` (float32 arrays of shape
        ``(n_bins,)`` per contig, arcsinh scale).
    arcsinh
        bigWig values on the arcsinh scale.
    progress
        Show a progress bar on stderr.

    Returns
    -------
    list[pathlib.Path]
        The written files, in track order.

    Raises
    ------
    InputError
        If neither or both of ``tracks`` and ``all_tracks`` are given, or a track is unknown.
    """
    from epimpute.export import export_tracks

    store = store if isinstance(store, Store) else Store.open(store)
    if all_tracks == bool(tracks):
        raise InputError("give either --track CELL:ASSAY ... or --all-tracks")
    keys = [t.key for t in store.tracks] if all_tracks else expand_keys(store, tracks)
    return export_tracks(store, keys, Path(out), output_format=format, arcsinh_scale=arcsinh,
                         progress=progress)


def factors(model_dir: Path, out: Path, *, chrom: str, overwrite: bool = False) -> Path:
    """Export an Avocado model's genome factors of one contig and its cell-type and assay
    embeddings as one ``.npz`` file (layout in :mod:`epimpute.factors`).

    Parameters
    ----------
    model_dir
        A trained Avocado model.
    out
        The ``.npz`` file to write: ``factors`` of shape ``(n_bins, M*G)`` at 25-bp
        resolution, ``start`` and ``end`` of shape ``(n_bins,)``, ``cell_types`` ``(C,)``
        and ``cell_type_embedding`` ``(C, M*c)``, ``assays`` ``(A,)`` and
        ``assay_embedding`` ``(A, M*a)``, and the column descriptions.
    chrom
        The contig whose genome factors to export.
    overwrite
        Replace an existing ``out``, only if it is a factors file.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        If the model is not an Avocado model, has no factors for ``chrom``, or ``out`` is a
        folder, an input or (without ``overwrite``) an existing file.
    """
    from epimpute.factors import export_factors, is_factors_file

    model_dir, out = Path(model_dir), Path(out)
    if out.is_dir():
        raise InputError(f"{out} is a folder; give the name of the .npz file to write")
    check_destination(out, kind="factors file", is_own=is_factors_file, overwrite=overwrite,
                      inputs=[model_dir])
    return export_factors(load_model(model_dir), out, chrom=chrom)


def suggest(  # noqa: PLR0913 - keyword-only options, one per command-line option
    model_dir: Path,
    store: Path | Store,
    *,
    top: int | None = None,
    out: Path | None = None,
    criterion: str = "simulated",
    sample_bins: int | None = None,
    donors: int | None = None,
    retrain_epochs: int | None = None,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
    overwrite: bool = False,
    progress: bool = False,
) -> Any:
    """Rank the cell type x assay pairs the store lacks: which to measure next.

    Parameters
    ----------
    model_dir
        A trained model (eDICE; with ``criterion="spread"`` one with ``uncertainty``).
    store
        The measured tracks (path or opened store).
    top
        Keep the ``top`` highest-ranked pairs (default: all).
    out
        Tab-separated file to write (``rank, cell_type, assay, score``); None writes nothing.
    criterion
        ``simulated``: the expected MSE drop of the cell type's other missing tracks if
        the pair were measured, by held-out simulation on donor cell types; ``retrained``:
        the same, retraining a model per simulated measurement; ``spread``: the pair's
        mean predicted sd (see :mod:`epimpute.suggest`).
    sample_bins
        Bins the scores are taken over: windows of up to 10,000 bins spread evenly over the
        genome (every bin when it is smaller); default 50,000 for ``simulated`` and
        ``retrained``, 200,000 for ``spread``.
    donors
        ``simulated`` / ``retrained``: donor cell types per cell type, at most (default 4 /
        2).
    retrain_epochs
        ``retrained``: epochs per retraining (default: as many as the model trained).
    seed
        ``retrained``: seed of every retraining.
    device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    precision
        ``auto``, ``fp32`` or ``bf16`` (as for ``impute``).
    overwrite
        Replace an existing ``out`` written by this command.
    progress
        Show a progress bar on stderr.

    Returns
    -------
    pandas.DataFrame
        Columns ``rank, cell_type, assay, score`` (arcsinh scale: squared for
        ``simulated``), highest first.

    Raises
    ------
    InputError
        On a bad setting, a model the criterion cannot rank with (``spread`` without
        uncertainty, ``simulated`` for a model that does not read the signal), nothing to
        rank, or an ``out`` that exists without ``overwrite`` (or is an input).
    """
    from epimpute.suggest import is_suggestion_table, rank_unmeasured, write_suggestions

    check_settings(device=device, precision=precision)
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise InputError(f"--top must be a positive number of tracks, got {top!r}")
    model_dir = Path(model_dir)
    store = store if isinstance(store, Store) else Store.open(store)
    if out is not None:
        if Path(out).is_dir():
            raise InputError(f"{out} is a folder; give the name of the table to write")
        check_destination(Path(out), kind="suggestion table", is_own=is_suggestion_table,
                          overwrite=overwrite, inputs=[model_dir, store.path])
    imputer = load_model(model_dir)
    store.require_model_bins(imputer.layout.bin_size)
    device = str(resolve_device(device))
    retraining = (_retraining(model_dir, epochs=retrain_epochs, seed=seed, device=device,
                              precision=precision) if criterion == "retrained" else None)
    table = rank_unmeasured(imputer, store, criterion=criterion, sample_bins=sample_bins,
                            donors=donors, retraining=retraining, device=device,
                            precision=precision, progress=progress)
    if top is not None:
        table = table.head(top)
    if out is not None:
        write_suggestions(table, Path(out))
    return table


def _retraining(model_dir: Path, *, epochs: int | None, seed: int, device: str,
                precision: str) -> Any:
    """How the ``retrained`` criterion retrains the model in ``model_dir``."""
    from epimpute.model_dir import read_model_record
    from epimpute.suggest_retraining import Retraining

    check_settings(seed=seed)
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)
                               or epochs < 1):
        raise InputError(f"--retrain-epochs must be a positive number of epochs, got {epochs!r}")
    record = read_model_record(model_dir)
    spec = model_spec(record["model"])
    if spec.needs_genome:
        raise InputError(f"{model_dir}: a {record['model']} model cannot be ranked by "
                         "retraining; use --criterion simulated")
    if epochs is None:
        epochs = len(record.get("provenance", {}).get("history", {}).get("epochs", []))
        if epochs < 1:
            raise InputError(f"{model_dir}: no training history to take the epochs from; "
                             "give --retrain-epochs")
    config = build_config(spec.model_config, record["config"], where=str(model_dir))
    training = build_config(spec.training_config, record.get("training_config") or {},
                            where=str(model_dir))
    return Retraining(record["model"], config, training, epochs=epochs, seed=seed,
                      device=device, precision=precision)

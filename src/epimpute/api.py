"""The public Python API; each function is one ``epimpute`` subcommand.

>>> from epimpute import api                                    # doctest: +SKIP
>>> store = api.ingest("samples.tsv", "compendium.zarr")        # doctest: +SKIP
>>> api.train("compendium.zarr", "models/edice", model="edice")  # doctest: +SKIP
>>> api.impute("models/edice", "compendium.zarr", "imputed", missing=True)  # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from epimpute import __version__
from epimpute.config_file import read_config_file, read_training_overrides
from epimpute.errors import InputError
from epimpute.hardware import PRECISIONS, resolve_device
from epimpute.imputation import OutputFormat, output_file, resolve_targets
from epimpute.imputation import impute as impute_store
from epimpute.io.atomic import check_destination, publish_dir
from epimpute.model_dir import (
    CHECKPOINT_FILE,
    check_model_folder,
    forget_run,
    is_model_dir,
    load_model,
    prepare_run,
    save_model,
)
from epimpute.registry import build_config, model_spec
from epimpute.store import Store, ingest
from epimpute.training.data import check_learnable, store_layout
from epimpute.training.loop import RunSettings

__all__ = ["ingest", "train", "extend", "impute", "evaluate", "factors", "load_model",
           "read_config_file", "expand_keys", "synth_sequence", "variants"]

log = logging.getLogger(__name__)


def train(
    store: Path | Store,
    out: Path,
    *,
    model: str = "edice",
    config: Path | None = None,
    exclude: Sequence[str] = (),
    seed: int = 0,
    device: str = "auto",
    max_minutes: float | None = None,
    resume: bool = False,
    precision: str = "auto",
    progress: bool = False,
    genome: Path | None = None,
) -> Path:
    """Train ``model`` on ``store`` and save it to ``out``.

    Parameters
    ----------
    store
        The training store (path or opened :class:`epimpute.store.Store`).
    out
        Model folder to create (or to continue with ``resume``).
    model
        ``average``, ``edice`` or ``avocado``.
    config
        JSON file ``{"model": {...}, "training": {...}}`` of hyperparameters (see
        :func:`read_config_file`); None: the model's defaults.
    exclude
        Observed tracks (``CELL:ASSAY``, shell patterns such as ``'liver@B:*'`` allowed)
        hidden from training and from the model's inputs, so that they can be scored later.
    seed
        Seed of initialisation, masking and batch order (non-negative).
    device
        ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    max_minutes
        Wall-clock training budget; None: until the configured epochs are done.
    resume
        Continue an interrupted (or time-limited) run in ``out`` from its last checkpoint;
        the run's settings must be the same.
    precision
        ``auto`` (bf16 autocast where the hardware computes in bf16), ``fp32`` or ``bf16``.
    progress
        Show progress bars on stderr.
    genome
        Reference genome (FASTA or 2bit) of the store's contigs; read only by ``seqcell``.

    Returns
    -------
    pathlib.Path
        ``out``, holding the model (see :mod:`epimpute.model_dir`).

    Raises
    ------
    InputError
        On a bad setting, configuration or exclusion, too few tracks to learn from, or an
        ``out`` that is an input or already holds another model.
    """
    store = store if isinstance(store, Store) else Store.open(store)
    out = Path(out)
    _check_settings(seed=seed, device=device, max_minutes=max_minutes, precision=precision)
    exclude = expand_keys(store, exclude)
    model_config, training_config = read_config_file(config, model)
    spec = model_spec(model)
    from epimpute.seqcell_inputs import open_store_genome

    sequence = {"genome": open_store_genome(genome, store, model=model)} if spec.needs_genome else {}
    check_learnable(store_layout(store, exclude=exclude), where=f"--exclude {' '.join(exclude)}")
    check_model_folder(out, inputs=[store.path, *([config] if config else [])],
                        resume=resume)
    run = {
        "model": model,
        "store": str(store.path),
        "exclude": sorted(exclude),
        "seed": seed,
        "config": _jsonable(model_config),
        "training_config": _jsonable(training_config),
    }
    created = not out.exists()
    prepare_run(out, run, resume=resume)
    settings = RunSettings(seed=seed, device=device, max_minutes=max_minutes,
                           progress=progress, resume=resume, precision=precision)
    started = time.time()
    try:
        imputer, history = spec.train(
            store, config=model_config, training=training_config, settings=settings,
            exclude=list(exclude), checkpoint=out / CHECKPOINT_FILE, **sequence)
        provenance = dict(run, device=str(resolve_device(device)), precision=precision,
                          seconds=time.time() - started, history=history.to_dict(),
                          epimpute_version=__version__)
        return save_model(out, imputer, training=training_config, provenance=provenance)
    except BaseException:
        forget_run(out, created=created)  # keeps a checkpoint to --resume from
        raise
    finally:
        if sequence:
            sequence["genome"].close()


def extend(
    model_dir: Path,
    store: Path | Store,
    out: Path,
    *,
    mode: str = "freeze",
    config: Path | None = None,
    exclude: Sequence[str] = (),
    seed: int = 0,
    device: str = "auto",
    max_minutes: float | None = None,
    precision: str = "auto",
    progress: bool = False,
    probe_share: float | None = None,
) -> Path:
    """Extend the model in ``model_dir`` with the cell types, assays and tracks of ``store``
    it lacks, and save the result to ``out`` (see :mod:`epimpute.training.extend`).

    Parameters
    ----------
    model_dir
        The trained model (eDICE or Avocado).
    store
        Store with the model's tracks and the new ones (path or opened store).
    out
        Folder of the extended model to create (appears only when complete).
    mode
        ``freeze``: train only the new items' parameters (imputations of existing tracks
        from the same inputs stay bit-identical); ``finetune``: train those alone for
        ``probe_share`` of the budget, then every parameter on old and new tracks at a
        tenth of the learning rate.
    config
        JSON file with a ``{"training": {...}}`` section overriding the base model's
        training configuration; None: the base model's.
    exclude
        Tracks of ``store`` to hide (``CELL:ASSAY``, shell patterns allowed).
    seed
        Seed of initialisation, masking and batch order (non-negative).
    device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    max_minutes
        Wall-clock training budget.
    precision
        ``auto``, ``fp32`` or ``bf16`` (as in :func:`train`).
    progress
        Show progress bars on stderr.
    probe_share
        ``finetune`` only: share of the budget that trains only the new items' parameters
        (default 0.5; 0 trains everything from the start).

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        On a bad setting or configuration, a model kind that cannot be extended, or an
        ``out`` that exists or is an input.
    """
    from epimpute.model_dir import read_model_record
    from epimpute.training.extend import FINETUNE_PROBE_SHARE, check_mode

    if probe_share is not None and mode != "finetune":
        raise InputError(f"--probe-share applies only to --mode finetune, not {mode}")
    probe_share = FINETUNE_PROBE_SHARE if probe_share is None else probe_share
    check_mode(mode, probe_share)
    _check_settings(seed=seed, device=device, max_minutes=max_minutes, precision=precision)
    model_dir, out = Path(model_dir), Path(out)
    record = read_model_record(model_dir)
    spec = model_spec(record["model"])
    if spec.extend is None:
        raise InputError(f"{record['model']} models cannot be extended")
    store = store if isinstance(store, Store) else Store.open(store)
    exclude = expand_keys(store, exclude)
    overrides = read_training_overrides(config)
    values = dict(record.get("training_config") or {}, **overrides)
    training = build_config(spec.training_config, values,
                            where=str(config) if config else str(model_dir))
    destination = {"kind": "model", "is_own": is_model_dir, "overwrite": None,
                   "inputs": [model_dir, store.path, *([config] if config else [])]}
    check_destination(out, **destination)
    imputer = load_model(model_dir)
    with publish_dir(out, **destination) as tmp:
        settings = RunSettings(seed=seed, device=device, max_minutes=max_minutes,
                               progress=progress, precision=precision)
        started = time.time()
        extended, history = spec.extend(imputer, store, mode=mode, training=training,
                                        settings=settings, exclude=list(exclude),
                                        checkpoint=tmp / CHECKPOINT_FILE,
                                        probe_share=probe_share)
        provenance = {
            "model": record["model"], "extended_from": str(model_dir), "mode": mode,
            "probe_share": probe_share if mode == "finetune" else None,
            "store": str(store.path), "exclude": sorted(exclude), "seed": seed,
            "base_provenance": record.get("provenance", {}),
            "device": str(resolve_device(device)), "precision": precision,
            "seconds": time.time() - started,
            "history": history.to_dict(), "epimpute_version": __version__,
        }
        save_model(tmp, extended, training=training, provenance=provenance)
        for scratch in tmp.glob("checkpoint*"):
            shutil.rmtree(scratch) if scratch.is_dir() else scratch.unlink()
    return out


def expand_keys(store: Store, keys: Sequence[str]) -> list[str]:
    """Track keys of ``store`` named by ``keys``, patterns expanded.

    Parameters
    ----------
    store
        The store whose track keys patterns are matched against.
    keys
        Track keys ``CELL:ASSAY`` or shell-style patterns (``'liver@*:H3K27ac'``).

    Returns
    -------
    list[str]
        The keys, each pattern replaced by the keys it matches in store order, without
        repeats. Plain keys are passed on unchecked.

    Raises
    ------
    InputError
        If a pattern matches no track.
    """
    known = [t.key for t in store.tracks]
    out: list[str] = []
    for key in keys:
        if any(c in key for c in "*?["):
            matched = fnmatch.filter(known, key)
            if not matched:
                raise InputError(f"'{key}' matches no track of {store.path}")
            out += matched
        else:
            out.append(key)
    return list(dict.fromkeys(out))


def impute(
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
    overwrite: bool = False,
    progress: bool = False,
    genome: Path | None = None,
) -> list[Path]:
    """Impute tracks genome-wide with the model in ``model_dir`` from the inputs in ``store``.

    Parameters
    ----------
    model_dir
        The trained model.
    store
        Store with the input tracks (path or opened store), binned like the training store.
    out
        Output folder; one file ``CELL.ASSAY.bw`` or ``CELL.ASSAY.npz`` per track.
    targets
        Tracks to impute (``CELL:ASSAY``); an observed one is left out of the inputs
        (leave-one-out).
    missing
        Also impute every cell type x assay of the model that ``store`` lacks.
    format
        ``bigwig`` (one bigWig per track) or ``npz`` (one float32 array of shape
        ``(n_bins,)`` per contig, on the arcsinh scale, named by the contig).
    arcsinh
        bigWig values on the arcsinh scale instead of ``-log10 p``.
    device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    precision
        ``auto`` runs networks under bf16 autocast where the hardware computes in bf16
        (about twice as fast on such CPUs; values differ from ``fp32`` by ~0.01 on the
        arcsinh scale), or ``fp32`` / ``bf16``.
    chunk_bins
        Bins imputed at a time (plus the model's context); bounds memory.
    overwrite
        Replace files of the same tracks already in ``out``.
    progress
        Show a progress bar on stderr.
    genome
        Reference genome of sequence models (``seqcell``); None: the one the model records.

    Returns
    -------
    list[pathlib.Path]
        The written files, in target order (named targets first, then the missing ones).

    Raises
    ------
    InputError
        On a bad setting, no target, an unknown target or one whose assay the model has no
        training track of, a bin size other than the model's, or outputs that exist
        without ``overwrite``.
    """
    _check_settings(device=device, precision=precision)
    model_dir, out = Path(model_dir), Path(out)
    imputer = load_model(model_dir)
    store = store if isinstance(store, Store) else Store.open(store)
    if store.bin_size != imputer.layout.bin_size:
        raise InputError(f"{store.path} has {store.bin_size}-bp bins but the model was trained "
                         f"on {imputer.layout.bin_size}-bp bins")
    from epimpute.seqcell_inputs import prepare_imputation

    reference = (prepare_imputation(imputer, store, genome)
                 if model_spec(imputer.name).needs_genome else None)
    resolved = resolve_targets(imputer, store, targets=targets, missing=missing)
    _check_learnt(imputer, resolved)
    _check_outputs(out, [output_file(out, t.key, format) for t in resolved],
                   inputs=[model_dir, store.path], overwrite=overwrite)
    created = [p for p in (out, *out.parents) if not p.exists()]  # made by the writer
    try:
        return impute_store(imputer, store, resolved, out, output_format=format,
                            arcsinh_scale=arcsinh, chunk_bins=chunk_bins,
                            device=resolve_device(device), precision=precision,
                            progress=progress)
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


def synth_sequence(genome: Path, out: Path, *, cell_types: int = 6, seed: int = 0,
                   start: int | None = None, end: int | None = None, contig: str = "22",
                   accessibility: str = "ATAC", overwrite: bool = False,
                   progress: bool = True) -> Store:
    """Generate accessibility and histone tracks with known truth on a real genome's sequence.

    See :mod:`epimpute.synthetic_sequence` for the grammar (motif sites of active TFs,
    promoters, marks, planted variants).

    Parameters
    ----------
    genome
        FASTA (plain, gzip or bgzip) or 2bit reference holding ``contig``.
    out
        Store to create; the truth tables go to ``out/truth``.
    cell_types
        Number of generated cell types (2-8).
    seed
        Seed of every random draw.
    start
        Start of the window of ``contig`` to generate, in bp (default: 16,050,000, where
        hg19 chr22's sequence begins).
    end
        End of the window, in bp (default: 22,000,000).
    contig
        Contig of the genome to use.
    accessibility
        Name of the accessibility assay, ``ATAC`` or ``DNase``.
    overwrite
        Replace ``out`` if it is an epimpute store.
    progress
        Show progress bars on stderr.

    Returns
    -------
    Store
        The written store.

    Raises
    ------
    InputError
        On bad settings, a contig the genome lacks, a window that does not fit, or an
        ``out`` that may not be written.
    """
    from epimpute.io.genome import open_genome
    from epimpute.store.store import is_store
    from epimpute.synthetic_sequence import SequenceSpec, generate, write_store

    genome, out = Path(genome), Path(out)
    defaults = SequenceSpec()
    spec = SequenceSpec(n_cell_types=cell_types, seed=seed, contig=contig,
                        accessibility=accessibility,
                        start=defaults.start if start is None else start,
                        end=defaults.end if end is None else end)
    spec.check()
    destination = {"kind": "store", "is_own": is_store, "overwrite": overwrite,
                   "inputs": [genome]}
    check_destination(out, **destination)
    with open_genome(genome) as reference:
        length = reference.contigs.get(contig)
        if length is None:
            reference.fetch(contig, 0, 1)  # raises, naming the file and any alias
        if spec.end > length:
            raise InputError(f"{genome}: contig {contig!r} has {length:,} bases; the window "
                             f"{spec.start:,}-{spec.end:,} does not fit")
        sequence = reference.fetch(contig, spec.start, spec.end)
    compendium = generate(sequence, spec, contig_length=length, progress=progress)
    with publish_dir(out, **destination) as tmp:
        write_store(compendium, tmp)
    return Store.open(out)


def _jsonable(config: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(config), default=list))


def _check_settings(*, seed: int = 0, device: str = "auto", max_minutes: float | None = None,
                    precision: str = "auto") -> None:
    """InputError for a negative seed, an unknown or absent device, a budget that is not a
    positive number of minutes, or an unknown precision."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise InputError(f"--seed must be a non-negative integer, got {seed!r}")
    if max_minutes is not None and (isinstance(max_minutes, bool)
                                    or not isinstance(max_minutes, (int, float))
                                    or not math.isfinite(max_minutes) or max_minutes <= 0):
        raise InputError(f"--max-minutes must be a positive number of minutes, got {max_minutes!r}")
    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    resolve_device(device)


def __getattr__(name: str) -> Any:
    # ``evaluate`` (epimpute.evaluation.run.evaluate) is imported on first use: scipy and
    # pandas would otherwise slow every command's start by a second.
    if name == "evaluate":
        from epimpute.evaluation.run import evaluate

        return evaluate
    if name == "variants":  # epimpute.variants.variants
        from epimpute.variants import variants

        return variants
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

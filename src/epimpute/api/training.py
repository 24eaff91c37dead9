"""``train`` and ``extend``: fit a model on a store, or grow a trained one."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from epimpute import __version__
from epimpute.api._common import check_settings, expand_keys, jsonable
from epimpute.config_file import read_config_file, read_training_overrides
from epimpute.errors import InputError
from epimpute.hardware import resolve_device
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
from epimpute.store import Store
from epimpute.training.data import check_learnable, store_layout
from epimpute.training.distributed import from_environment, on_main
from epimpute.training.loop import RunSettings

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
    world = from_environment()
    if world is not None and model != "edice":
        raise InputError(f"training on several processes is supported for edice, not {model}")
    store = store if isinstance(store, Store) else Store.open(store)
    out = Path(out)
    check_settings(seed=seed, device=device, max_minutes=max_minutes, precision=precision)
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
        "config": jsonable(model_config),
        "training_config": jsonable(training_config),
    }
    settings = RunSettings(seed=seed, device=device, max_minutes=max_minutes,
                           progress=progress, resume=resume, precision=precision, world=world)
    created = not out.exists()
    if world is not None:
        world.start(resolve_device(device))
    try:
        on_main(world, lambda: prepare_run(out, run, resume=resume))
        started = time.time()
        imputer, history = spec.train(
            store, config=model_config, training=training_config, settings=settings,
            exclude=list(exclude), checkpoint=out / CHECKPOINT_FILE, **sequence)
        provenance = dict(run, device=str(resolve_device(device)), precision=precision,
                          seconds=time.time() - started, history=history.to_dict(),
                          epimpute_version=__version__,
                          processes=world.world_size if world else 1)
        return on_main(world, lambda: save_model(out, imputer, training=training_config,
                                                 provenance=provenance))
    except BaseException:
        if (world is None or world.is_main) and out.is_dir():
            forget_run(out, created=created)  # keeps a checkpoint to --resume from
        raise
    finally:
        if world is not None:
            world.stop()
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
    check_settings(seed=seed, device=device, max_minutes=max_minutes, precision=precision)
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

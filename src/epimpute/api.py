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
import os
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from epimpute import __version__
from epimpute.errors import InputError
from epimpute.hardware import resolve_device
from epimpute.imputation import OutputFormat, resolve_targets
from epimpute.imputation import impute as impute_store
from epimpute.model_dir import CHECKPOINT_FILE, CONFIG_FILE, load_model, save_model
from epimpute.registry import build_config, model_spec
from epimpute.store import Store, ingest
from epimpute.training.distributed import from_environment, on_main
from epimpute.training.loop import RunSettings

__all__ = ["ingest", "train", "extend", "impute", "evaluate", "factors", "load_model",
           "read_config_file", "expand_keys"]

log = logging.getLogger(__name__)
RUN_FILE = "run.json"


def read_config_file(path: Path | None, model: str) -> tuple[Any, Any]:
    """Model and training configuration from a JSON file (defaults when ``path`` is None).

    The file holds up to two objects, ``{"model": {...}, "training": {...}}``, whose keys
    are the fields of the model's configuration dataclasses; unknown keys are rejected.
    """
    spec = model_spec(model)
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        values = _read_json(path)
        if not isinstance(values, dict):
            raise InputError(f"{path}: expected a JSON object with 'model' and/or 'training'")
        unknown = sorted(set(values) - {"model", "training"})
        if unknown:
            raise InputError(f"{path}: unknown section(s) {', '.join(unknown)}; "
                             "allowed: model, training")
    where = str(path) if path else "defaults"
    return (build_config(spec.model_config, values.get("model", {}), where=f"{where} [model]"),
            build_config(spec.training_config, values.get("training", {}),
                         where=f"{where} [training]"))


def _read_json(path: Path) -> Any:
    """The JSON value in a configuration file; InputError when missing or malformed."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: config file not found") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None


def train(
    store: Path | Store,
    out: Path,
    *,
    model: str = "edice",
    config_file: Path | None = None,
    exclude: Sequence[str] = (),
    seed: int = 0,
    device: str = "auto",
    max_minutes: float | None = None,
    resume: bool = False,
    precision: str = "auto",
    progress: bool = False,
) -> Path:
    """Train ``model`` on ``store`` and save it to ``out``; returns ``out``.

    ``exclude`` hides observed tracks (``CELL:ASSAY``) from training and from the model's
    inputs so they can be scored later. With ``resume`` an interrupted (or time-limited)
    run in ``out`` continues from its last checkpoint. ``precision`` is ``auto`` (bf16
    autocast where the hardware computes in bf16), ``fp32`` or ``bf16``.
    """
    world = from_environment()
    if world is not None and model != "edice":
        raise InputError(f"training on several processes is supported for edice, not {model}")
    store = store if isinstance(store, Store) else Store.open(store)
    out = Path(out)
    exclude = expand_keys(store, exclude)
    model_config, training_config = read_config_file(config_file, model)
    run = {
        "model": model,
        "store": str(store.path),
        "exclude": sorted(exclude),
        "seed": seed,
        "config": _jsonable(model_config),
        "training_config": _jsonable(training_config),
    }
    settings = RunSettings(seed=seed, device=device, max_minutes=max_minutes,
                           progress=progress, resume=resume, precision=precision, world=world)
    if world is not None:
        world.start(resolve_device(device))
    try:
        on_main(world, lambda: _prepare_output(out, run, resume=resume))
        started = time.time()
        imputer, history = model_spec(model).train(
            store, config=model_config, training=training_config, settings=settings,
            exclude=list(exclude), checkpoint=out / CHECKPOINT_FILE)
        provenance = dict(run, device=str(resolve_device(device)), precision=precision,
                          seconds=time.time() - started, history=history.to_dict(),
                          epimpute_version=__version__,
                          processes=world.world_size if world else 1)
        return on_main(world, lambda: save_model(out, imputer, training=training_config,
                                                 provenance=provenance))
    finally:
        if world is not None:
            world.stop()


def extend(
    model_dir: Path,
    store: Path | Store,
    out: Path,
    *,
    mode: str = "freeze",
    config_file: Path | None = None,
    exclude: Sequence[str] = (),
    seed: int = 0,
    device: str = "auto",
    max_minutes: float | None = None,
    precision: str = "auto",
    progress: bool = False,
    probe_share: float | None = None,
) -> Path:
    """Extend the model in ``model_dir`` with the biosamples, assays and tracks of ``store``
    it lacks, and save the result to ``out``; returns ``out``.

    ``mode`` is ``freeze`` (train only the new items' parameters; imputations of existing
    tracks from the same inputs stay bit-identical) or ``finetune`` (train the new items'
    parameters alone for ``probe_share`` of the budget, by default half, then every
    parameter on old and new tracks at a tenth of the learning rate). Training starts from
    the base model's training configuration; ``config_file`` may override it with a
    ``{"training": {...}}`` section. ``exclude`` hides tracks of ``store`` (``CELL:ASSAY``,
    shell-style patterns such as ``'liver@B:*'`` allowed). See
    :mod:`epimpute.training.extend`.
    """
    from epimpute.model_dir import read_model_record
    from epimpute.training.extend import FINETUNE_PROBE_SHARE, check_mode

    probe_share = FINETUNE_PROBE_SHARE if probe_share is None else probe_share
    check_mode(mode, probe_share)
    model_dir, out = Path(model_dir), Path(out)
    record = read_model_record(model_dir)
    spec = model_spec(record["model"])
    if spec.extend is None:
        raise InputError(f"{record['model']} models cannot be extended")
    store = store if isinstance(store, Store) else Store.open(store)
    exclude = expand_keys(store, exclude)
    overrides = _config_overrides(config_file)
    values = dict(record.get("training_config") or {}, **overrides)
    training = build_config(spec.training_config, values,
                            where=str(config_file) if config_file else str(model_dir))
    imputer = load_model(model_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
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
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def expand_keys(store: Store, keys: Sequence[str]) -> list[str]:
    """Track keys of ``store`` named by ``keys``, which may be shell-style patterns
    (``'liver@*:H3K27ac'``); a pattern matching nothing is an InputError."""
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


def _config_overrides(path: Path | None) -> dict[str, Any]:
    """The ``training`` section of an extension's configuration file."""
    if path is None:
        return {}
    path = Path(path)
    values = _read_json(path)
    if not isinstance(values, dict) or set(values) - {"training"}:
        raise InputError(f"{path}: an extension takes only a 'training' section (the model's "
                         "architecture is the base model's)")
    return dict(values.get("training", {}))


def impute(
    model_dir: Path,
    store: Path | Store,
    out: Path,
    *,
    targets: Sequence[str] = (),
    missing: bool = False,
    output_format: OutputFormat = "bigwig",
    arcsinh_scale: bool = False,
    device: str = "auto",
    precision: str = "auto",
    chunk_bins: int = 100_000,
    progress: bool = False,
) -> list[Path]:
    """Impute ``targets`` (``CELL:ASSAY``) and/or every missing track; returns the files.

    ``precision`` ``auto`` runs networks under bf16 autocast where the hardware computes
    in bf16 (about twice as fast on such CPUs; values differ from ``fp32`` by ~0.01 on
    the arcsinh scale).
    """
    imputer = load_model(Path(model_dir))
    store = store if isinstance(store, Store) else Store.open(store)
    if store.bin_size != imputer.layout.bin_size:
        raise InputError(f"{store.path} has {store.bin_size}-bp bins but the model was trained "
                         f"on {imputer.layout.bin_size}-bp bins")
    resolved = resolve_targets(imputer, store, targets=targets, missing=missing)
    return impute_store(imputer, store, resolved, Path(out), output_format=output_format,
                        arcsinh_scale=arcsinh_scale, chunk_bins=chunk_bins,
                        device=resolve_device(device), precision=precision,
                        progress=progress)


def factors(model_dir: Path, out: Path, *, contig: str) -> Path:
    """Export an Avocado model's genome factors of ``contig`` and its cell-type and assay
    embeddings to the ``.npz`` file ``out`` (layout in :mod:`epimpute.factors`)."""
    from epimpute.factors import export_factors

    return export_factors(load_model(Path(model_dir)), Path(out), contig=contig)


def _jsonable(config: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(config), default=list))


def _prepare_output(out: Path, run: dict[str, Any], *, resume: bool) -> None:
    """Create ``out`` or check that resuming continues the same run."""
    run_file = out / RUN_FILE
    if resume and run_file.exists():
        previous = json.loads(run_file.read_text())
        changed = sorted(k for k in run if previous.get(k) != run[k])
        if changed:
            raise InputError(f"{out}: cannot resume, the run differs in {', '.join(changed)}")
        return
    if out.exists() and any(out.iterdir()):
        if (out / CONFIG_FILE).exists() or (out / CHECKPOINT_FILE).exists():
            raise InputError(f"{out} already holds a model; use --resume to continue it "
                             "or choose another folder")
        raise InputError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    tmp = run_file.with_name(f".{RUN_FILE}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(run, indent=2) + "\n")
    os.replace(tmp, run_file)


def __getattr__(name: str) -> Any:
    # ``evaluate`` (epimpute.evaluation.run.evaluate) is imported on first use: scipy and
    # pandas would otherwise slow every command's start by a second.
    if name == "evaluate":
        from epimpute.evaluation.run import evaluate

        return evaluate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
from epimpute.errors import InputError
from epimpute.hardware import PRECISIONS, resolve_device
from epimpute.imputation import OutputFormat, output_file, resolve_targets
from epimpute.imputation import impute as impute_store
from epimpute.io.atomic import (
    atomic_file,
    check_destination,
    check_not_input,
    publish_dir,
)
from epimpute.model_dir import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    is_model_dir,
    load_model,
    save_model,
)
from epimpute.registry import build_config, model_spec
from epimpute.store import Store, ingest
from epimpute.training.data import check_learnable, store_layout
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
    store = store if isinstance(store, Store) else Store.open(store)
    out = Path(out)
    _check_settings(seed=seed, device=device, max_minutes=max_minutes, precision=precision)
    exclude = expand_keys(store, exclude)
    model_config, training_config = read_config_file(config_file, model)
    check_learnable(store_layout(store, exclude=exclude), where=f"--exclude {' '.join(exclude)}")
    _check_model_folder(out, inputs=[store.path, *([config_file] if config_file else [])],
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
    _prepare_output(out, run, resume=resume)
    settings = RunSettings(seed=seed, device=device, max_minutes=max_minutes,
                           progress=progress, resume=resume, precision=precision)
    started = time.time()
    try:
        imputer, history = model_spec(model).train(
            store, config=model_config, training=training_config, settings=settings,
            exclude=list(exclude), checkpoint=out / CHECKPOINT_FILE)
        provenance = dict(run, device=str(resolve_device(device)), precision=precision,
                          seconds=time.time() - started, history=history.to_dict(),
                          epimpute_version=__version__)
        return save_model(out, imputer, training=training_config, provenance=provenance)
    except BaseException:
        _forget_run(out, created=created)  # keeps a checkpoint to --resume from
        raise


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
    overrides = _config_overrides(config_file)
    values = dict(record.get("training_config") or {}, **overrides)
    training = build_config(spec.training_config, values,
                            where=str(config_file) if config_file else str(model_dir))
    destination = {"kind": "model", "is_own": is_model_dir, "overwrite": None,
                   "inputs": [model_dir, store.path, *([config_file] if config_file else [])]}
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
    overwrite: bool = False,
    progress: bool = False,
) -> list[Path]:
    """Impute ``targets`` (``CELL:ASSAY``) and/or every missing track; returns the files.

    Files already in ``out`` under an output's name are replaced only with ``overwrite``.
    An assay the model has no training track of cannot be imputed (InputError).

    ``precision`` ``auto`` runs networks under bf16 autocast where the hardware computes
    in bf16 (about twice as fast on such CPUs; values differ from ``fp32`` by ~0.01 on
    the arcsinh scale).
    """
    _check_settings(device=device, precision=precision)
    model_dir, out = Path(model_dir), Path(out)
    imputer = load_model(model_dir)
    store = store if isinstance(store, Store) else Store.open(store)
    if store.bin_size != imputer.layout.bin_size:
        raise InputError(f"{store.path} has {store.bin_size}-bp bins but the model was trained "
                         f"on {imputer.layout.bin_size}-bp bins")
    resolved = resolve_targets(imputer, store, targets=targets, missing=missing)
    _check_learnt(imputer, resolved)
    _check_outputs(out, [output_file(out, t.key, output_format) for t in resolved],
                   inputs=[model_dir, store.path], overwrite=overwrite)
    created = [p for p in (out, *out.parents) if not p.exists()]  # made by the writer
    try:
        return impute_store(imputer, store, resolved, out, output_format=output_format,
                            arcsinh_scale=arcsinh_scale, chunk_bins=chunk_bins,
                            device=resolve_device(device), precision=precision,
                            progress=progress)
    except BaseException:
        for folder in created:  # innermost first; stops at the first one not empty
            if not folder.is_dir() or any(folder.iterdir()):
                break
            folder.rmdir()
        raise


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


def factors(model_dir: Path, out: Path, *, contig: str, overwrite: bool = False) -> Path:
    """Export an Avocado model's genome factors of ``contig`` and its cell-type and assay
    embeddings to the ``.npz`` file ``out`` (layout in :mod:`epimpute.factors`).

    An existing ``out`` is replaced only with ``overwrite`` and only if it is a factors file.
    """
    from epimpute.factors import export_factors, is_factors_file

    model_dir, out = Path(model_dir), Path(out)
    if out.is_dir():
        raise InputError(f"{out} is a folder; give the name of the .npz file to write")
    check_destination(out, kind="factors file", is_own=is_factors_file, overwrite=overwrite,
                      inputs=[model_dir])
    return export_factors(load_model(model_dir), out, contig=contig)


def synth_sequence(genome: Path, out: Path, *, n_cell_types: int = 6, seed: int = 0,
                   start: int | None = None, end: int | None = None, contig: str = "22",
                   accessibility: str = "ATAC", overwrite: bool = False,
                   progress: bool = True) -> Store:
    """Generate accessibility and histone tracks on a real genome's sequence with known truth
    (:mod:`epimpute.synthetic_sequence`) and write them as the store ``out``, with the truth
    tables in ``out/truth``.

    ``start`` and ``end`` default to the documented window (hg19 chr22 16.05-22 Mb).
    """
    from epimpute.io.genome import open_genome
    from epimpute.store.store import is_store
    from epimpute.synthetic_sequence import SequenceSpec, generate, write_store

    genome, out = Path(genome), Path(out)
    defaults = SequenceSpec()
    spec = SequenceSpec(n_cell_types=n_cell_types, seed=seed, contig=contig,
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
    try:
        resolve_device(device)
    except (RuntimeError, ValueError) as error:
        raise InputError(f"--device {device}: {error}") from None


def _check_model_folder(out: Path, *, inputs: Sequence[Path], resume: bool) -> None:
    """A model folder to train into: not an input, the working directory or a file."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    check_not_input(out, kind="model", inputs=inputs)


def _forget_run(out: Path, *, created: bool) -> None:
    """Remove ``run.json`` (and ``out`` if this run created it) when nothing else is there."""
    if [p.name for p in out.iterdir()] == [RUN_FILE]:
        (out / RUN_FILE).unlink()
        if created:
            out.rmdir()


def _prepare_output(out: Path, run: dict[str, Any], *, resume: bool) -> None:
    """Create ``out`` or check that resuming continues the same run."""
    run_file = out / RUN_FILE
    if resume and run_file.exists():
        previous = json.loads(run_file.read_text())
        changed = sorted(k for k in run if previous.get(k) != run[k])
        if changed:
            raise InputError(f"{out}: cannot resume, the run differs in {', '.join(changed)}")
        return
    if out.exists() and {p.name for p in out.iterdir()} - {RUN_FILE}:
        if (out / CONFIG_FILE).exists() or (out / CHECKPOINT_FILE).exists():
            raise InputError(f"{out} already holds a model; use --resume to continue it "
                             "or choose another folder")
        raise InputError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(run_file) as tmp:
        tmp.write_text(json.dumps(run, indent=2) + "\n")


def __getattr__(name: str) -> Any:
    # ``evaluate`` (epimpute.evaluation.run.evaluate) is imported on first use: scipy and
    # pandas would otherwise slow every command's start by a second.
    if name == "evaluate":
        from epimpute.evaluation.run import evaluate

        return evaluate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

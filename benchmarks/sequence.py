"""Sequence models on held-out cell types and held-out sequence of synth-sequence.

Generated data throughout (hg19 chr22 sequence, JASPAR motifs; ``epimpute synth-sequence``).
Parts (``--parts``, default all):

- ``seqcell``: the default window (16.05-22 Mb, 6 cell types); seqcell trained with the
  held-out cell types' tracks excluded (``--max-minutes``) predicts their marks from their
  ATAC alone; each held-out track is scored over the window's 25 bp bins against the
  generated observed track (Pearson, MSE), next to the mean of the training cell types'
  tracks. *specific*: bins within 25 bins of a truth site accessible in that cell type only.
  ``--observed``: the model configuration's ``"average": "observed"`` (the difference added
  to the training cell types' observed mean instead of the average head's prediction).
  ``--variant-mask N``: the model's ``variant_mask`` (training hides spans of accessibility;
  variant scoring hides it within N model bins of the variant); ``--mask-rate R``: the
  share of training windows with hidden spans (default 0.5). ``--motifs LIBRARY``: known
  motifs as fixed stem filters (``stem_motifs``; libraries in ``motif_libraries.py``).
- ``variants`` (needs ``seqcell``): the model's effects of the planted variants
  (``truth/variants.tsv``) in every cell type, ``centred`` and (held-out cell types)
  ``full`` mode, scored with :func:`epimpute.evaluation.variant_effects.variant_accuracy`,
  next to the GC change of each substitution as the predicted effect (no model).
  ``--variant-gc any,balanced``: the variants planted each way (synth-sequence's
  ``--variant-gc``; the tracks, and so the model, are the same), each scored.
- ``edice`` (on ``seqcell``'s store): eDICE trained on the training cell types,
  extended (``freeze``) to the held-out ones given only their ATAC, scored as seqcell.
- ``accessibility``: seqcell's accessibility task (ATAC from sequence alone) trained on a
  store of 16.05-20.5 Mb, tested on a store generated over 20.5-22 Mb (same seed, so the
  same cell types and TFs; other sites): multi-task (one output per cell type), single-task
  (one model per cell type) and a wider multi-task network. Pearson per cell type, averaged,
  over all bins and over the bins within 12 bins of sites and active promoters accessible
  in exactly k cell types. The multi-task model's variant effects on ATAC are scored too.
  ``--motifs LIBRARY`` gives these models the known motifs as well.

Prints markdown tables, times and peak memory (ru_maxrss).

    PYTHONPATH=src python benchmarks/sequence.py [--parts seqcell,variants] [--max-minutes 5]
        [--config benchmarks/sequence_config.json] [--observed] [--variant-mask 4]
        [--mask-rate 1.0] [--site-rule strongest|random] [--variant-gc any,balanced]
        [--motifs generator|decoys|library|versions]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from motif_libraries import LIBRARIES, stem_motifs

from epimpute import api
from epimpute.evaluation.variant_effects import read_effects, variant_accuracy
from epimpute.imputation import input_availability
from epimpute.model_dir import load_model
from epimpute.seqcell_inputs import prepare_imputation
from epimpute.store import Store
from epimpute.synthetic_sites import gc_change
from epimpute.variants import Variant, score_variants

DEFAULT = next((p / "shared" / "data" / "sequence" for p in Path(__file__).resolve().parents[1:4]
                if (p / "shared" / "data" / "sequence").is_dir()),
               Path(__file__).resolve().parents[2] / "shared" / "data" / "sequence") / \
    "hg19.chr22_1-22000000.fa.gz"
MARKS = ("H3K27ac", "H3K4me1", "H3K4me3", "H3K36me3", "H3K27me3")
PARTS = ("seqcell", "variants", "edice", "accessibility")
START, SPLIT, END = 16_050_000, 20_500_000, 22_000_000
TRUNK = {"stem_channels": 16, "channels": 48}  # the seqcell benchmark configuration's trunk
ACCESS = {"multi-task": {**TRUNK}, "single-task": {**TRUNK},
          "multi-task wide": {"stem_channels": 32, "channels": 96}}


def _scores(x: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    return float(np.corrcoef(x, truth)[0, 1]), float(((x - truth) ** 2).mean())


def _markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v)
                                       for v in row) + " |")
    return "\n".join(lines)


def _impute_window(model: Path, store: Store, genome: Path, pairs: list[tuple[str, str]],
                   start: int, end: int) -> dict[tuple[str, str], np.ndarray]:
    """Tracks over the window only (the contig's other bases are N), through the imputer's
    own :meth:`impute_region`, as ``epimpute impute`` calls it."""
    imputer = load_model(model)
    with prepare_imputation(imputer, store, genome):
        rows, available = input_availability(imputer, store)
        lo, hi, margin = start // 25, end // 25, imputer.context_bins
        signal = np.zeros((len(rows), hi - lo + 2 * margin), dtype=np.float32)
        present = np.flatnonzero(rows >= 0)
        signal[present] = store.read("22", lo - margin, hi + margin, tracks=rows[present])
        targets = [imputer.layout.index_of(f"{c}:{m}") for c, m in pairs]
        values = imputer.impute_region(signal, available, targets, contig="22", start=lo)
    return dict(zip(pairs, values))


def _track_table(store: Store, predictions: dict[str, dict[tuple[str, str], np.ndarray]],
                 held_out: list[str]) -> pd.DataFrame:
    """Pearson and MSE of each model and of the training cell types' mean, per track."""
    sites = pd.read_csv(store.path / "truth" / "sites.tsv", sep="\t")
    lo, hi = START // 25, END // 25
    training_cells = [b for b in store.biosamples if b not in held_out]
    rows = []
    for cell in held_out:
        own = sites[sites["cells"] == cell]
        stratum = np.zeros(hi - lo, dtype=bool)
        for centre in ((own["start"] + own["end"]) // 2 // 25 - lo):
            stratum[max(centre - 25, 0): centre + 26] = True
        for mark in MARKS:
            truth = store.read("22", lo, hi, tracks=[store.track_index(f"{cell}:{mark}")])[0]
            average = store.read("22", lo, hi, tracks=[store.track_index(f"{b}:{mark}")
                                                       for b in training_cells]).mean(axis=0)
            row: dict[str, object] = {"track": f"{cell}:{mark}"}
            named = {name: p[(cell, mark)] for name, p in predictions.items()}
            for name, values in {**named, "average": average}.items():
                row[f"{name} r"], row[f"{name} MSE"] = _scores(values, truth)
                row[f"{name} r specific"], row[f"{name} MSE specific"] = _scores(
                    values[stratum], truth[stratum])
            rows.append(row)
    return pd.DataFrame(rows)


def _variant_tables(model: Path, store: Store, genome: Path, cells: list[str], mode: str,
                    *, stride: int = 16) -> dict[str, pd.DataFrame]:
    """What ``epimpute variants`` computes in each cell type (one model load and genome read
    for all), for the planted variants with a non-zero true effect there (the only ones
    :func:`variant_accuracy` scores)."""
    truth = read_effects(store.path / "truth" / "variants.tsv")
    imputer = load_model(model)
    out = {}
    with prepare_imputation(imputer, store, genome) as reference:
        for cell in cells:
            touched = truth[(truth.filter(like=f"{cell}:").to_numpy() != 0).any(axis=1)]
            variants = [Variant(str(v.CHROM), int(v.POS), v.ID, v.REF, v.ALT, i)
                        for i, v in enumerate(touched.itertuples(index=False))]
            out[cell] = pd.DataFrame(score_variants(imputer, reference, store, variants, cell,
                                                    mode=mode, stride=stride, progress=True))
    return out


def _variant_summary(truth: pd.DataFrame, tables: dict[str, pd.DataFrame], label: str
                     ) -> pd.DataFrame:
    table = variant_accuracy(truth, tables)
    return table[table["mark"] == "all"].drop(columns="mark").assign(scored=label)


def gc_tables(truth: pd.DataFrame, cells: list[str], marks: tuple[str, ...]
              ) -> dict[str, pd.DataFrame]:
    """Prediction tables that give every variant the GC change of its substitution as the
    effect on every mark: +1 A/T to G/C, -1 G/C to A/T, 0 otherwise."""
    change = [float(gc_change("ACGT".index(ref), "ACGT".index(alt)))
              for ref, alt in zip(truth["REF"], truth["ALT"])]
    table = truth[["CHROM", "POS", "REF", "ALT"]].assign(
        status="ok", **{f"{m}:effect": change for m in marks})
    return dict.fromkeys(cells, table)


def _seqcell_config(args, work: Path) -> Path | None:
    """``--config``, with ``"average": "observed"`` in its model section under ``--observed``,
    ``"variant_mask"`` under ``--variant-mask``, ``"stem_motifs"`` under ``--motifs`` and
    the training's ``"mask_rate"`` under ``--mask-rate``."""
    if not (args.observed or args.variant_mask or args.motifs) and args.mask_rate is None:
        return args.config
    values = json.loads(args.config.read_text()) if args.config else {}
    extra = {"average": "observed"} if args.observed else {}
    if args.variant_mask:
        extra["variant_mask"] = args.variant_mask
    if args.motifs:
        extra["stem_motifs"] = stem_motifs(args.motifs)
    values["model"] = {**values.get("model", {}), **extra}
    if args.mask_rate is not None:
        values["training"] = {**values.get("training", {}), "mask_rate": args.mask_rate}
    path = work / "seqcell-config.json"
    path.write_text(json.dumps(values))
    return path


def run_seqcell(args, work: Path, store: Store, held_out: list[str]) -> Path:
    began = time.perf_counter()
    model = api.train(store, work / "seqcell", model="seqcell", config=_seqcell_config(args, work),
                      exclude=[f"{c}:*" for c in held_out], seed=args.seed, device="cpu",
                      max_minutes=args.max_minutes, genome=args.genome, progress=True)
    train_seconds = time.perf_counter() - began
    history = json.loads((model / "config.json").read_text())["provenance"]["history"]
    began = time.perf_counter()
    pairs = [(c, m) for c in held_out for m in MARKS]
    predictions = _impute_window(model, store, args.genome, pairs, START, END)
    impute_seconds = time.perf_counter() - began
    table = _track_table(store, {"seqcell": predictions}, held_out)
    print(_markdown(table))
    print(f"\nmean over tracks:\n{table.drop(columns='track').mean().to_string()}")
    saved = json.loads((model / "config.json").read_text())["config"]
    rate = json.loads((model / "config.json").read_text())["training_config"]["mask_rate"]
    base = (f"{saved['average']} average, variant_mask {saved.get('variant_mask', 0)}, "
            f"mask_rate {rate}")
    print(f"\nseqcell ({base}) training {train_seconds:.0f} s wall ({len(history['epochs'])} epochs, "
          f"stopped: {history['stopped_because']}), imputing {len(predictions)} tracks over "
          f"the window {impute_seconds:.0f} s")
    return model


def run_variants(args, work: Path, store: Store, model: Path, held_out: list[str],
                 variant_gc: str = "any") -> None:
    truth = read_effects(store.path / "truth" / "variants.tsv")
    training = [b for b in store.biosamples if b not in held_out]
    parts = [_variant_summary(truth, gc_tables(truth, held_out, MARKS), "held-out, GC change")]
    for mode, cells, label in (("centred", held_out, "held-out, centred"),
                               ("full", held_out, "held-out, full"),
                               ("centred", training, "training, centred")):
        began = time.perf_counter()
        tables = _variant_tables(model, store, args.genome, cells, mode, stride=args.stride)
        seconds = time.perf_counter() - began
        parts.append(_variant_summary(truth, tables, label))
        print(f"variants {label}: {sum(len(t) for t in tables.values())} variant-cell "
              f"pairs in {seconds:.0f} s")
    table = pd.concat(parts, ignore_index=True)
    print(f"\nseqcell variant effects (H3K27ac, H3K4me1: the marks a site touches), "
          f"variant_gc {variant_gc}\n")
    print(_markdown(table[["scored", "stratum", "n", "gains", "auroc", "spearman"]]))


def run_edice(args, work: Path, store: Store, held_out: list[str]) -> None:
    began = time.perf_counter()
    base = api.train(store, work / "edice", model="edice", exclude=[f"{c}:*" for c in held_out],
                     seed=args.seed, device="cpu", max_minutes=args.edice_minutes,
                     progress=True)
    trained = time.perf_counter() - began
    marks_of = [f"{c}:{m}" for c in held_out for m in MARKS]
    extended = api.extend(base, store, work / "edice-extended", mode="freeze",
                          exclude=marks_of, seed=args.seed, device="cpu",
                          max_minutes=args.edice_minutes / 2, progress=True)
    extend_seconds = time.perf_counter() - began - trained
    paths = api.impute(extended, store, work / "edice-imputed", targets=marks_of,
                       format="npz", device="cpu", progress=False)
    lo, hi = START // 25, END // 25
    predictions = {}
    for path in paths:
        cell, mark = path.name.split(".")[:2]
        predictions[(cell, mark)] = np.load(path)["22"][lo:hi]
    table = _track_table(store, {"eDICE": predictions}, held_out)
    print("\neDICE from accessibility (extended to the held-out cell types' ATAC)\n")
    print(_markdown(table))
    print(f"\nmean over tracks:\n{table.drop(columns='track').mean().to_string()}")
    print(f"eDICE training {trained:.0f} s, extension {extend_seconds:.0f} s")


def _strata(store: Store, lo: int, hi: int) -> dict[str, np.ndarray]:
    """Bins within 12 bins of a site or active promoter accessible in exactly k cell types."""
    sites = pd.read_csv(store.path / "truth" / "sites.tsv", sep="\t")
    genes = pd.read_csv(store.path / "truth" / "genes.tsv", sep="\t").dropna(subset=["cells"])
    centres = list(zip((sites["start"] + sites["end"]) // 2, sites["cells"]))
    centres += list(zip(genes["tss"], genes["cells"]))
    masks: dict[int, np.ndarray] = {}
    for centre, cells in centres:
        k = len(str(cells).split(","))
        mask = masks.setdefault(k, np.zeros(hi - lo, dtype=bool))
        b = centre // 25 - lo
        mask[max(b - 12, 0): b + 13] = True
    return {"all bins": np.ones(hi - lo, dtype=bool),
            **{f"k={k}": masks[k] for k in sorted(masks)}}


def run_accessibility(args, work: Path) -> None:
    train_store = api.synth_sequence(args.genome, work / "a.zarr", cell_types=6, seed=args.seed,
                                     start=START, end=SPLIT, site_rule=args.site_rule)
    test_store = api.synth_sequence(args.genome, work / "t.zarr", cell_types=6, seed=args.seed,
                                    start=SPLIT, end=END, site_rule=args.site_rule)
    cells = list(train_store.biosamples)
    lo, hi = SPLIT // 25, END // 25
    strata = _strata(test_store, lo, hi)
    rows, seconds = [], {}
    for name, model_config in ACCESS.items():
        config = work / f"{name}.json"
        motifs = {"stem_motifs": stem_motifs(args.motifs)} if args.motifs else {}
        config.write_text(json.dumps({"model": {**model_config, **motifs,
                                                "task": "accessibility", "context": 132},
                                      "training": {"max_epochs": 40}}))
        groups = [[c] for c in cells] if name == "single-task" else [cells]
        minutes = args.single_minutes if name == "single-task" else args.access_minutes
        predictions: dict[str, np.ndarray] = {}
        began = time.perf_counter()
        for group in groups:
            folder = work / f"{name}-{'-'.join(group)}".replace(" ", "_")
            model = api.train(train_store, folder, model="seqcell", config=config,
                              exclude=[f"{b}:*" for b in cells if b not in group],
                              seed=args.seed, device="cpu", max_minutes=minutes,
                              genome=args.genome, progress=True)
            values = _impute_window(model, test_store, args.genome,
                                    [(c, "ATAC") for c in group], SPLIT, END)
            predictions.update({c: v for (c, _), v in values.items()})
            if name == "multi-task":
                multi = model
        seconds[name] = time.perf_counter() - began
        row: dict[str, object] = {"model": name}
        for stratum, mask in strata.items():
            r = [np.corrcoef(predictions[c][mask], test_store.read(
                "22", lo, hi, tracks=[test_store.track_index(f"{c}:ATAC")])[0][mask])[0, 1]
                for c in cells]
            row[f"r {stratum} ({int(mask.sum())})"] = float(np.mean(r))
        rows.append(row)
    print("\nATAC from sequence on held-out sequence (20.5-22 Mb), mean Pearson over the "
          "6 cell types\n")
    print(_markdown(pd.DataFrame(rows)))
    print("\n" + ", ".join(f"{n}: {s:.0f} s" for n, s in seconds.items()))
    truth = read_effects(train_store.path / "truth" / "variants.tsv")
    tables = _variant_tables(multi, train_store, args.genome, cells, "centred")
    print("\nmulti-task ATAC variant effects (centred), all 6 cell types\n")
    print(_markdown(_variant_summary(truth, tables, "multi-task ATAC")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genome", type=Path, default=DEFAULT)
    parser.add_argument("--held-out", default="cell5,cell6")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--max-minutes", type=float, default=5.0, help="seqcell budget")
    parser.add_argument("--edice-minutes", type=float, default=3.0,
                        help="eDICE budget (the extension gets half)")
    parser.add_argument("--access-minutes", type=float, default=3.0,
                        help="budget of each multi-task accessibility model")
    parser.add_argument("--single-minutes", type=float, default=1.5,
                        help="budget of each single-task accessibility model")
    parser.add_argument("--stride", type=int, default=16, help="full-mode variant stride")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--site-rule", choices=("strongest", "random"), default="strongest",
                        help="synth-sequence's site rule (random: the earlier grammar)")
    parser.add_argument("--variant-gc", default="any",
                        help="planted variants, comma-separated: any (default), balanced "
                             "(synth-sequence's --variant-gc); each set is scored")
    parser.add_argument("--config", type=Path, help="seqcell configuration JSON")
    parser.add_argument("--observed", action="store_true",
                        help="seqcell with \"average\": \"observed\" on top of --config")
    parser.add_argument("--variant-mask", type=int, default=0,
                        help="seqcell with this \"variant_mask\" on top of --config")
    parser.add_argument("--motifs", choices=LIBRARIES,
                        help="seqcell with these known motifs in its stem (\"stem_motifs\", "
                             "see benchmarks/motif_libraries.py) on top of --config")
    parser.add_argument("--mask-rate", type=float,
                        help="share of training windows with hidden accessibility spans "
                             "(with --variant-mask; default the training's 0.5)")
    args = parser.parse_args()
    held_out, parts = args.held_out.split(","), args.parts.split(",")
    if not set(parts) <= set(PARTS):
        parser.error(f"--parts: choose from {', '.join(PARTS)}")
    variant_gc = args.variant_gc.split(",")
    if not set(variant_gc) <= {"any", "balanced"}:
        parser.error("--variant-gc: any, balanced or both")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if {"seqcell", "variants", "edice"} & set(parts):
            store = api.synth_sequence(args.genome, work / "s.zarr", cell_types=6,
                                       seed=args.seed, start=START, end=END,
                                       site_rule=args.site_rule, variant_gc=variant_gc[0])
            if {"seqcell", "variants"} & set(parts):
                model = run_seqcell(args, work, store, held_out)
            if "variants" in parts:
                for i, name in enumerate(variant_gc):  # the same tracks: one model for all
                    planted = store if i == 0 else api.synth_sequence(
                        args.genome, work / f"s-{name}.zarr", cell_types=6, seed=args.seed,
                        start=START, end=END, site_rule=args.site_rule, variant_gc=name,
                        progress=False)
                    run_variants(args, work, planted, model, held_out, name)
            if "edice" in parts:
                run_edice(args, work, store, held_out)
        if "accessibility" in parts:
            run_accessibility(args, work)
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()

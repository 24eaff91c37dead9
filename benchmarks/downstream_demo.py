"""``epimpute downstream`` on generated data: measured tracks, Avocado's imputed tracks and
its genome factors as features of gene expression and gene activity in one cell type.

Everything is generated (:mod:`epimpute.synthetic`): a compendium of 8 cell types x 6
marks over five 800-kb contigs with about 100 genes per Mb, 30% of its tracks held back.
The target cell type is the one with the most held-back tracks. Its "expression" is
``log1p(height)`` of a gene when the gene is active in it and 0 otherwise (``height`` is
the gene's promoter signal strength), and its "activity" is the 0/1 of the same.

Steps (each timed): the store of the observed tracks; a store of the target's observed
tracks alone (the *measured* features); Avocado trained on the whole store with a small,
fixed budget; its imputation of all 6 marks of the target (*imputed*); its genome factors
of each contig (*factors*); then ``downstream`` with promoter (TSS +/- 1 kb) and body
windows, folds by chromosome, for both labels.

    PYTHONPATH=src python benchmarks/downstream_demo.py [--out benchmarks/results/downstream]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from epimpute import api
from epimpute.downstream.run import format_table
from epimpute.store import Track, create_store
from epimpute.synthetic import SyntheticSpec, generate

SPEC = SyntheticSpec(n_cell_types=8, n_lineages=2,
                     contigs={f"chr{i}": 800_000 for i in range(1, 6)},
                     genes_per_mb=100.0, missing_fraction=0.3, seed=7)
AVOCADO = {
    "model": {"preset": "small", "celltype_factors": 8, "assay_factors": 6,
              "genome_factors": [6, 8, 10], "hidden": [32]},
    "training": {"batch_size": 4000, "learning_rate": 3e-3, "max_epochs": 25},
}


def _store(path: Path, compendium, keys: list[tuple[str, str]]) -> Path:
    writer = create_store(path, tracks=[Track(c, a) for c, a in keys],
                          contigs=compendium.contigs, bin_size=compendium.bin_size)
    for row, key in enumerate(keys):
        for contig, values in compendium.signal[key].items():
            writer.write(row, contig, np.arcsinh(values))
    return path


def _timed(label: str, times: dict[str, float], step):
    begin = time.perf_counter()
    result = step()
    times[label] = time.perf_counter() - begin
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/downstream"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    times: dict[str, float] = {}
    compendium = generate(SPEC)
    genes = compendium.genes
    observed = compendium.observed
    target = max(compendium.cell_types,
                 key=lambda c: (sum(m[0] == c for m in compendium.missing), c))
    t = compendium.cell_types.index(target)
    store = _timed("stores", times, lambda: _store(args.out / "all.zarr", compendium, observed))
    measured = _store(args.out / "measured.zarr", compendium,
                      [k for k in observed if k[0] == target])

    lines = [f"{c}\t{s}\t{e}\t{g}\t0\t{'+' if d > 0 else '-'}\n"
             for g, c, s, e, d in zip(genes.ids, genes.chrom, genes.start, genes.end,
                                      genes.strand)]
    bed = args.out / "genes.bed"
    bed.write_text("".join(lines))
    expression = np.where(genes.active[:, t], np.log1p(genes.height), 0.0)
    (args.out / "expression.tsv").write_text(
        "".join(f"{g}\t{v:.6f}\n" for g, v in zip(genes.ids, expression)))
    (args.out / "activity.tsv").write_text(
        "".join(f"{g}\t{int(a)}\n" for g, a in zip(genes.ids, genes.active[:, t])))

    config = args.out / "avocado.json"
    config.write_text(json.dumps(AVOCADO))
    model = _timed("avocado train", times, lambda: api.train(
        store, args.out / "avocado", model="avocado", config=config, seed=0, device="cpu"))
    keys = [f"{target}:{a}" for a in compendium.assays]
    _timed("avocado impute", times, lambda: api.impute(
        model, store, args.out / "imputed", targets=keys, format="npz", device="cpu"))
    factor_files = _timed("factors", times, lambda: [
        api.factors(model, args.out / f"{c}.factors.npz", chrom=c) for c in SPEC.contigs])

    features = [f"measured={measured}", f"imputed={args.out / 'imputed'}"]
    features += [f"factors={path}" for path in factor_files]
    held_back = [a for c, a in compendium.missing if c == target]
    print(f"generated data: {len(genes.ids)} genes on {len(SPEC.contigs)} contigs, "
          f"target {target} (active genes {int(genes.active[:, t].sum())}; measured "
          f"{6 - len(held_back)} of 6 marks, held back: {', '.join(held_back)})")
    for labels, task in (("expression", "regression"), ("activity", "classification")):
        table = _timed(f"downstream {labels}", times, lambda labels=labels, task=task:
                       api.downstream(args.out / f"{labels}.metrics.tsv", features=features,
                                      genes=bed, region="both", promoter=1000,
                                      labels=args.out / f"{labels}.tsv", task=task,
                                      split="chrom", folds=5, seed=0))
        print(f"\n{labels} ({task}, 5 folds by chromosome, pooled out-of-fold):")
        print(format_table(table))
    print("\nseconds: " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()))


if __name__ == "__main__":
    main()

"""``epimpute downstream`` end to end: a store and precomputed matrices side by side, and the
errors that end with exit status 2 and no table."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epimpute.cli import main
from epimpute.store import Track, create_store

BIN = 100
CONTIGS = {f"chr{i}": 400_000 for i in range(1, 7)}


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A store whose first track is high at the promoters of genes in proportion to their
    expression, a genes BED, expression labels and matching .npy matrices."""
    folder = tmp_path_factory.mktemp("downstream")
    rng = np.random.default_rng(0)
    genes, values = [], {}
    lines = []
    for contig in CONTIGS:
        tss = (np.arange(40) * 95 + 30 + rng.integers(0, 20, 40)) * BIN  # windows apart
        for j, t in enumerate(tss):
            name = f"{contig}.g{j}"
            strand = "+" if j % 2 else "-"
            lo, hi = (t, t + 3000) if strand == "+" else (t - 3000, t + 1)
            lines.append(f"{contig}\t{lo}\t{hi}\t{name}\t0\t{strand}\n")
            genes.append((name, contig, int(t)))
            values[name] = float(rng.random() * 5)
    (folder / "genes.bed").write_text("".join(lines))
    writer = create_store(folder / "s.zarr", tracks=[Track("c1", "H3K4me3"), Track("c1", "X")],
                          contigs=CONTIGS, bin_size=BIN)
    for contig, length in CONTIGS.items():
        signal = np.zeros(length // BIN, np.float32)
        for name, c, t in genes:
            if c == contig:
                signal[t // BIN - 5: t // BIN + 5] = values[name]
        writer.write(0, contig, signal)
        writer.write(1, contig, rng.random(length // BIN).astype(np.float32))
    labels = folder / "expr.tsv"
    labels.write_text("gene_id\tvalue\n" + "".join(f"{g}\t{v}\n" for g, v in values.items()))
    names = list(values)
    exact = folder / "exact.npy"
    np.save(exact, np.array([[2 * values[g] - 1] for g in names[::-1]]))
    (folder / "exact.rows.txt").write_text("\n".join(names[::-1]) + "\n")
    np.save(folder / "noise.npy", rng.random((len(names), 3)))
    return folder


def _run(case, *extra, out="table.tsv"):
    return main(["-q", "downstream", "--genes", str(case / "genes.bed"),
                 "--labels", str(case / "expr.tsv"), "--folds", "3",
                 "--out", str(case / out), *extra])


def test_feature_sets_side_by_side(case, capsys):
    status = _run(case, "--feature", f"observed={case / 's.zarr'}",
                  "--feature", f"exact={case / 'exact.npy'}",
                  "--feature", f"noise={case / 'noise.npy'}", "--flank", "1")
    assert status == 0
    printed = capsys.readouterr().out
    assert "observed" in printed and "pearson" in printed
    table = pd.read_csv(case / "table.tsv", sep="\t")
    pooled = table[table["fold"] == "all"].set_index(["feature_set", "metric"])["value"]
    assert pooled["exact", "pearson"] > 0.99
    assert pooled["observed", "pearson"] > 0.95
    assert abs(pooled["noise", "pearson"]) < 0.3 and pooled["noise", "r2"] < 0.05
    features = table.groupby("feature_set")["n_features"].first()
    assert features.to_dict() == {"exact": 1, "noise": 3, "observed": 2 * 3}
    assert set(table["fold"]) == {"all", "0", "1", "2"}
    assert (table.loc[table["fold"] == "all", "n_test"] == 240).all()
    # the same seed gives the same table; an existing table needs --overwrite
    assert _run(case, "--feature", f"exact={case / 'exact.npy'}") == 2
    assert _run(case, "--feature", f"exact={case / 'exact.npy'}", "--overwrite") == 0
    first = pd.read_csv(case / "table.tsv", sep="\t")
    assert _run(case, "--feature", f"exact={case / 'exact.npy'}", "--overwrite") == 0
    pd.testing.assert_frame_equal(first, pd.read_csv(case / "table.tsv", sep="\t"))


def test_block_folds_and_positives(case):
    positives = case / "pos.bed"
    bed = pd.read_csv(case / "genes.bed", sep="\t", header=None)
    expr = pd.read_csv(case / "expr.tsv", sep="\t").set_index("gene_id")["value"]
    active = bed[bed[3].map(expr) > 2.5]
    active[[0, 1, 2]].to_csv(positives, sep="\t", header=False, index=False)
    status = main(["-q", "downstream", "--genes", str(case / "genes.bed"), "--region", "body",
                   "--positives", str(positives), "--split", "block", "--block", "200000",
                   "--folds", "3", "--feature", f"observed={case / 's.zarr'}",
                   "--out", str(case / "cls.tsv")])
    assert status == 0
    table = pd.read_csv(case / "cls.tsv", sep="\t")
    pooled = table[table["fold"] == "all"].set_index("metric")["value"]
    assert pooled["auroc"] > 0.9


@pytest.mark.parametrize("make, message", [
    (lambda c: ("--feature", f"m={c / 'short.npy'}"), "short.npy has 5 rows but the labels name 240"),
    (lambda c: ("--feature", f"o={c / 's.zarr'}", "--labels", str(c / "other.tsv")),
     "other.tsv: none of its 2 ids"),
    (lambda c: ("--feature", f"o={c / 's.zarr'}", "--genes", str(c / "hg38.bed")),
     r"none of its contigs \(chrX, chrY\)"),
    (lambda c: ("--feature", f"o={c / 's.zarr'}", "--folds", "6", "--labels",
                str(c / "few.tsv")), "fold .* fewer than 10"),
    (lambda c: ("--feature", f"o={c / 's.zarr'}", "--task", "classification"),
     "classification needs labels of 0 and 1"),
    (lambda c: ("--feature", "nothing"), "expected NAME=PATH"),
    (lambda c: ("--feature", f"o={c / 'missing.zarr'}"), "not found"),
])
def test_bad_input_exits_2_and_writes_nothing(case, capsys, make, message):
    np.save(case / "short.npy", np.zeros((5, 2)))
    (case / "other.tsv").write_text("geneA\t1\ngeneB\t2\n")
    (case / "hg38.bed").write_text("chrX\t100\t200\tg1\t0\t+\nchrY\t100\t200\tg2\t0\t+\n")
    expr = (case / "expr.tsv").read_text().splitlines()
    (case / "few.tsv").write_text("\n".join(expr[1::8]) + "\n")  # 30 genes, 6 contigs
    status = _run(case, *make(case), out="bad.tsv")
    assert status == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (case / "bad.tsv").exists()
    assert not list(case.glob(".bad.tsv.*"))


def test_the_hg38_gencode_bed_on_a_store_of_short_contigs_is_refused(case, capsys):
    gencode = (Path(__file__).resolve().parents[2] / "shared" / "data" / "annotations"
               / "hg38" / "gencode.v29.genes.gtf.bed.gz")
    if not gencode.is_file():
        pytest.skip(f"GENCODE genes BED not found at {gencode} (../shared/data absent)")
    status = _run(case, "--feature", f"o={case / 's.zarr'}", "--genes", str(gencode),
                  out="gencode.tsv")
    assert status == 2
    assert re.search(r"ENSG\d+\.\d+ at chr\d+:\d+ starts past the end of chr\d+ \(400000 bp",
                     capsys.readouterr().err)
    assert not (case / "gencode.tsv").exists()

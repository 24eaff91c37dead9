"""Predicted variant effects scored against known ones: AUROC of the sign, Spearman, strata."""

import math

import pandas as pd
import pytest
from test_synthetic_sequence import real_window

from epimpute.errors import InputError
from epimpute.evaluation.variant_effects import effect_pairs, read_effects, variant_accuracy
from epimpute.synthetic_sequence import generate

KEY = ["CHROM", "POS", "ID", "REF", "ALT"]


def _truth() -> pd.DataFrame:
    # v1 opens in cell1 only, v2 in cell1 and cell2, v3 everywhere, v4 and v5 in cell2 only
    rows = [
        ("22", 101, "v1", "A", "C", -1.0, -0.5, 0.0, 0.0, 0.0, 0.0),
        ("22", 202, "v2", "G", "T", 1.0, 0.4, 0.8, 0.2, 0.0, 0.0),
        ("22", 303, "v3", "C", "A", -0.9, -0.3, -0.7, -0.1, -0.6, -0.2),
        ("22", 404, "v4", "T", "G", 0.0, 0.0, 0.5, 0.6, 0.0, 0.0),
        ("22", 505, "v5", "A", "G", 0.0, 0.0, 0.9, 0.7, 0.0, 0.0),
    ]
    tracks = [f"cell{i}:{a}" for i in (1, 2, 3) for a in ("ATAC", "H3K27ac")]
    return pd.DataFrame(rows, columns=KEY + tracks)


def _predicted(cell_effects: dict[str, float], mismatch: tuple[str, ...] = ()) -> pd.DataFrame:
    truth = _truth().set_index("ID")
    rows = []
    for name, effect in cell_effects.items():
        row = {k: truth.loc[name, k] for k in ("CHROM", "POS", "REF", "ALT")}
        status = "REF mismatch: the genome has C" if name in mismatch else "ok"
        rows.append({**row, "ID": name, "status": status,
                     "H3K27ac:effect": float("nan") if name in mismatch else effect,
                     "H3K4me3:effect": 1.0})  # no truth column for this mark: ignored
    return pd.DataFrame(rows)


def test_auroc_and_spearman_by_hand():
    predicted = {"cell1": _predicted({"v1": -0.2, "v2": 0.0, "v3": 0.05, "v4": 0.3}),
                 "cell2": _predicted({"v1": 0.4, "v2": 0.3, "v3": -0.1, "v4": 0.2, "v5": 9.0},
                                     mismatch=("v5",))}
    pairs = effect_pairs(_truth(), predicted)
    # true effect 0 (cell1 v4, cell2 v1) and the REF mismatch (cell2 v5) are left out
    assert list(zip(pairs["cell"], pairs["ID"])) == [
        ("cell1", "v1"), ("cell1", "v2"), ("cell1", "v3"),
        ("cell2", "v2"), ("cell2", "v3"), ("cell2", "v4")]
    assert pairs["cells"].tolist() == [1, 2, 3, 2, 3, 1]
    table = variant_accuracy(_truth(), predicted).set_index(["stratum", "mark"])
    assert list(table.index.get_level_values(0).unique()) == ["all", "cells=1", "cells=2",
                                                              "cells=3"]
    overall = table.loc[("all", "all")]
    # gains predicted 0.0, 0.3, 0.2; losses -0.2, 0.05, -0.1: 8 of the 9 gain-loss pairs in
    # order (0.0 < 0.05 is the wrong one)
    assert overall["n"] == 6 and overall["gains"] == 3
    assert overall["auroc"] == pytest.approx(8 / 9)
    # truth ranks 1 5 2 4 3 6, predicted ranks 1 3 4 6 2 5: sum d^2 = 14, 1 - 6*14/(6*35)
    assert overall["spearman"] == pytest.approx(0.6)
    assert table.loc[("all", "H3K27ac"), "auroc"] == pytest.approx(8 / 9)
    one = table.loc[("cells=1", "all")]  # cell1 v1 (-0.5, -0.2), cell2 v4 (0.6, 0.2)
    assert (one["n"], one["auroc"], one["spearman"]) == (2, 1.0, pytest.approx(1.0))
    two = table.loc[("cells=2", "all")]  # both gains: no AUROC; (0.4, 0.0), (0.2, 0.3)
    assert two["n"] == 2 and math.isnan(two["auroc"]) and two["spearman"] == pytest.approx(-1)
    three = table.loc[("cells=3", "all")]  # both losses: (-0.3, 0.05), (-0.1, -0.1)
    assert math.isnan(three["auroc"]) and three["spearman"] == pytest.approx(-1)


def test_reversed_predictions_score_zero_and_nothing_shared_is_an_error():
    predicted = {"cell1": _predicted({"v1": 0.5, "v2": -0.4, "v3": 0.3})}
    row = variant_accuracy(_truth(), predicted).iloc[0]
    assert row["auroc"] == 0.0 and row["spearman"] == pytest.approx(-1.0)
    with pytest.raises(InputError, match="no variant effect to score"):
        variant_accuracy(_truth(), {"cell3": _predicted({"v1": 0.5})})  # cell3: truth 0
    with pytest.raises(InputError, match="accessibility column"):
        variant_accuracy(_truth().drop(columns=["cell1:ATAC", "cell2:ATAC", "cell3:ATAC"]),
                         predicted)


def test_strata_are_the_cell_types_of_the_generators_sites():
    sequence, spec = real_window()  # skips without ../shared/data
    compendium = generate(sequence, spec, contig_length=22_000_000)
    truth = compendium.variants
    assert len(truth) > 0
    # a perfect predictor of every cell type's H3K27ac, built from the truth table
    predicted = {cell: truth[KEY].assign(status="ok", **{"H3K27ac:effect":
                                                           truth[f"{cell}:H3K27ac"]})
                 for cell in compendium.cell_types}
    pairs = effect_pairs(truth, predicted)
    sites = compendium.sites.set_index("start")
    for row in pairs.merge(truth, on="ID").itertuples():
        if row.KIND == "break":  # the broken site is a reference site: its cells are known
            assert row.cells == len(sites.loc[row.SITE_START, "cells"].split(","))
    table = variant_accuracy(truth, predicted)
    assert table.loc[0, "spearman"] == pytest.approx(1.0)
    assert table.loc[0, "auroc"] == 1.0
    assert (table["spearman"].dropna() > 0.999).all()


def test_read_effects_names_the_file(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("CHROM\tPOS\n22\t5\n")
    with pytest.raises(InputError, match="t.tsv: no column REF, ALT"):
        read_effects(path)
    path.write_text("CHROM\tPOS\tREF\tALT\n22\t5\tA\tC\n")
    assert read_effects(path)["CHROM"].tolist() == ["22"]

"""Variant scoring modes on a randomly initialised seqcell: the centred bin and the mean over
window placements, each against one long window computed independently."""

from pathlib import Path

import numpy as np
import pytest
import torch

from epimpute.cli import main
from epimpute.errors import InputError
from epimpute.io.genome import open_genome
from epimpute.model_dir import save_model
from epimpute.models.seqcell import Seqcell, SeqcellConfig, SeqcellImputer, reach
from epimpute.seqcell_inputs import genome_record, panel_values
from epimpute.store import Store, Track, create_store
from epimpute.training.data import store_layout
from epimpute.variants import Variant, full_window, score_variants

MARKS = ["H3K27ac", "H3K4me1"]
CONFIG = SeqcellConfig(stem_channels=8, channels=8, dilations=(1, 2, 4), cell_dilations=(1, 2),
                       global_sites=5, dropout=0.0, context=21)
LENGTH = 60_000  # bp of the contig


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    folder = tmp_path_factory.mktemp("variants")
    rng = np.random.default_rng(3)
    bases = "".join(rng.choice(list("ACGT"), LENGTH))
    fasta = folder / "g.fa"
    fasta.write_text(">c\n" + "\n".join(bases[i: i + 60] for i in range(0, LENGTH, 60)) + "\n")
    tracks = [Track(cell_type=c, assay=a) for c in ("a", "b") for a in ("ATAC", *MARKS)]
    writer = create_store(folder / "s.zarr", tracks=tracks, contigs={"c": LENGTH}, bin_size=25)
    for i in range(len(tracks)):
        writer.write(i, "c", np.abs(rng.normal(size=LENGTH // 25)).astype(np.float32))
    store = Store.open(folder / "s.zarr")
    genome = open_genome(fasta)
    config = SeqcellConfig(**{**CONFIG.__dict__, "panel": {
        "contigs": ["c"] * 5, "bins": [10, 50, 90, 130, 170], "mean": [0.1] * 5,
        "assay": "ATAC", "marks": MARKS, "genome": genome_record(genome)}})
    torch.manual_seed(0)
    imputer = SeqcellImputer(store_layout(store), Seqcell(config, len(MARKS)))
    # the panel values imputing computes from the store (as the command line does)
    imputer.set_panel(0, panel_values(store, 0, config.panel["contigs"], config.panel["bins"], 5))
    yield imputer, genome, store, bases
    genome.close()


def _variant(bases: str, pos: int) -> Variant:
    ref = bases[pos - 1]
    return Variant("c", pos, "v", ref, next(b for b in "ACGT" if b != ref), 1)


def _per_bin_effects(imputer, genome, store, variant, half):
    """(2, marks, 2 * half + 1): REF and ALT predictions of the bins k - half .. k + half from
    one window holding all of them (and the context)."""
    c, k = imputer.config.context, (variant.pos - 1) // 125
    lo, hi = k - half - c, k + half + 1 + c
    ref = genome.one_hot("c", lo * 125, hi * 125)
    alt = ref.copy()
    alt[:, variant.pos - 1 - lo * 125] = 0
    alt["ACGT".index(variant.alt), variant.pos - 1 - lo * 125] = 1
    access = store.read("c", lo * 5, hi * 5, tracks=[0])[0].reshape(-1, 5).mean(axis=1)
    panel = torch.from_numpy(imputer.panel_input(0))[None].repeat(2, 1)
    with torch.no_grad():
        average, difference = imputer.network(torch.from_numpy(np.stack([ref, alt])),
                                              torch.from_numpy(np.stack([access] * 2)), panel)
    return (average + difference)[:, :, c: c + 2 * half + 1].numpy()


def test_centred_mode_is_the_variants_bin(setting):
    imputer, genome, store, bases = setting
    variant = _variant(bases, 30_061)
    row = score_variants(imputer, genome, store, [variant], "a")[0]
    predicted = _per_bin_effects(imputer, genome, store, variant, half=3)
    for j, mark in enumerate(MARKS):
        assert row[f"{mark}:ref"] == pytest.approx(predicted[0, j, 3], abs=1e-5)
        assert row[f"{mark}:effect"] == pytest.approx(predicted[1, j, 3] - predicted[0, j, 3],
                                                      abs=1e-5)


@pytest.mark.parametrize("stride", [1, 7, 16])
def test_full_mode_averages_every_placement_of_the_window(setting, stride):
    imputer, genome, store, bases = setting
    variant = _variant(bases, 30_061)
    width = full_window(imputer)
    assert width == 2 * reach(CONFIG) + 1 == 43
    row = score_variants(imputer, genome, store, [variant], "a", mode="full", stride=stride)[0]
    # by translation equivariance, the window with the variant's bin at output bin o holds
    # the bins k - o .. k - o + width - 1 of one long window's prediction
    effects = _per_bin_effects(imputer, genome, store, variant, half=width - 1)
    offsets = range(0, width, stride)
    expected = np.mean([effects[:, :, width - 1 - o: 2 * width - 1 - o].mean(axis=2)
                        for o in offsets], axis=0)
    for j, mark in enumerate(MARKS):
        assert row[f"{mark}:ref"] == pytest.approx(expected[0, j], abs=1e-5)
        assert row[f"{mark}:effect"] == pytest.approx(expected[1, j] - expected[0, j],
                                                      abs=1e-5)
    # the variant changes bins other than its own, so the mean is not the centred effect
    assert np.abs(effects[1] - effects[0])[:, width:].max() > 0


def test_bad_mode_stride_and_a_cell_type_without_accessibility(setting, tmp_path, capsys):
    imputer, genome, store, bases = setting
    variant = _variant(bases, 30_061)
    with pytest.raises(InputError, match="--mode must be one of centred, full"):
        score_variants(imputer, genome, store, [variant], "a", mode="wide")
    with pytest.raises(InputError, match="--stride"):
        score_variants(imputer, genome, store, [variant], "a", mode="full", stride=0)
    with pytest.raises(InputError, match="'z' has no accessibility track"):
        score_variants(imputer, genome, store, [variant], "z")
    with pytest.raises(SystemExit):
        main(["-q", "variants", str(tmp_path / "m"), str(store.path), "--vcf",
              str(tmp_path / "v.vcf"), "--cell-type", "a", "--mode", "wide",
              "--out", str(tmp_path / "o.tsv")])
    assert "invalid choice: 'wide'" in capsys.readouterr().err
    assert not (tmp_path / "o.tsv").exists()


def test_read_vcf_takes_a_table_with_a_plain_header(tmp_path):
    from epimpute.variants import read_vcf

    path = tmp_path / "truth.tsv"
    path.write_text("CHROM\tPOS\tID\tREF\tALT\tTF\n22\t17\tvar1\tA\tg\tCTCF\n")
    assert read_vcf(path) == [Variant("22", 17, "var1", "A", "G", 2)]
    path.write_text("22\t17\tvar1\tA\tG\nCHROM\tPOS\tID\tREF\tALT\n")  # not first: malformed
    with pytest.raises(InputError, match="truth.tsv:2: expected CHROM POS"):
        read_vcf(path)


def test_cli_cell_type_without_accessibility_exits_2(setting, tmp_path, capsys):
    imputer, _, store, bases = setting
    model = save_model(tmp_path / "model", imputer)
    # a store with a's tracks and a mark of b, but no b:ATAC
    rows = [store.track_index(k) for k in ("a:ATAC", "a:H3K27ac", "b:H3K27ac")]
    writer = create_store(tmp_path / "no-b.zarr", tracks=[store.tracks[r] for r in rows],
                          contigs=store.contigs, bin_size=25)
    for i, r in enumerate(rows):
        writer.write(i, "c", store.read("c", tracks=[r])[0])
    vcf = tmp_path / "v.vcf"
    variant = _variant(bases, 30_061)
    vcf.write_text(f"c\t{variant.pos}\tv\t{variant.ref}\t{variant.alt}\n")
    for cell, message in (("b", "cell type 'b' has no ATAC track in"),
                          ("z", "cell type 'z' has no accessibility track in")):
        out = tmp_path / f"{cell}.tsv"
        assert main(["-q", "variants", str(model), str(tmp_path / "no-b.zarr"), "--vcf",
                     str(vcf), "--cell-type", cell, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and "no-b.zarr" in err
        assert not out.exists()
    out = tmp_path / "a.tsv"
    assert main(["-q", "variants", str(model), str(tmp_path / "no-b.zarr"), "--vcf", str(vcf),
                 "--cell-type", "a", "--out", str(out), "--mode", "full", "--stride", "21"]) == 0
    header, row = (line.split("\t") for line in out.read_text().splitlines())
    expected = score_variants(imputer, setting[1], store, [variant], "a", mode="full",
                              stride=21)[0]
    for column in ("H3K27ac:ref", "H3K27ac:alt", "H3K4me1:alt"):
        assert float(row[header.index(column)]) == pytest.approx(expected[column], abs=1e-5)
    assert float(row[header.index("H3K27ac:effect")]) == pytest.approx(
        expected["H3K27ac:effect"], rel=1e-3)


OBSERVED_CELLS = ["a", "b", "c"]  # the training cell types of the observed-base model


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    """A random seqcell with average 'observed' trained (by its record) on a, b, c; the store
    adds d, which has ATAC only."""
    folder = tmp_path_factory.mktemp("observed")
    rng = np.random.default_rng(4)
    bases = "".join(rng.choice(list("ACGT"), LENGTH))
    fasta = folder / "g.fa"
    fasta.write_text(">c\n" + "\n".join(bases[i: i + 60] for i in range(0, LENGTH, 60)) + "\n")
    tracks = [Track(cell_type=c, assay=a) for c in OBSERVED_CELLS for a in ("ATAC", *MARKS)]
    tracks.append(Track(cell_type="d", assay="ATAC"))
    writer = create_store(folder / "s.zarr", tracks=tracks, contigs={"c": LENGTH}, bin_size=25)
    for i in range(len(tracks)):
        writer.write(i, "c", np.abs(rng.normal(size=LENGTH // 25)).astype(np.float32))
    store = Store.open(folder / "s.zarr")
    genome = open_genome(fasta)
    config = SeqcellConfig(**{**CONFIG.__dict__, "average": "observed", "panel": {
        "contigs": ["c"] * 5, "bins": [10, 50, 90, 130, 170], "mean": [0.1] * 5,
        "assay": "ATAC", "marks": MARKS, "cells": OBSERVED_CELLS,
        "genome": genome_record(genome)}})
    genome.close()
    torch.manual_seed(0)
    imputer = SeqcellImputer(store_layout(store), Seqcell(config, len(MARKS)))
    model = save_model(folder / "model", imputer)
    return folder, store, model, bases


def _loaded(model, store, *, zero_difference):
    from epimpute.model_dir import load_model
    from epimpute.seqcell_inputs import prepare_imputation

    imputer = load_model(model)
    if zero_difference:
        last = imputer.network.difference_head[-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
    return imputer, prepare_imputation(imputer, store, None)


def _mean_of(store, keys):
    """Mean of the tracks over 125 bp model bins, repeated over their 5 store bins."""
    values = store.read("c", tracks=[store.track_index(k) for k in keys]).mean(axis=0)
    return np.repeat(values.reshape(-1, 5).mean(axis=1), 5)


def test_observed_base_is_the_other_training_cell_types_mean(observed, tmp_path):
    from epimpute.imputation import impute, resolve_targets

    folder, store, model, _ = observed
    imputer, genome = _loaded(model, store, zero_difference=True)
    targets = resolve_targets(imputer, store, targets=["d:H3K27ac", "a:H3K4me1", "b:H3K27ac"])
    paths = impute(imputer, store, targets, tmp_path / "zero", output_format="npz")
    genome.close()
    got = {p.name: np.load(p)["c"] for p in paths}
    # d is no training cell type: all three; a and b are: their own track is left out
    np.testing.assert_allclose(got["d.H3K27ac.npz"], _mean_of(
        store, ["a:H3K27ac", "b:H3K27ac", "c:H3K27ac"]), atol=1e-5)
    np.testing.assert_allclose(got["a.H3K4me1.npz"], _mean_of(
        store, ["b:H3K4me1", "c:H3K4me1"]), atol=1e-5)
    np.testing.assert_allclose(got["b.H3K27ac.npz"], _mean_of(
        store, ["a:H3K27ac", "c:H3K27ac"]), atol=1e-5)
    # with its difference head the model departs from the mean, by d's ATAC
    imputer, genome = _loaded(model, store, zero_difference=False)
    paths = impute(imputer, store, resolve_targets(imputer, store, targets=["d:H3K27ac"]),
                   tmp_path / "full", output_format="npz")
    genome.close()
    assert np.abs(np.load(paths[0])["c"] - got["d.H3K27ac.npz"]).max() > 1e-3


def test_observed_imputation_never_reads_the_targets_own_marks(observed, tmp_path):
    from epimpute.imputation import impute, resolve_targets

    folder, store, model, _ = observed
    rng = np.random.default_rng(5)
    writer = create_store(tmp_path / "other.zarr", tracks=store.tracks, contigs=store.contigs,
                          bin_size=25)
    for i, track in enumerate(store.tracks):  # a's marks replaced, everything else kept
        values = store.read("c", tracks=[i])[0]
        if track.key in ("a:H3K27ac", "a:H3K4me1"):
            values = np.abs(rng.normal(size=values.shape)).astype(np.float32) * 3
        writer.write(i, "c", values)
    got = []
    for name, source in (("same", store), ("other", Store.open(tmp_path / "other.zarr"))):
        imputer, genome = _loaded(model, source, zero_difference=False)
        paths = impute(imputer, source, resolve_targets(imputer, source,
                                                        targets=["a:H3K27ac", "b:H3K27ac"]),
                       tmp_path / name, output_format="npz")
        genome.close()
        got.append([np.load(p)["c"] for p in paths])
    np.testing.assert_allclose(got[0][0], got[1][0], atol=1e-6)  # a's own tracks unread
    assert np.abs(got[0][1] - got[1][1]).max() > 1e-3  # b's base and embedding read them


def test_observed_base_needs_the_training_tracks_of_each_mark(observed, tmp_path, capsys):
    folder, store, model, _ = observed
    keep = ["d:ATAC", "a:ATAC", "a:H3K27ac", "a:H3K4me1", "b:H3K4me1"]
    rows = [store.track_index(k) for k in keep]
    writer = create_store(tmp_path / "few.zarr", tracks=[store.tracks[r] for r in rows],
                          contigs=store.contigs, bin_size=25)
    for i, r in enumerate(rows):
        writer.write(i, "c", store.read("c", tracks=[r])[0])
    # d's H3K27ac: a's track is there; a's: b's and c's are not (a's own is never used)
    assert main(["-q", "impute", str(model), str(tmp_path / "few.zarr"), "--target",
                 "d:H3K27ac", "--out", str(tmp_path / "ok"), "--format", "npz"]) == 0
    assert main(["-q", "impute", str(model), str(tmp_path / "few.zarr"), "--target",
                 "a:H3K27ac", "--out", str(tmp_path / "o"), "--format", "npz"]) == 2
    err = capsys.readouterr().err
    assert "mean H3K27ac of the training cell types" in err
    assert "b:H3K27ac, c:H3K27ac" in err and "give a store with them" in err
    assert not (tmp_path / "o").exists()


def test_observed_variant_effects_use_the_observed_mean(observed):
    from epimpute.imputation import impute, resolve_targets

    folder, store, model, bases = observed
    variant = _variant(bases, 30_061)
    k = (variant.pos - 1) // 125
    imputer, genome = _loaded(model, store, zero_difference=True)
    row = score_variants(imputer, genome, store, [variant], "a")[0]
    for mark in MARKS:  # the base alone: b's and c's mean at the variant's bin, no effect
        expected = _mean_of(store, [f"b:{mark}", f"c:{mark}"])[k * 5]
        assert row[f"{mark}:ref"] == pytest.approx(expected, abs=1e-5)
        assert row[f"{mark}:effect"] == 0
    genome.close()
    imputer, genome = _loaded(model, store, zero_difference=False)
    rows = {m: score_variants(imputer, genome, store, [variant], "a", mode=m)[0]
            for m in ("centred", "full")}
    # the REF prediction is the imputed track at the variant's bin (an independent path)
    paths = impute(imputer, store, resolve_targets(imputer, store, targets=["a:H3K27ac"]),
                   folder / "imputed", output_format="npz", overwrite=True)
    genome.close()
    track = np.load(paths[0])["c"]
    assert rows["centred"]["H3K27ac:ref"] == pytest.approx(float(track[k * 5]), abs=1e-5)
    assert any(rows[m][f"{mark}:effect"] != 0 for m in rows for mark in MARKS)


def test_a_masked_model_never_sees_the_accessibility_at_the_variant(setting):
    """With ``variant_mask`` the accessibility within that many model bins of the variant's
    bin cannot change its scores (both alleles), and the accessibility further away can."""
    imputer, genome, store, bases = setting
    config = SeqcellConfig(**{**imputer.config.__dict__, "variant_mask": 2})
    torch.manual_seed(0)
    masked = SeqcellImputer(imputer.layout, Seqcell(config, len(MARKS)))
    masked.set_panel(0, imputer._panel[0])
    variant = _variant(bases, 30_061)
    k = (variant.pos - 1) // 125
    rows = {}
    for name, bins in (("none", []), ("inside", [k - 2, k, k + 2]), ("outside", [k + 3])):
        values = store.read("c", 0, LENGTH // 25, tracks=[0])[0].copy()
        for b in bins:
            values[b * 5: b * 5 + 5] += 7.0
        path = Path(str(store.path) + f".{name}")
        changed = create_store(path, tracks=[store.tracks[0]], contigs={"c": LENGTH},
                               bin_size=25)
        changed.write(0, "c", values)
        rows[name] = score_variants(masked, genome, Store.open(path), [variant], "a")[0]
    for mark in MARKS:
        for allele in ("ref", "alt"):
            assert rows["inside"][f"{mark}:{allele}"] == rows["none"][f"{mark}:{allele}"]
    assert any(rows["outside"][f"{m}:ref"] != rows["none"][f"{m}:ref"] for m in MARKS)

"""Variant scoring modes on a randomly initialised seqcell: the centred bin and the mean over
window placements, each against one long window computed independently."""

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

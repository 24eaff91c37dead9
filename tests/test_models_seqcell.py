"""seqcell: architecture, training on a small synth-sequence store, a held-out cell type."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from epimpute import api
from epimpute.cli import main
from epimpute.errors import InputError
from epimpute.model_dir import load_model
from epimpute.models.seqcell import Seqcell, SeqcellConfig, model_bin, reach, receptive_field
from epimpute.store import Store, create_store

SEQUENCE = next((p / "shared" / "data" / "sequence" for p in Path(__file__).resolve().parents[1:4]
                 if (p / "shared" / "data" / "sequence").is_dir()),
                Path(__file__).resolve().parents[2] / "shared" / "data" / "sequence")
HG19 = SEQUENCE / "hg19.chr22_1-22000000.fa.gz"
START, END = 17_000_000, 17_600_000
SMALL = {"model": {"stem_channels": 16, "channels": 32, "dilations": [1, 2, 4, 8, 16, 32],
                   "cell_dilations": [1, 2, 4], "context": 88, "global_sites": 48},
         "training": {"batch_size": 8, "crop": 64, "steps_per_epoch": 25, "max_epochs": 5,
                      "block_bins": 4000, "validation_windows": 16}}


def test_receptive_field_by_hand():
    # stem 15; per pool p=5 at jump j: +(p-1)j, then the kernel-5 convolution +4(j*5):
    # 15 +4 +20 | +20 +100 | +100 +500 = 759 bp; dilations 1..64 at 125 bp: 2*127*125
    config = SeqcellConfig()
    assert model_bin(config) == 125
    assert receptive_field(config) == 759 + 2 * 127 * 125
    assert receptive_field(config) >= 20_000


def test_shapes_and_reach_of_the_trunk():
    config = SeqcellConfig(stem_channels=8, channels=8, dilations=(1, 2, 4), global_sites=5,
                           dropout=0.0)
    torch.manual_seed(0)
    network = Seqcell(config, n_marks=3).eval()
    n = 40
    sequence = torch.zeros(2, 4, n * 125)
    sequence[:, torch.randint(4, (n * 125,)), torch.arange(n * 125)] = 1.0
    sequence.requires_grad_(True)
    average, difference = network(sequence, torch.rand(2, n), torch.rand(2, 5))
    assert average.shape == difference.shape == (2, 3, n)
    average[0, :, n // 2].sum().backward()
    reached = torch.nonzero(sequence.grad[0].abs().sum(dim=0)).flatten()
    span = int(reached.max() - reached.min()) + 1
    # nothing outside the receptive field of the bin; max-pools pass gradient to one base
    # of five, so the reached span is a little short of it
    assert span <= receptive_field(config) + 125
    assert span >= 0.8 * receptive_field(config)
    assert sequence.grad[1].abs().sum() == 0  # examples are independent


@pytest.mark.parametrize("average", ["sequence", "observed"])
def test_a_bins_prediction_depends_on_its_reach_only(average):
    config = SeqcellConfig(stem_channels=8, channels=8, dilations=(1, 2, 4), cell_dilations=(1, 2),
                           global_sites=5, dropout=0.0, average=average)
    # trunk: ceil(2509 / 250) + 1 = 12; difference head 1 + 2; local kernels 4 + 2
    assert reach(config) == 12 + 3 + 6
    assert reach(SeqcellConfig()) == 132 + 15 + 6 <= SeqcellConfig().context
    torch.manual_seed(1)
    network = Seqcell(config, n_marks=2).eval()
    n, r = 100, reach(config)
    sequence = torch.zeros(1, 4, n * 125)
    sequence[0, torch.randint(4, (n * 125,)), torch.arange(n * 125)] = 1.0
    accessibility, panel = torch.rand(1, n), torch.rand(1, 5)
    observed = torch.rand(1, 2, n) if average == "observed" else None

    def predict(lo, hi):  # model bins lo .. hi
        part = None if observed is None else observed[:, :, lo: hi]
        return network.predict(sequence[:, :, lo * 125: hi * 125], accessibility[:, lo: hi],
                               panel, part)
    with torch.no_grad():
        full = predict(0, n)
        k = 50  # the same bin with exactly its reach on each side
        part = predict(k - r, k + r + 1)
        shorter = predict(k - 2, k + r + 1)
    torch.testing.assert_close(part[0, :, r], full[0, :, k], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(shorter[0, :, 2], full[0, :, k], atol=1e-5)  # a bound that bites


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    if not HG19.is_file():
        pytest.skip(f"{HG19} not found (../shared/data absent)")
    folder = tmp_path_factory.mktemp("seqcell")
    store = api.synth_sequence(HG19, folder / "s.zarr", cell_types=4, seed=0,
                               start=START, end=END)
    config = folder / "config.json"
    config.write_text(json.dumps(SMALL))
    return folder, store, config


@pytest.fixture(scope="module")
def trained(synth):
    folder, store, config = synth
    model = api.train(store, folder / "model", model="seqcell", config=config,
                      exclude=["cell3:*"], seed=0, device="cpu", genome=HG19)
    return folder, store, model, config


@pytest.mark.slow
def test_held_out_cell_type_beats_the_cross_cell_type_average(trained):
    folder, store, model, _ = trained
    paths = api.impute(model, store, folder / "imputed", targets=["cell3:H3K27ac"],
                       format="npz", device="cpu")
    lo, hi = START // 25, END // 25
    predicted = np.load(paths[0])["22"][lo:hi]
    truth = store.read("22", lo, hi, tracks=[store.track_index("cell3:H3K27ac")])[0]
    others = [store.track_index(f"cell{i}:H3K27ac") for i in (1, 2, 4)]
    average = store.read("22", lo, hi, tracks=others).mean(axis=0)
    def mse(x):
        return float(((x - truth) ** 2).mean())
    def pearson(x):
        return float(np.corrcoef(x, truth)[0, 1])
    assert mse(predicted) < mse(average)
    assert pearson(predicted) > pearson(average)


@pytest.mark.slow
def test_model_records_the_genome_and_imputes_from_accessibility_only(trained, tmp_path):
    _, store, model, _ = trained
    imputer = load_model(model)
    record = imputer.config.panel["genome"]
    assert record["path"] == str(HG19.resolve()) and len(record["contig_sha256"]) == 64
    assert imputer.config.panel["marks"] == ["H3K27ac", "H3K27me3", "H3K36me3", "H3K4me1",
                                             "H3K4me3"]
    # a store holding only the new cell type's ATAC (renamed "newcell") gives the same
    # prediction as the full store: no mark of the cell type is read
    lo, hi = START // 25, END // 25
    row = store.track_index("cell3:ATAC")
    atac = replace(store.tracks[row], cell_type="newcell")
    writer = create_store(tmp_path / "new.zarr", tracks=[atac], contigs=store.contigs,
                          bin_size=25)
    writer.write(0, "22", store.read("22", lo, hi, tracks=[row])[0], start=lo)
    new = Store.open(tmp_path / "new.zarr")
    code = main(["-q", "impute", str(model), str(new.path), "--target", "newcell:H3K27ac",
                 "--out", str(tmp_path / "out"), "--format", "npz"])
    assert code == 0
    alone = np.load(tmp_path / "out" / "newcell.H3K27ac.npz")["22"]
    full = api.impute(model, store, tmp_path / "full", targets=["cell3:H3K27ac"],
                      format="npz", device="cpu")
    np.testing.assert_allclose(alone, np.load(full[0])["22"], atol=1e-5)


def test_train_errors_exit_2_with_a_message(synth, tmp_path, capsys):
    _, store, config = synth
    assert main(["-q", "train", str(store.path), "--model", "seqcell", "--out",
                 str(tmp_path / "m"), "--config", str(config)]) == 2
    assert "--genome" in capsys.readouterr().err
    with pytest.raises(InputError, match="--genome"):
        api.train(store, tmp_path / "m", model="seqcell", config=config)
    wrong = tmp_path / "wrong.fa"
    wrong.write_text(">chr22\n" + "ACGT" * 100 + "\n")
    assert main(["-q", "train", str(store.path), "--model", "seqcell", "--out",
                 str(tmp_path / "m"), "--config", str(config), "--genome", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert "no contig '22'" in err and "chr22" in err
    short = tmp_path / "short.fa"
    short.write_text(">22\n" + "ACGT" * 100 + "\n")
    assert main(["-q", "train", str(store.path), "--model", "seqcell", "--out",
                 str(tmp_path / "m"), "--config", str(config), "--genome", str(short)]) == 2
    assert "has 400 bases, but the store has 22,000,000" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    for section, key, value, message in (
            ("training", "reverse_complement", 1.5, "reverse_complement must be a share"),
            ("training", "peak_rate", -0.1, "peak_rate must be a share"),
            ("training", "keep", "first", "keep must be one of best, last"),
            ("model", "stem_activation", "tanh", "stem_activation must be one of")):
        bad = tmp_path / f"{key}.json"
        values = json.loads(config.read_text())
        values[section] = {**values[section], key: value}
        bad.write_text(json.dumps(values))
        assert main(["-q", "train", str(store.path), "--model", "seqcell", "--out",
                     str(tmp_path / "m"), "--config", str(bad), "--genome", str(HG19)]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_impute_errors_exit_2_with_a_message(trained, tmp_path, capsys):
    _, store, model, _ = trained
    wrong = tmp_path / "wrong.fa"
    wrong.write_text(">chr22\n" + "ACGT" * 100 + "\n")
    assert main(["-q", "impute", str(model), str(store.path), "--target", "cell3:H3K27ac",
                 "--out", str(tmp_path / "o"), "--genome", str(wrong)]) == 2
    assert "no contig '22'" in capsys.readouterr().err
    # a cell type without an accessibility track in the store (it holds another's mark)
    row = store.track_index("cell1:H3K27ac")
    writer = create_store(tmp_path / "marks.zarr", tracks=[store.tracks[row]],
                          contigs=store.contigs, bin_size=25)
    writer.write(0, "22", store.read("22", 0, 10, tracks=[row])[0])
    assert main(["-q", "impute", str(model), str(tmp_path / "marks.zarr"), "--target",
                 "cell3:H3K27ac", "--out", str(tmp_path / "o2")]) == 2
    assert "cell3" in (err := capsys.readouterr().err) and "no ATAC track" in err
    assert not (tmp_path / "o2").exists()
    # Dask workers would rebuild the model without its genome: refused before any work
    assert main(["-q", "impute", str(model), str(store.path), "--target", "cell3:H3K27ac",
                 "--out", str(tmp_path / "o3"), "--workers", "2"]) == 2
    assert "imputes in one process" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()


@pytest.mark.slow
def test_variants_score_ref_and_alt_and_report_ref_mismatches(trained, tmp_path):
    folder, store, model, _ = trained
    truth = (store.path / "truth" / "variants.tsv").read_text().splitlines()
    header, rows = truth[0].split("\t"), [line.split("\t") for line in truth[1:4]]
    chrom, pos, ref, alt = (header.index(c) for c in ("CHROM", "POS", "REF", "ALT"))
    wrong = next(b for b in "ACGT" if b != rows[0][ref])  # not the genome's base
    vcf = tmp_path / "v.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\n" + "".join(
        f"{r[chrom]}\t{r[pos]}\tv{i}\t{r[ref]}\t{r[alt]}\n" for i, r in enumerate(rows))
        + f"{rows[0][chrom]}\t{rows[0][pos]}\tbad\t{wrong}\t{rows[0][alt]}\n")
    out = tmp_path / "effects.tsv"
    assert main(["-q", "variants", str(model), str(store.path), "--vcf", str(vcf),
                 "--cell-type", "cell3", "--out", str(out)]) == 0
    table = [line.split("\t") for line in out.read_text().splitlines()]
    columns = table[0]
    assert columns[:6] == ["CHROM", "POS", "ID", "REF", "ALT", "status"]
    scored = [dict(zip(columns, r)) for r in table[1:]]
    assert [r["status"] for r in scored[:3]] == ["ok"] * 3
    assert scored[3]["status"] == f"REF mismatch: the genome has {rows[0][ref]}"
    assert scored[3]["H3K27ac:effect"] == ""
    # the REF prediction is the imputed track at the variant's bin (an independent path)
    imputed = np.load(api.impute(model, store, tmp_path / "imp", targets=["cell3:H3K27ac"],
                                 format="npz", device="cpu")[0])["22"]
    for r in scored[:3]:
        assert float(r["H3K27ac:ref"]) == pytest.approx(
            float(imputed[(int(r["POS"]) - 1) // 25]), abs=1e-3)
        effect = float(r["H3K27ac:alt"]) - float(r["H3K27ac:ref"])
        assert float(r["H3K27ac:effect"]) == pytest.approx(effect, abs=1e-3)
    assert any(float(r[f"{m}:effect"]) != 0 for r in scored[:3]
               for m in ("H3K27ac", "H3K4me1"))
    bad = tmp_path / "bad.vcf"
    bad.write_text(f"22\t{rows[0][pos]}\tx\tAC\tA\n")
    assert main(["-q", "variants", str(model), str(store.path), "--vcf", str(bad),
                 "--cell-type", "cell3", "--out", str(tmp_path / "b.tsv")]) == 2
    assert not (tmp_path / "b.tsv").exists()


@pytest.mark.parametrize("average", ["sequence", "observed"])
def test_a_bins_prediction_is_the_same_at_every_offset_of_the_window(average):
    """Translation equivariance: windows shifted by whole model bins predict the same values
    for the bins they share, except within the network's reach of a window's edge (where
    the zero padding of the convolutions enters); a shift by part of a model bin changes the
    pools' phase and so the prediction."""
    config = SeqcellConfig(stem_channels=8, channels=8, dilations=(1, 2, 4), cell_dilations=(1, 2),
                           global_sites=5, dropout=0.0, average=average)
    torch.manual_seed(2)
    network = Seqcell(config, n_marks=2).eval()
    n, r, length = 160, reach(config), 80
    sequence = torch.zeros(1, 4, n * 125)
    sequence[0, torch.randint(4, (n * 125,)), torch.arange(n * 125)] = 1.0
    accessibility, panel = torch.rand(1, n), torch.rand(1, 5)
    observed = torch.rand(1, 2, n) if average == "observed" else None

    def predict(first, *, bp=0):  # window of `length` model bins from bin `first`
        lo = first * 125 + bp
        part = None if observed is None else observed[:, :, first: first + length]
        with torch.no_grad():
            total = network.predict(sequence[:, :, lo: lo + length * 125],
                                    accessibility[:, first: first + length], panel, part)
        trunk = network.trunk(sequence[:, :, lo: lo + length * 125])
        return total[0], trunk[0]

    reference, reference_trunk = predict(40)
    for first in (20, 33, 47, 60):
        shifted, shifted_trunk = predict(first)
        # genomic bins at least the reach from the edges of both windows
        lo, hi = max(first, 40) + r, min(first, 40) + length - r
        assert hi - lo >= 10
        for mine, theirs in ((shifted, reference), (shifted_trunk, reference_trunk)):
            torch.testing.assert_close(mine[:, lo - first: hi - first], theirs[:, lo - 40: hi - 40],
                                       atol=1e-5, rtol=1e-5)
    # the window's first bin (genomic bin 60, inside the reference's interior) differs
    edge, _ = predict(60)
    assert not torch.allclose(edge[:, 0], reference[:, 20], atol=1e-4)
    # a one-base shift: another pooling phase, other values in the interior
    phase, _ = predict(40, bp=1)
    assert not torch.allclose(phase[:, r: length - r], reference[:, r: length - r], atol=1e-4)


def _small_store(folder, cells_of_mark):
    """A 60 kb random genome and store: ATAC of a, b, c and each mark's tracks in the cell
    types ``cells_of_mark`` lists."""
    from epimpute.store import Track

    rng = np.random.default_rng(6)
    length = 60_000
    bases = "".join(rng.choice(list("ACGT"), length))
    fasta = folder / "g.fa"
    fasta.write_text(">c\n" + "\n".join(bases[i: i + 60] for i in range(0, length, 60)) + "\n")
    tracks = [Track(cell_type=c, assay="ATAC") for c in "abc"]
    tracks += [Track(cell_type=c, assay=m) for m, cells in cells_of_mark.items() for c in cells]
    writer = create_store(folder / "s.zarr", tracks=tracks, contigs={"c": length}, bin_size=25)
    for i in range(len(tracks)):
        writer.write(i, "c", np.abs(rng.normal(size=length // 25)).astype(np.float32))
    return Store.open(folder / "s.zarr"), fasta


TINY = {"stem_channels": 8, "channels": 8, "dilations": [1, 2, 4], "cell_dilations": [1, 2],
        "global_sites": 5, "dropout": 0.0, "context": 21}


def test_observed_training_windows_carry_the_leave_one_out_mean(tmp_path):
    from epimpute.io.genome import open_genome
    from epimpute.training.seqcell import _batch, _load_block, _loss

    store, fasta = _small_store(tmp_path, {"M1": "abc", "M2": "ab"})
    config = SeqcellConfig(**{**TINY, "dilations": (1, 2, 4), "cell_dilations": (1, 2),
                              "average": "observed"})
    cells, marks, c = ["a", "b", "c"], ["M1", "M2"], config.context
    with open_genome(fasta) as genome:
        block = _load_block(store, genome, ("c", 500, 700), cells, "ATAC", marks, config, 5)

    def coarse(key):  # model bins 100 - C .. 140 + C of a track
        values = store.read("c", (100 - c) * 5, (140 + c) * 5, tracks=[store.track_index(key)])
        return values[0].reshape(-1, 5).mean(axis=1)
    expected = {  # by hand: the mean of the OTHER cell types observing the mark
        ("a", "M1"): (coarse("b:M1") + coarse("c:M1")) / 2, ("a", "M2"): coarse("b:M2"),
        ("b", "M2"): coarse("a:M2"), ("c", "M1"): (coarse("a:M1") + coarse("b:M1")) / 2,
        ("c", "M2"): (coarse("a:M2") + coarse("b:M2")) / 2}  # c lacks M2: both others
    for (cell, mark), values in expected.items():
        np.testing.assert_allclose(block.compendium[cells.index(cell), marks.index(mark)],
                                   values, atol=1e-6)
    crop, picks = 16, [(0, 3, 0), (0, 30, 2)]  # the second window runs past the block's end
    batch = _batch([block], picks, torch.zeros(3, 5), c, crop, 125, torch.device("cpu"))
    window = batch[6]
    assert window.shape == (2, 2, crop + 2 * c)
    np.testing.assert_allclose(window[0, 0], expected[("a", "M1")][3: 3 + crop + 2 * c],
                               atol=1e-6)
    np.testing.assert_allclose(window[1, 1, : 10 + 2 * c], expected[("c", "M2")][30:], atol=1e-6)
    assert not window[1, :, 10 + 2 * c:].any()  # padding past the block
    # with the difference zeroed the second term of the loss is (observed mean - track)^2
    torch.manual_seed(0)
    network = Seqcell(config, 2).eval()
    torch.nn.init.zeros_(network.difference_head[-1].weight)
    torch.nn.init.zeros_(network.difference_head[-1].bias)
    with torch.no_grad():
        head, _ = network(*batch[:3], window)
        loss = float(_loss(network, batch, c))
    sequence, _, _, truth, observed, average = batch[:6]
    keep = observed.numpy()
    base = window[:, :, c: c + crop].numpy()
    head = head[:, :, c: c + crop].numpy()
    seen = np.broadcast_to(keep.any(axis=1, keepdims=True), keep.shape)
    by_hand = (((head - average.numpy()) ** 2)[seen].mean()
               + ((base - truth.numpy()) ** 2)[keep].mean())
    assert loss == pytest.approx(by_hand, rel=1e-5)
    assert keep[1, 1].sum() == 0 and keep[0, 1].sum() == crop  # c's M2 is not scored


def test_observed_training_needs_two_cell_types_per_mark(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    store, fasta = _small_store(one, {"M1": "abc", "M2": "a"})
    config = tmp_path / "observed.json"
    training = {"batch_size": 4, "crop": 16, "steps_per_epoch": 2, "max_epochs": 1,
                "block_bins": 400, "validation_windows": 4, "validation_fraction": 0.3}
    config.write_text(json.dumps({"model": {**TINY, "average": "observed"},
                                  "training": training}))
    with pytest.raises(InputError, match="at least two training cell types.*M2 has fewer"):
        api.train(store, tmp_path / "m", model="seqcell", config=config, genome=fasta)
    assert not (tmp_path / "m").exists()
    # the sequence base trains a mark of one cell type; a bad name is refused
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"model": {**TINY, "average": "mean"}, "training": training}))
    with pytest.raises(InputError, match="average must be one of sequence, observed"):
        api.train(store, tmp_path / "m", model="seqcell", config=wrong, genome=fasta)
    wrong.write_text(json.dumps({"model": {**TINY, "variant_mask": -1}, "training": training}))
    with pytest.raises(InputError, match="variant_mask must be a whole number"):
        api.train(store, tmp_path / "m", model="seqcell", config=wrong, genome=fasta)
    assert not (tmp_path / "m").exists()
    # two cell types per mark: trains, records its training cell types, loads and imputes
    two = tmp_path / "two"
    two.mkdir()
    store, fasta = _small_store(two, {"M1": "abc", "M2": "ab"})
    model = api.train(store, tmp_path / "m2", model="seqcell", config=config, genome=fasta,
                      exclude=["c:M1"], seed=0, device="cpu")
    record = json.loads((model / "config.json").read_text())["config"]
    # c, without a mark left, is no training cell type: c:M1 is imputed from a's and b's
    assert record["average"] == "observed" and record["panel"]["cells"] == ["a", "b"]
    paths = api.impute(model, store, tmp_path / "imputed", targets=["c:M1"], format="npz",
                       device="cpu")
    assert np.isfinite(np.load(paths[0])["c"]).all()
    # a model recorded without the key (older ones) has the sequence base
    from epimpute.models.seqcell import SeqcellImputer

    imputer = load_model(model)
    del record["average"]
    state = {k: v for k, v in imputer.state_dict().items() if not k.startswith("compendium.")}
    older = SeqcellImputer.from_state(imputer.layout, record, state)
    assert older.config.average == "sequence" and not hasattr(older.network, "compendium")


def test_hidden_accessibility_is_a_known_channel_and_never_its_values():
    config = SeqcellConfig(stem_channels=8, channels=8, dilations=(1, 2, 4), cell_dilations=(1, 2),
                           global_sites=5, dropout=0.0, variant_mask=2)
    torch.manual_seed(2)
    network = Seqcell(config, n_marks=2).eval()
    assert network.local[0].in_channels == 2
    n = 60
    sequence = torch.zeros(1, 4, n * 125)
    sequence[0, torch.randint(4, (n * 125,)), torch.arange(n * 125)] = 1.0
    accessibility, panel = torch.rand(1, n), torch.rand(1, 5)
    hidden = accessibility.clone()
    hidden[0, 28:33] = float("nan")
    with torch.no_grad():
        a = network.predict(sequence, hidden, panel)
        zeros = accessibility.clone()
        zeros[0, 28:33] = 0.0
        plain = network.predict(sequence, zeros, panel)
    assert torch.isfinite(a).all()
    assert not torch.allclose(a, plain)  # hidden is not the same as a measured 0


def test_training_hides_spans_of_the_mask_width_in_the_chosen_share_of_windows():
    from epimpute.training.seqcell import SeqcellTrainingConfig, hide_spans

    config = SeqcellConfig(context=10, variant_mask=2)
    every = SeqcellTrainingConfig(crop=32, mask_rate=1.0)
    accessibility = torch.zeros(6, 32 + 20)
    hide_spans(accessibility, config, every, torch.Generator().manual_seed(0))
    for row in torch.isnan(accessibility):
        assert not row[:8].any() and not row[-8:].any()  # centred in the crop: +- 2 of it
        runs = torch.diff(torch.cat([torch.tensor([0]), row.int(), torch.tensor([0])]))
        lengths = torch.nonzero(runs == -1)[:, 0] - torch.nonzero(runs == 1)[:, 0]
        # 32 // 16 = 2 spans of 5 bins (overlapping spans make one run of 6 to 10)
        assert row.sum() >= 5 and all(5 <= int(x) <= 10 for x in lengths)
    none = torch.zeros(6, 52)
    hide_spans(none, config, SeqcellTrainingConfig(crop=32, mask_rate=0.0),
               torch.Generator().manual_seed(0))
    assert not torch.isnan(none).any()


def test_other_strand_reverse_complements_the_sequence_and_reverses_the_bins():
    from epimpute.io.genome import one_hot
    from epimpute.training.seqcell import other_strand

    bases = "AACGTTTGCA" * 3  # 30 bp: 6 bins of 5 bp, 2 of them the crop
    sequence = torch.from_numpy(np.stack([one_hot(bases), one_hot(bases[::-1])]))
    accessibility = torch.arange(12, dtype=torch.float32).reshape(2, 6)
    panel = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    marks = torch.arange(8, dtype=torch.float32).reshape(2, 2, 2)
    observed = torch.tensor([[[True, False], [True, True]]] * 2)
    turned = other_strand((sequence, accessibility, panel, marks, observed, marks.clone()), 1.0,
                          torch.Generator().manual_seed(0))
    complement = str.maketrans("ACGT", "TGCA")
    for i, text in enumerate((bases, bases[::-1])):
        expected = one_hot(text.translate(complement)[::-1])
        np.testing.assert_array_equal(turned[0][i].numpy(), expected)
    np.testing.assert_array_equal(turned[1].numpy(), accessibility.numpy()[:, ::-1])
    assert torch.equal(turned[2], panel)
    np.testing.assert_array_equal(turned[3].numpy(), marks.numpy()[:, :, ::-1])
    np.testing.assert_array_equal(turned[4].numpy(), observed.numpy()[:, :, ::-1])
    kept = other_strand((sequence, accessibility, panel, marks, observed, marks), 0.0,
                        torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(kept, (sequence, accessibility, panel, marks,
                                                        observed, marks)))
    # a share of 0.5 turns some windows of a large batch and leaves the others
    many = torch.zeros(64, 4, 10)
    many[:, 0, 0] = 1.0  # an A first: reverse-complemented, a T last
    shares = other_strand((many, torch.zeros(64, 2), torch.zeros(64, 1)), 0.5,
                          torch.Generator().manual_seed(1))[0]
    flipped = shares[:, 3, -1] == 1
    assert 10 < int(flipped.sum()) < 54 and bool((shares[~flipped, 0, 0] == 1).all())


def test_stem_activations_and_their_errors():
    config = SeqcellConfig(stem_channels=8, channels=8, dilations=(1, 2), global_sites=5,
                           dropout=0.0, task="accessibility")
    sequence = torch.zeros(1, 4, 30 * 125)
    sequence[0, torch.randint(4, (30 * 125,)), torch.arange(30 * 125)] = 1.0
    outputs = {}
    for name in ("gelu", "relu", "exp"):
        torch.manual_seed(0)
        network = Seqcell(replace(config, stem_activation=name), n_marks=2).eval()
        with torch.no_grad():
            outputs[name] = network(sequence, torch.zeros(1, 30), torch.zeros(1, 0))[0]
        assert torch.isfinite(outputs[name]).all()
    assert not torch.allclose(outputs["gelu"], outputs["exp"])
    with pytest.raises(InputError, match="stem_activation must be one of gelu, relu, exp"):
        Seqcell(replace(config, stem_activation="tanh"), n_marks=2)


def test_peak_windows_hold_a_top_accessibility_bin_in_their_crop():
    from epimpute.training.seqcell import SeqcellTrainingConfig, _Block, _draw, peak_bins

    context, n = 4, 200
    accessibility = np.zeros((2, n + 2 * context), dtype=np.float32)
    accessibility[1, context + 150] = 5.0  # bins 150 (cell 2) and 3 (cell 1) are the peaks
    accessibility[0, context + 3] = 4.0
    block = _Block("22", np.zeros((4, 1), np.int8), accessibility,
                   np.zeros((2, 1, n), np.float32), np.ones((2, 1), bool),
                   np.zeros((1, n), np.float32))
    blocks, bins = peak_bins([block], by_sequence=False, share=0.01)
    assert blocks.tolist() == [0, 0] and bins.tolist() == [3, 150]  # top 1 % of 200 bins
    training = SeqcellTrainingConfig(batch_size=400, crop=16, peak_rate=1.0)
    picks = _draw([block], training, 2, torch.Generator().manual_seed(0), (blocks, bins))
    offsets = np.array([offset for _, offset, _ in picks])
    held = ((offsets <= 3) & (3 < offsets + 16)) | ((offsets <= 150) & (150 < offsets + 16))
    assert held.all() and 0 <= offsets.min() and offsets.max() <= n - 16
    assert len(set(offsets.tolist())) > 16  # placed anywhere in the crop
    uniform = _draw([block], replace(training, peak_rate=0.0), 2,
                    torch.Generator().manual_seed(0), (blocks, bins))
    offsets = np.array([offset for _, offset, _ in uniform])
    assert not (((offsets <= 3) & (3 < offsets + 16)) |
                ((offsets <= 150) & (150 < offsets + 16))).all()


@pytest.mark.slow
def test_keep_last_saves_the_last_epochs_weights(synth, tmp_path):
    _, store, config = synth
    values = json.loads(config.read_text())
    for keep in ("best", "last"):
        values["training"] = {**values["training"], "max_epochs": 3, "patience": 3,
                              "keep": keep}
        path = tmp_path / f"{keep}.json"
        path.write_text(json.dumps(values))
        folder = api.train(store, tmp_path / keep, model="seqcell", config=path,
                           exclude=["cell3:*"], seed=0, device="cpu", genome=HG19)
        history = json.loads((folder / "config.json").read_text())["provenance"]["history"]
        saved = torch.load(folder / "weights.pt", weights_only=True)
        state = torch.load(folder / "checkpoint.pt", weights_only=False)
        expected = state["model"] if keep == "last" else state["best_model"]
        assert all(torch.equal(saved[k], expected[k]) for k in saved)
        if keep == "last" and history["best_epoch"] != 3:  # they differ unless the last is best
            assert not all(torch.equal(saved[k], state["best_model"][k]) for k in saved)


def test_training_with_known_motifs_keeps_their_filters_and_reloads(synth, tmp_path):
    from epimpute.models.motif_stem import motif_filters
    from epimpute.motifs import jaspar_library

    _, store, config = synth
    values = json.loads(config.read_text())
    values["model"] = {**values["model"], "stem_motifs": ["CTCF", "MA0004.1"]}
    values["training"] = {**values["training"], "max_epochs": 1}
    path = tmp_path / "motifs.json"
    path.write_text(json.dumps(values))
    folder = api.train(store, tmp_path / "model", model="seqcell", config=path,
                       exclude=["cell3:*"], seed=0, device="cpu", genome=HG19)
    imputer = load_model(folder)
    assert imputer.config.stem_motifs == ("CTCF", "MA0004.1")
    assert imputer.config.motif_width == 15  # CTCF's 15 columns, Arnt's 6
    weights, biases = motif_filters([m.pwm for m in jaspar_library(["CTCF", "MA0004.1"])], 15)
    stem = imputer.network.trunk[0]
    np.testing.assert_array_equal(stem.motifs.weight.numpy(), weights)
    assert not np.allclose(stem.motifs.bias.detach().numpy(), biases)  # learnt
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**values, "model": {**values["model"], "stem_motifs": ["NOPE"]}}))
    with pytest.raises(InputError, match="no JASPAR motif pinned for 'NOPE'"):
        api.train(store, tmp_path / "bad", model="seqcell", config=bad, exclude=["cell3:*"],
                  seed=0, device="cpu", genome=HG19)
    assert not (tmp_path / "bad").exists()

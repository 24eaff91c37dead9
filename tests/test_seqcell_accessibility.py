"""seqcell's accessibility task: each cell type's ATAC from sequence alone (multi-task, and
single-task when trained on one cell type), on a genome with planted cell-type words."""

import json

import numpy as np
import pytest
import torch

from epimpute import api
from epimpute.errors import InputError
from epimpute.model_dir import load_model
from epimpute.models.seqcell import Seqcell, SeqcellConfig, reach, receptive_field
from epimpute.store import Track, create_store

LENGTH = 250_000
WORDS = {"a": "TTGACGTCAAGG", "b": "CCATAAATAGGC"}  # opened in cell type a / b only
SMALL = {"model": {"task": "accessibility", "stem_channels": 8, "channels": 16,
                   "dilations": [1, 2, 4], "context": 12, "dropout": 0.0},
         "training": {"batch_size": 8, "crop": 64, "steps_per_epoch": 40, "max_epochs": 8,
                      "patience": 8, "block_bins": 2000, "validation_windows": 16,
                      "learning_rate": 3e-3}}


def test_network_of_the_task_has_no_accessibility_inputs():
    config = SeqcellConfig(stem_channels=8, channels=8, dilations=(1, 2, 4), global_sites=5,
                           dropout=0.0, task="accessibility")
    network = Seqcell(config, n_marks=3).eval()
    names = {name.split(".")[0] for name, _ in network.named_parameters()}
    assert names == {"trunk", "average_head"}
    assert reach(config) == -(-receptive_field(config) // 250) + 1 == 12
    sequence = torch.zeros(2, 4, 40 * 125)
    sequence[:, 0] = 1.0
    with torch.no_grad():
        out, difference = network(sequence, torch.rand(2, 40), torch.rand(2, 5))
        again, _ = network(sequence, torch.rand(2, 40), torch.zeros(2, 5))
    assert out.shape == (2, 3, 40) and not difference.any()
    torch.testing.assert_close(out, again)  # accessibility and panel are not read


def test_the_task_needs_an_accessibility_track_and_a_known_task(planted, tmp_path):
    folder, fasta, config, _ = planted
    with pytest.raises(InputError, match="ATAC would have no training track"):
        api.train(folder / "s.zarr", tmp_path / "m", model="seqcell", config=config,
                  exclude=["*:ATAC"], device="cpu", genome=fasta)
    wrong = tmp_path / "c.json"
    wrong.write_text(json.dumps({"model": {**SMALL["model"], "task": "peaks"}}))
    with pytest.raises(InputError, match="task must be one of marks, accessibility"):
        api.train(folder / "s.zarr", tmp_path / "m", model="seqcell", config=wrong,
                  device="cpu", genome=fasta)
    assert not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("access")
    rng = np.random.default_rng(0)
    bases = rng.choice(list("ACGT"), LENGTH)
    truth = {c: np.zeros(LENGTH // 25, dtype=np.float32) for c in WORDS}
    bins = np.arange(LENGTH // 25)
    for position in range(1_000, LENGTH - 1_000, 800):
        cell = "ab"[int(rng.integers(2))]
        bases[position: position + 12] = list(WORDS[cell])
        truth[cell] += 3.0 * np.exp(-0.5 * ((bins - (position + 6) // 25) / 4.0) ** 2)
    fasta = folder / "g.fa"
    text = "".join(bases)
    fasta.write_text(">c\n" + "\n".join(text[i: i + 80] for i in range(0, LENGTH, 80)) + "\n")
    tracks = [Track(cell_type=c, assay=a) for c in WORDS for a in ("ATAC", "H3K27ac")]
    writer = create_store(folder / "s.zarr", tracks=tracks, contigs={"c": LENGTH}, bin_size=25)
    for i, track in enumerate(tracks):
        values = truth[track.cell_type] if track.assay == "ATAC" else rng.random(LENGTH // 25)
        writer.write(i, "c", np.arcsinh(values).astype(np.float32))
    config = folder / "config.json"
    config.write_text(json.dumps(SMALL))
    return folder, fasta, config, {c: np.arcsinh(v) for c, v in truth.items()}


@pytest.mark.slow
def test_multi_and_single_task_learn_each_cell_types_words(planted):
    folder, fasta, config, truth = planted
    multi = api.train(folder / "s.zarr", folder / "multi", model="seqcell", config=config,
                      seed=0, device="cpu", genome=fasta)
    imputer = load_model(multi)
    assert imputer.config.panel["outputs"] == ["a", "b"]
    assert imputer.config.panel["marks"] == []
    paths = api.impute(multi, folder / "s.zarr", folder / "imputed",
                       targets=["a:ATAC", "b:ATAC"], format="npz", device="cpu")
    predicted = {p.name.split(".")[0]: np.load(p)["c"] for p in paths}
    r = {(x, y): float(np.corrcoef(predicted[x], truth[y])[0, 1]) for x in "ab" for y in "ab"}
    # each output follows its own cell type's words, not the other's
    assert r[("a", "a")] > 0.5 and r[("b", "b")] > 0.5
    assert r[("a", "b")] < r[("a", "a")] - 0.3 and r[("b", "a")] < r[("b", "b")] - 0.3
    single = api.train(folder / "s.zarr", folder / "single", model="seqcell", config=config,
                       exclude=["b:*"], seed=0, device="cpu", genome=fasta)
    assert load_model(single).config.panel["outputs"] == ["a"]
    alone = np.load(api.impute(single, folder / "s.zarr", folder / "alone", targets=["a:ATAC"],
                               format="npz", device="cpu")[0])["c"]
    # (one output learns more slowly than two in the same steps: a weaker bound)
    assert np.corrcoef(alone, truth["a"])[0, 1] > np.corrcoef(alone, truth["b"])[0, 1] + 0.2
    with pytest.raises(InputError, match="not of 'b'"):
        api.impute(single, folder / "s.zarr", folder / "x", targets=["b:ATAC"], format="npz",
                   device="cpu")
    with pytest.raises(InputError, match="accessibility only"):
        api.impute(single, folder / "s.zarr", folder / "y", targets=["a:H3K27ac"],
                   format="npz", device="cpu")
    assert not (folder / "x").exists() and not (folder / "y").exists()
    # a variant that breaks one of a's words lowers a's predicted ATAC
    text = fasta.read_text().split("\n", 1)[1].replace("\n", "")
    position = text.index(WORDS["a"]) + 5  # 0-based: the word's sixth base, a C
    vcf = folder / "v.vcf"
    vcf.write_text(f"c\t{position + 1}\tw\t{text[position]}\tA\n")
    out = api.variants(multi, folder / "s.zarr", folder / "effects.tsv", vcf=vcf,
                       cell_type="a")
    header, row = (line.split("\t") for line in out.read_text().splitlines())
    assert header[6:] == ["ATAC:ref", "ATAC:alt", "ATAC:effect"]
    assert float(row[header.index("ATAC:effect")]) < 0

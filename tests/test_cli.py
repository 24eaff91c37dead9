"""The command line end to end on generated bigWig files."""

import json

import numpy as np
import pandas as pd
import pyBigWig
import pytest

from epimpute.cli import main
from epimpute.io.bigwig import BigWigWriter
from epimpute.store import Store
from epimpute.synthetic import SyntheticSpec, generate

SPEC = SyntheticSpec(n_cell_types=3, contigs={"chr1": 120_000, "chr2": 80_000},
                     assays=("H3K4me3", "H3K27ac", "H3K36me3"), missing_fraction=0.0, seed=5)
TINY = {"model": {"d_model": 16, "n_heads": 2, "feedforward": 32, "decoder_hidden": [32],
                  "windows": [1, 3, 9]},
        "training": {"batch_size": 256, "epoch_bins": 1024, "max_epochs": 2,
                     "block_bins": 1000}}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Bigwigs of a 9-track compendium, a sample sheet, an ingested store, a tiny config."""
    folder = tmp_path_factory.mktemp("cli")
    compendium = generate(SPEC)
    rows = []
    for (cell, assay), per_contig in compendium.signal.items():
        path = folder / f"{cell}_{assay}.bw"
        with BigWigWriter(path, SPEC.contigs, bin_size=25) as writer:
            for contig, values in per_contig.items():
                writer.write(contig, 0, values)
        rows.append({"cell_type": cell, "assay": assay, "path": path.name})
    pd.DataFrame(rows).to_csv(folder / "samples.tsv", sep="\t", index=False)
    (folder / "tiny.json").write_text(json.dumps(TINY))
    assert main(["-q", "ingest", str(folder / "samples.tsv"), "--out",
                 str(folder / "c.zarr")]) == 0
    return folder, compendium


def test_ingested_store_holds_arcsinh_of_the_bigwig_bins(workspace):
    folder, compendium = workspace
    store = Store.open(folder / "c.zarr")
    row = store.track_index("cell2:H3K27ac")
    np.testing.assert_allclose(store.read("chr2", tracks=[row])[0],
                               np.arcsinh(compendium.signal[("cell2", "H3K27ac")]["chr2"]),
                               rtol=1e-5, atol=1e-6)


def test_train_and_impute_edice_to_bigwig_and_npz(workspace, capsys):
    folder, _ = workspace
    model = folder / "edice"
    assert main(["-q", "train", str(folder / "c.zarr"), "--model", "edice", "--out",
                 str(model), "--config", str(folder / "tiny.json"), "--exclude",
                 "cell1:H3K4me3", "--seed", "1", "--device", "cpu"]) == 0
    record = json.loads((model / "config.json").read_text())
    assert record["layout"]["excluded"] == ["cell1:H3K4me3"]
    assert "cell1:H3K4me3" not in [f"{record['layout']['biosamples'][b]}:"
                                   f"{record['layout']['assays'][a]}"
                                   for b, a in record["layout"]["tracks"]]
    args = ["-q", "impute", str(model), str(folder / "c.zarr"), "--target", "cell1:H3K4me3",
            "--target", "cell2:H3K36me3", "--device", "cpu"]
    assert main(args + ["--out", str(folder / "bw")]) == 0
    assert main(args + ["--out", str(folder / "npz"), "--format", "npz"]) == 0
    for name in ("cell1.H3K4me3", "cell2.H3K36me3"):
        arrays = np.load(folder / "npz" / f"{name}.npz")
        assert sorted(arrays.files) == ["chr1", "chr2"]
        assert arrays["chr1"].shape == (120_000 // 25,)
        bw = pyBigWig.open(str(folder / "bw" / f"{name}.bw"))
        assert bw.chroms() == SPEC.contigs
        # bigWig values are on the -log10 p scale: sinh of the arcsinh-scale npz values
        values = np.array(bw.values("chr2", 0, 80_000))[::25]
        np.testing.assert_allclose(values, np.sinh(np.maximum(arrays["chr2"], 0)), rtol=1e-5,
                                   atol=1e-6)


def test_average_model_leave_one_out_matches_hand_mean(workspace):
    folder, _ = workspace
    assert main(["-q", "train", str(folder / "c.zarr"), "--model", "average", "--out",
                 str(folder / "avg")]) == 0
    assert main(["-q", "impute", str(folder / "avg"), str(folder / "c.zarr"), "--target",
                 "cell3:H3K27ac", "--format", "npz", "--out", str(folder / "avg_out")]) == 0
    store = Store.open(folder / "c.zarr")
    rows = [store.track_index(k) for k in ("cell1:H3K27ac", "cell2:H3K27ac")]
    expected = store.read("chr1", tracks=rows).mean(0)
    got = np.load(folder / "avg_out" / "cell3.H3K27ac.npz")["chr1"]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_user_errors_exit_2_with_a_message(workspace, capsys):
    folder, _ = workspace
    bad = folder / "bad.json"
    bad.write_text(json.dumps({"model": {"d_modle": 8}}))
    assert main(["-q", "train", str(folder / "c.zarr"), "--out", str(folder / "x"),
                 "--config", str(bad)]) == 2
    assert "bad.json [model]: unknown key(s) d_modle" in capsys.readouterr().err
    assert not (folder / "x" / "config.json").exists()
    assert main(["-q", "train", str(folder / "c.zarr"), "--out", str(folder / "y"),
                 "--exclude", "cell9:H3K4me3"]) == 2
    assert "cell9:H3K4me3" in capsys.readouterr().err
    assert main(["-q", "train", str(folder / "c.zarr"), "--model", "average", "--out",
                 str(folder / "avg2")]) == 0
    assert main(["-q", "train", str(folder / "c.zarr"), "--model", "average", "--out",
                 str(folder / "avg2")]) == 2
    assert "already holds a model" in capsys.readouterr().err
    assert main(["-q", "impute", str(folder / "avg2"), str(folder / "c.zarr"), "--target",
                 "cell1:H3K9me3", "--out", str(folder / "o")]) == 2
    assert "assay 'H3K9me3' is not known" in capsys.readouterr().err
    assert main(["-q", "impute", str(folder / "avg2"), str(folder / "c.zarr"),
                 "--out", str(folder / "o")]) == 2
    assert "nothing to impute" in capsys.readouterr().err

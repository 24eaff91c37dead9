"""``epimpute impute --uncertainty``: sd tracks beside the means, in every format."""

import json

import numpy as np
import pyBigWig
import pytest
from test_cli import TINY, workspace  # noqa: F401 - the module's fixture

from epimpute import export as export_module
from epimpute.cli import main
from epimpute.store import Store

SPREAD = {**TINY, "model": {**TINY["model"], "uncertainty": True}}
TARGETS = ["--target", "cell1:H3K4me3", "--target", "cell2:H3K36me3"]


@pytest.fixture(scope="module")
def models(workspace):  # noqa: F811
    folder, _ = workspace
    (folder / "spread.json").write_text(json.dumps(SPREAD))
    for name, config in (("spread", "spread.json"), ("plain", "tiny.json")):
        assert main(["-q", "train", str(folder / "c.zarr"), "--model", "edice", "--out",
                     str(folder / f"m-{name}"), "--config", str(folder / config),
                     "--exclude", "cell1:H3K4me3", "--seed", "1", "--device", "cpu"]) == 0
    return folder


def impute(folder, model, out, *extra):
    return main(["-q", "impute", str(folder / model), str(folder / "c.zarr"), *TARGETS,
                 "--device", "cpu", "--precision", "fp32", "--out", str(folder / out), *extra])


def test_npz_and_bigwig_hold_the_sd_beside_the_mean_on_the_arcsinh_scale(models):
    folder = models
    assert impute(folder, "m-spread", "u-npz", "--format", "npz", "--uncertainty") == 0
    assert impute(folder, "m-spread", "u-bw", "--uncertainty") == 0
    assert impute(folder, "m-spread", "plain-npz", "--format", "npz") == 0
    names = sorted(p.name for p in (folder / "u-npz").iterdir())
    assert names == ["cell1.H3K4me3.npz", "cell1.H3K4me3.sd.npz", "cell2.H3K36me3.npz",
                     "cell2.H3K36me3.sd.npz", "imputation.json"]
    record = json.loads((folder / "u-bw" / "imputation.json").read_text())
    assert record["sd_files"] == ["cell1.H3K4me3.sd.bw", "cell2.H3K36me3.sd.bw"]
    assert record["sd_scale"] == "arcsinh" and record["scale"] == "-log10 p"
    for name in ("cell1.H3K4me3", "cell2.H3K36me3"):
        mean = np.load(folder / "u-npz" / f"{name}.npz")
        sd = np.load(folder / "u-npz" / f"{name}.sd.npz")
        # the means are those imputed without --uncertainty
        np.testing.assert_array_equal(mean["chr1"], np.load(folder / "plain-npz" /
                                                            f"{name}.npz")["chr1"])
        assert sd["chr1"].shape == mean["chr1"].shape and (sd["chr1"] > 0).all()
        # bigWig: the mean is sinh'd to -log10 p, the sd is written as it is (arcsinh scale)
        bw = pyBigWig.open(str(folder / "u-bw" / f"{name}.sd.bw"))
        np.testing.assert_allclose(np.array(bw.values("chr2", 0, 80_000))[::25], sd["chr2"],
                                   rtol=1e-5, atol=1e-6)
        bw = pyBigWig.open(str(folder / "u-bw" / f"{name}.bw"))
        np.testing.assert_allclose(np.array(bw.values("chr2", 0, 80_000))[::25],
                                   np.sinh(np.maximum(mean["chr2"], 0)), rtol=1e-5, atol=1e-6)


def test_zarr_holds_sd_tracks_and_many_targets_export_them_unconverted(models, monkeypatch):
    folder = models
    assert impute(folder, "m-spread", "u.zarr", "--format", "zarr", "--uncertainty") == 0
    store = Store.open(folder / "u.zarr")
    assert [t.key for t in store.tracks] == ["cell1:H3K4me3", "cell2:H3K36me3",
                                             "cell1:H3K4me3.sd", "cell2:H3K36me3.sd"]
    sd = store.read("chr2", tracks=[3])[0]
    # more files than may be open at once: imputed into a scratch store, then exported
    monkeypatch.setattr(export_module, "MAX_OPEN_FILES", 1)
    assert impute(folder, "m-spread", "u-many", "--uncertainty") == 0
    bw = pyBigWig.open(str(folder / "u-many" / "cell2.H3K36me3.sd.bw"))
    np.testing.assert_allclose(np.array(bw.values("chr2", 0, 80_000))[::25], sd, rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("model", ["m-plain", "avg"])
def test_a_model_without_uncertainty_exits_2_and_writes_nothing(models, model, capsys):
    folder = models
    if model == "avg" and not (folder / "avg").exists():
        assert main(["-q", "train", str(folder / "c.zarr"), "--model", "average", "--out",
                     str(folder / "avg")]) == 0
    capsys.readouterr()
    out = f"refused-{model}"
    assert impute(folder, model, out, "--uncertainty") == 2
    message = capsys.readouterr().err
    assert "does not predict uncertainty" in message and model in message
    assert not (folder / out).exists()

import json

import numpy as np
import pytest

from epimpute import api
from epimpute.cli import main
from epimpute.errors import InputError
from epimpute.model_dir import load_model

CONFIG = {
    "model": {"preset": "small", "celltype_factors": 4, "assay_factors": 3,
              "genome_factors": [3, 4, 5], "hidden": [16]},
    "training": {"batch_size": 2000, "max_epochs": 2, "stage2_max_epochs": 2,
                 "stage1_max_bins": 6000, "stage1_block_bins": 2000},
}


@pytest.fixture(scope="module")
def trained(small_compendium, tmp_path_factory):
    store, _ = small_compendium
    folder = tmp_path_factory.mktemp("avocado")
    config = folder / "config.json"
    config.write_text(json.dumps(CONFIG))
    model_dir = api.train(store, folder / "model", model="avocado", config=config,
                          seed=1, device="cpu")
    return store, model_dir, folder


def test_exported_factors_and_embeddings_reimpute_the_model(trained):
    """Each member's embeddings, factor columns and decoder slice, averaged over the members
    (the small preset has three), give back what ``impute`` writes in fp32."""
    store, model_dir, folder = trained
    keys = [store.tracks[0].key, store.tracks[-1].key]
    imputed = api.impute(model_dir, store, folder / "imputed", targets=keys,
                         format="npz", device="cpu", precision="fp32")
    out = api.factors(model_dir, folder / "chrB.npz", chrom="chrB")
    state = load_model(model_dir).network.state_dict()
    with np.load(out) as saved:
        n_bins = store.n_bins("chrB")
        assert int(saved["members"]) == 3
        assert saved["factors"].shape == (n_bins, 3 * 12)
        assert str(saved["chrom"]) == "chrB" and int(saved["bin_size"]) == 25
        assert saved["start"][:2].tolist() == [0, 25] and saved["end"][-1] == n_bins * 25
        assert saved["factor_scale_bp"].tolist() == ([25] * 3 + [250] * 4 + [5000] * 5) * 3
        assert saved["factor_member"].tolist() == [0] * 12 + [1] * 12 + [2] * 12
        assert saved["cell_type_embedding"].shape[1] == 3 * 4
        assert saved["assay_embedding"].shape[1] == 3 * 3
        celltypes, assays = list(saved["cell_types"]), list(saved["assays"])
        for key, path in zip(keys, imputed):
            cell, assay = key.split(":")
            members = []
            for m in range(3):
                inputs = np.concatenate([
                    np.broadcast_to(saved["cell_type_embedding"][celltypes.index(cell),
                                                                m * 4:(m + 1) * 4], (n_bins, 4)),
                    np.broadcast_to(saved["assay_embedding"][assays.index(assay),
                                                             m * 3:(m + 1) * 3], (n_bins, 3)),
                    saved["factors"][:, saved["factor_member"] == m]], axis=1)
                hidden = np.maximum(inputs @ state["decoder.0.weight"][m].numpy().T
                                    + state["decoder.0.bias"][m].numpy(), 0)
                members.append(hidden @ state["decoder.3.weight"][m].numpy().T
                               + state["decoder.3.bias"][m].numpy())
            again = np.mean(members, axis=0)[:, 0]
            np.testing.assert_allclose(again, np.load(path)["chrB"], rtol=1e-5, atol=1e-5)


def test_bf16_imputation_is_fp32_within_bf16_rounding(trained):
    """``precision="bf16"`` reaches the Avocado decoder through the imputation loop: the
    values move by bf16 rounding only."""
    store, model_dir, folder = trained
    keys = [store.tracks[0].key, store.tracks[-1].key]
    written = {precision: api.impute(model_dir, store, folder / f"imputed-{precision}",
                                     targets=keys, format="npz", device="cpu",
                                     precision=precision)
               for precision in ("fp32", "bf16")}
    for exact_path, reduced_path in zip(written["fp32"], written["bf16"]):
        with np.load(exact_path) as exact_file, np.load(reduced_path) as reduced_file:
            for contig in exact_file.files:
                exact, reduced = exact_file[contig], reduced_file[contig]
                error = np.abs(reduced - exact)
                assert reduced.dtype == np.float32 and error.max() > 0
                assert error.max() <= 0.02 * (exact.max() - exact.min())


def test_factors_command(trained, capsys):
    _, model_dir, folder = trained
    out = folder / "cli.npz"
    assert main(["factors", str(model_dir), "--chrom", "chrA", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert ("36 per bin (3 members x 12) (25 bp: 3, 250 bp: 4, 5000 bp: 5)" in printed
            and out.exists())
    assert main(["factors", str(model_dir), "--chrom", "chrZ", "--out", str(folder / "z.npz")]) == 2
    assert "no genome factors for contig 'chrZ'" in capsys.readouterr().err
    assert not (folder / "z.npz").exists()


def test_factors_refuses_to_replace_files_and_names_missing_folders(trained, capsys):
    _, model_dir, folder = trained
    notes = folder / "notes.txt"
    notes.write_text("keep me")
    for extra in ([], ["--overwrite"]):
        assert main(["factors", str(model_dir), "--chrom", "chrA", "--out", str(notes),
                     *extra]) == 2
        assert notes.read_text() == "keep me"
    err = capsys.readouterr().err
    assert "notes.txt already exists; use --overwrite" in err
    assert "notes.txt exists and is not an epimpute factors file" in err
    assert main(["factors", str(model_dir), "--chrom", "chrA", "--out",
                 str(folder / "absent" / "f.npz")]) == 2
    assert "the folder" in capsys.readouterr().err and not (folder / "absent").exists()
    assert main(["factors", str(model_dir), "--chrom", "chrA", "--out", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err
    out = folder / "again.npz"
    assert main(["factors", str(model_dir), "--chrom", "chrA", "--out", str(out)]) == 0
    first = out.stat().st_mtime_ns
    assert main(["factors", str(model_dir), "--chrom", "chrA", "--out", str(out)]) == 2
    assert main(["factors", str(model_dir), "--chrom", "chrA", "--out", str(out),
                 "--overwrite"]) == 0
    assert out.stat().st_mtime_ns >= first
    assert not [p for p in folder.iterdir() if ".tmp-" in p.name]


def test_only_avocado_models_have_factors(small_compendium, tmp_path):
    store, _ = small_compendium
    model_dir = api.train(store, tmp_path / "average", model="average", device="cpu")
    with pytest.raises(InputError, match="only avocado models"):
        api.factors(model_dir, tmp_path / "f.npz", chrom="chrA")
    assert not (tmp_path / "f.npz").exists()

import json

import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.model_dir import load_model, save_model
from epimpute.models.average import AverageImputer
from epimpute.models.edice import Edice, EdiceConfig, EdiceImputer
from epimpute.models.layout import Layout

LAYOUT = Layout.from_keys(["a:K4", "a:K27", "b:K4", "c:K27"], bin_size=25,
                          biosamples=["a", "b", "c"])
CONFIG = EdiceConfig(d_model=16, n_heads=2, feedforward=32, decoder_hidden=(32,),
                     windows=(1, 3))


def test_edice_save_load_gives_identical_predictions(tmp_path):
    imputer = EdiceImputer(Edice(LAYOUT, CONFIG))
    signal = np.random.default_rng(0).random((4, 52)).astype(np.float32)
    available = np.array([True, True, False, True])
    targets = [(1, 0), (2, 1)]
    before = imputer.impute_region(signal, available, targets, contig="x", start=0)
    save_model(tmp_path / "m", imputer, provenance={"seed": 1})
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, EdiceImputer)
    assert loaded.layout == LAYOUT
    assert loaded.network.config == CONFIG
    after = loaded.impute_region(signal, available, targets, contig="x", start=0)
    np.testing.assert_array_equal(before, after)
    record = json.loads((tmp_path / "m" / "config.json").read_text())
    assert record["model"] == "edice" and record["provenance"] == {"seed": 1}
    assert not list((tmp_path / "m").glob(".*tmp*"))


def test_average_round_trip(tmp_path):
    save_model(tmp_path / "m", AverageImputer(LAYOUT))
    assert isinstance(load_model(tmp_path / "m"), AverageImputer)


def test_bad_model_directories_are_named(tmp_path):
    with pytest.raises(InputError, match="not an epimpute model directory"):
        load_model(tmp_path)
    save_model(tmp_path / "m", EdiceImputer(Edice(LAYOUT, CONFIG)))
    (tmp_path / "m" / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="weights.pt: cannot be read"):
        load_model(tmp_path / "m")
    config = tmp_path / "m" / "config.json"
    record = json.loads(config.read_text())
    config.write_text(json.dumps({**record, "format_version": 99}))
    with pytest.raises(InputError, match="format version 99"):
        load_model(tmp_path / "m")


def test_contig_file_names_are_distinct_and_safe():
    from epimpute.model_dir import contig_file_name

    contigs = ["x", ".x", "%2Ex", "..", "a/b", "HLA-A*01:01", "\u1f60" + "0", "\U0001f600"]
    names = [contig_file_name(c) for c in contigs]
    assert len(set(names)) == len(contigs)
    assert names[:4] == ["x.pt", "%2Ex.pt", "%252Ex.pt", "%2E%2E.pt"]
    assert names[4:6] == ["a%2Fb.pt", "HLA-A%2A01%3A01.pt"]
    # every byte of the UTF-8 name, so codes of different lengths cannot run together
    assert names[6:] == ["%E1%BD%A00.pt", "%F0%9F%98%80.pt"]
    assert all(not n.startswith(".") and "/" not in n for n in names)
    assert contig_file_name("chr1", ".checkpoint.pt") == "chr1.checkpoint.pt"


def test_a_model_claiming_uncertainty_must_say_how_to_impute_it():
    with pytest.raises(TypeError, match="overrides predicts_uncertainty but not"):
        class Claims(AverageImputer):  # noqa: F841 - refused when defined
            @property
            def predicts_uncertainty(self) -> bool:
                return True
    plain = AverageImputer(LAYOUT)
    with pytest.raises(InputError, match="does not predict uncertainty"):
        plain.impute_region_spread(np.zeros((len(LAYOUT.tracks), 10), dtype=np.float32),
                                   np.ones(len(LAYOUT.tracks), dtype=bool), [(0, 0)],
                                   contig="chr1", start=0)

"""Generated compendia at real shapes: observation patterns, determinism, learnable signal."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epimpute.errors import InputError
from epimpute.store import Store
from epimpute.synthetic_compendium import (
    ROADMAP_COUNTS,
    pattern_from_manifest,
    pilot_pattern,
    roadmap_pattern,
    short_assay,
    synthesize,
)

SHARED = Path(os.environ.get("EPIMPUTE_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
ENCODE = SHARED / "ENCODE2018Core.tsv"


def test_short_assay_names():
    assert short_assay("ChIP-seq_H3K27ac_signal_p-value") == "H3K27ac"
    assert short_assay("DNase-seq_read-depth_normalized_signal") == "DNase"
    assert short_assay("ATAC-seq_signal_p-value") == "ATAC"
    assert short_assay("total_RNA-seq_plus_strand_signal_of_all_reads") == "total-RNA-plus"
    assert short_assay("polyA_depleted_RNA-seq_minus_strand_signal_of_all_reads") == \
        "polyA-depleted-RNA-minus"


def test_manifest_names_repeated_biosamples_by_index(tmp_path):
    sheet = tmp_path / "m.tsv"
    sheet.write_text("Biosample Index\tBiosample\tAssay\n"
                     "J1\tliver\tChIP-seq_H3K4me3_signal_p-value\n"
                     "J2\tliver\tChIP-seq_H3K4me3_signal_p-value\n"
                     "J2\tliver\tDNase-seq_read-depth_normalized_signal\n"
                     "J3\tCD4-positive, alpha-beta T cell\tATAC-seq_signal_p-value\n")
    pattern = pattern_from_manifest(sheet)
    assert pattern.biosamples == ("J1_liver", "J2_liver", "J3_CD4-positive_alpha-beta_T_cell")
    assert pattern.assays == ("ATAC", "DNase", "H3K4me3")
    assert pattern.pairs == [("J1_liver", "H3K4me3"), ("J2_liver", "DNase"),
                             ("J2_liver", "H3K4me3"), ("J3_CD4-positive_alpha-beta_T_cell", "ATAC")]


def test_manifest_without_columns_is_an_input_error(tmp_path):
    sheet = tmp_path / "bad.tsv"
    sheet.write_text("cell\tmark\nA\tB\n")
    with pytest.raises(InputError, match="Biosample"):
        pattern_from_manifest(sheet)


def test_encode_store_has_the_manifests_tracks(tmp_path):
    if not ENCODE.is_file():
        pytest.skip(f"ENCODE2018-Core manifest not found at {ENCODE} (../shared/data absent)")
    table = pd.read_csv(ENCODE, sep="\t", quoting=3)
    expected = set()
    for index, name, assay in zip(table["Biosample Index"], table["Biosample"], table["Assay"]):
        biosample = "_".join(w for w in "".join(c if c.isalnum() or c in "+-" else " "
                                                for c in f"{index} {name}").split())
        expected.add(f"{biosample}:{short_assay(assay)}")
    store = synthesize(pattern_from_manifest(ENCODE), tmp_path / "enc.zarr",
                       contigs={"chr1": 25 * 1500}, chunk_bins=1024)
    assert len(store.tracks) == 3814 == len(table)
    assert {t.key for t in store.tracks} == expected
    assert len(store.biosamples) == 400 and len(store.assays) == 84
    _, _, observed = store.observed_matrix()
    assert round(1 - observed.mean(), 3) == 0.886
    signal = store.read("chr1")
    assert signal.shape == (3814, 1500) and np.isfinite(signal).all() and signal.min() >= 0


def test_roadmap_pattern_shape_and_counts():
    pattern = roadmap_pattern(seed=0)
    assert pattern.observed.shape == (127, 24)
    assert pattern.observed.sum() == sum(ROADMAP_COUNTS.values()) == 1028
    assert pattern.observed.sum(axis=0).tolist() == list(ROADMAP_COUNTS.values())
    assert pattern.observed[:, :5].all()
    assert (roadmap_pattern(seed=0).observed == pattern.observed).all()
    assert (roadmap_pattern(seed=1).observed != pattern.observed).any()


def test_generation_is_deterministic_given_the_seed(tmp_path):
    pattern = roadmap_pattern(seed=0)
    runs = [synthesize(pattern, tmp_path / f"{name}.zarr", contigs={"c1": 25 * 3000,
                                                                  "c2": 25 * 1000},
                       seed=seed, chunk_bins=2048) for name, seed in (("a", 4), ("b", 4),
                                                                     ("c", 5))]
    a, b, c = (store.read("c1") for store in runs)
    assert a.shape == (1028, 3000)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0].read("c2"), runs[1].read("c2"))
    assert not np.array_equal(a, c)


def test_held_out_tracks_are_predictable_from_other_biosamples(tmp_path):
    store = synthesize(pilot_pattern(), tmp_path / "p.zarr", contigs={"chr1": 25 * 100_000},
                       seed=2)
    assert isinstance(store, Store) and len(store.tracks) == 25
    signal = store.read("chr1")
    for assay in store.assays:
        rows = [i for i, t in enumerate(store.tracks) if t.assay == assay]
        for i in rows:
            others = signal[[r for r in rows if r != i]].mean(axis=0)
            aligned = np.corrcoef(signal[i], others)[0, 1]
            # a shifted average keeps the marginal distribution but not the positions
            shifted = np.corrcoef(signal[i], np.roll(others, 40_000))[0, 1]
            assert aligned > 0.3 and aligned > abs(shifted) + 0.2, store.tracks[i].key


def test_synth_command_writes_a_store_and_rejects_a_missing_manifest(tmp_path, capsys):
    from epimpute.cli import main

    assert main(["-q", "synth", "--like", "pilot", "--bins", "1000", "--out",
                 str(tmp_path / "p.zarr"), "--seed", "3"]) == 0
    store = Store.open(tmp_path / "p.zarr")
    assert store.contigs == {"chr1": 25_000} and len(store.tracks) == 25
    assert main(["-q", "synth", "--like", str(tmp_path / "none.tsv"), "--bins", "10", "--out",
                 str(tmp_path / "n.zarr")]) == 2
    assert "none.tsv: manifest not found" in capsys.readouterr().err
    assert not (tmp_path / "n.zarr").exists()


def test_parallel_generation_writes_the_same_store(tmp_path):
    from epimpute.store.store import CHUNK_BINS

    contigs = {"c1": 25 * (2 * CHUNK_BINS + 700), "c2": 25 * 900}
    one = synthesize(pilot_pattern(), tmp_path / "one.zarr", contigs=contigs, seed=9)
    two = synthesize(pilot_pattern(), tmp_path / "two.zarr", contigs=contigs, seed=9, jobs=2)
    for contig in contigs:
        np.testing.assert_array_equal(one.read(contig), two.read(contig))
    with pytest.raises(InputError, match="multiple of"):
        synthesize(pilot_pattern(), tmp_path / "x.zarr", contigs=contigs, jobs=2,
                   chunk_bins=1000)

"""Training data drawn from a store: blocks, splits, bin tables, rows and layouts."""

import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.models.layout import Layout
from epimpute.store import Store, Track, create_store
from epimpute.training.data import (
    genome_blocks,
    input_rows,
    layout_rows,
    load_bins,
    read_spans,
    split_blocks,
    store_layout,
)

TRACKS = [Track("c1", "K4"), Track("c1", "K27"), Track("c2", "K4")]


@pytest.fixture
def store(tmp_path):
    writer = create_store(tmp_path / "s.zarr", tracks=TRACKS, contigs={"a": 60, "b": 30},
                          bin_size=10)
    for row in range(3):  # track r, bin i of contig a holds 100 * r + i
        writer.write(row, "a", 100.0 * row + np.arange(6, dtype=np.float32))
        writer.write(row, "b", -np.arange(1, 4, dtype=np.float32) - row)
    return Store.open(tmp_path / "s.zarr")


def test_contigs_are_tiled_into_blocks():
    assert genome_blocks({"a": 25, "b": 10}, block_bins=10) == [
        ("a", 0, 10), ("a", 10, 20), ("a", 20, 25), ("b", 0, 10)]
    assert genome_blocks({"a": 0}, block_bins=10) == []


def test_split_draws_blocks_in_random_order_until_the_budget():
    blocks = genome_blocks({"a": 40}, block_bins=10)  # four blocks of 10 bins
    order = np.random.default_rng(7).permutation(4)
    training, validation = split_blocks(blocks, max_bins=15, validation_fraction=0.1,
                                        rng=np.random.default_rng(7))
    # two blocks reach 15 bins; one of two is at least one validation block
    assert validation == [blocks[order[0]]] and training == [blocks[order[1]]]
    training, validation = split_blocks(blocks, max_bins=10**6, validation_fraction=0.5,
                                        rng=np.random.default_rng(7))
    assert validation == sorted(blocks[i] for i in order[:2])
    assert training == sorted(blocks[i] for i in order[2:])
    assert split_blocks(blocks[:1], max_bins=100, validation_fraction=0.5,
                        rng=np.random.default_rng(0)) == (blocks[:1], [])


def test_bin_table_reads_blocks_with_context(store):
    def featurize(signal):  # (T, L + 2) -> (L, T, 3): left neighbour, bin, right neighbour
        return np.stack([signal[:, :-2], signal[:, 1:-1], signal[:, 2:]], axis=-1).transpose(
            1, 0, 2)

    table = load_bins(store, [2, 0], [("a", 0, 3), ("b", 1, 3)], margin=1,
                      featurize=featurize)
    assert len(table) == 5 and table.features.shape == (5, 2, 3)
    # values: rows in the order asked for (track 2, then track 0)
    assert table.values.tolist() == [[200, 0], [201, 1], [202, 2], [-4, -2], [-5, -3]]
    # context reaches past the contig start as zeros, and into the neighbouring bins
    assert table.features[0, 0].tolist() == [0, 200, 201]
    assert table.features[4, 1].tolist() == [-2, -3, 0]
    empty = load_bins(store, [0], [], margin=1, featurize=featurize)
    assert len(empty) == 0
    # consecutive blocks share one read yet give the bins each block read alone gives
    blocks = [("a", 0, 2), ("a", 2, 4), ("a", 4, 6), ("b", 0, 3)]
    together = load_bins(store, [0, 1], blocks, margin=1, featurize=featurize)
    alone = [load_bins(store, [0, 1], [block], margin=1, featurize=featurize)
             for block in blocks]
    np.testing.assert_array_equal(together.features,
                                  np.concatenate([t.features for t in alone]))
    np.testing.assert_array_equal(together.values, np.concatenate([t.values for t in alone]))


def test_blocks_are_read_together_within_a_chunk_and_a_byte_budget():
    blocks = [("a", 0, 10), ("a", 10, 20), ("a", 40, 50), ("a", 90, 100), ("b", 0, 10)]
    spans = read_spans(blocks, margin=2, n_rows=1, chunk_bins=lambda contig: 60)
    # a: [-2, 52) holds three blocks in 54 <= 60 bins; [88, 102) starts a new read (the
    # span would be 104 bins); another contig always starts one
    assert [(c, lo, hi, len(m)) for c, lo, hi, m in spans] == [
        ("a", -2, 52, 3), ("a", 88, 102, 1), ("b", -2, 12, 1)]
    huge = read_spans(blocks[:2], margin=2, n_rows=(256 << 20) // (4 * 20),
                      chunk_bins=lambda contig: 60)
    assert len(huge) == 2  # 24 bins x that many tracks is over the byte budget


def test_rows_and_layouts_of_a_store(store):
    assert input_rows(store, ["c1:K27"]) == [0, 2]
    layout = store_layout(store, exclude=["c1:K27"])
    assert layout.keys == ["c1:K4", "c2:K4"] and layout.excluded == ("c1:K27",)
    assert layout.assays == ("K27", "K4")  # known by name, though no input has it
    assert layout_rows(store, Layout.from_keys(["c2:K4", "c1:K4"], bin_size=10)) == [2, 0]
    with pytest.raises(InputError, match="lacks input tracks of the model: c3:K4"):
        layout_rows(store, Layout.from_keys(["c3:K4"], bin_size=10))
    with pytest.raises(InputError, match="--exclude names tracks that are not in .*: c9:K4"):
        store_layout(store, exclude=["c9:K4"])

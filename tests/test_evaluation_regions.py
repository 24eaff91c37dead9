"""Region files and their per-bin coverage, following the challenge scorer's bin arithmetic."""

import gzip
from pathlib import Path

import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.evaluation.regions import (
    enhancer_coverage,
    gene_coverage,
    promoter_coverage,
    read_enhancers,
    read_genes,
    tss_classes,
    tss_labels,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

GENES = """track name=genes
chrA\t100\t260\tg1\t.\t+
chrA\t300\t410\tg2\t.\t-
chrA\t310\t330\tg3\t.\t-
chrA\t0\t30\tg4\t.\t.
chrZ\t0\t100\tg5\t.\t+
"""


@pytest.fixture
def genes(tmp_path):
    path = tmp_path / "genes.bed.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(GENES)
    return read_genes(path)


def test_gene_bodies_span_start_to_end_plus_one_bin(genes):
    coverage = gene_coverage(genes, "chrA", n_bins=30, bin_size=25)
    expected = np.zeros(30, dtype=int)
    expected[100 // 25 : 260 // 25 + 1] += 1  # g1: bins 4..10
    expected[300 // 25 : 410 // 25 + 1] += 1  # g2: bins 12..16
    expected[310 // 25 : 330 // 25 + 1] += 1  # g3: bins 12..13
    expected[0 : 30 // 25 + 1] += 1  # g4: bins 0..1
    assert coverage.tolist() == expected.tolist()


def test_promoters_are_strand_aware_and_clipped(genes):
    coverage = promoter_coverage(genes, "chrA", n_bins=30, bin_size=25, upstream=100)
    expected = np.zeros(30, dtype=int)
    expected[0:4] += 1  # g1 (+): the 4 bins before bin 4
    expected[17:21] += 1  # g2 (-): 4 bins from end // 25 + 1 = 17
    expected[14:18] += 1  # g3 (-): from 330 // 25 + 1 = 14
    assert coverage.tolist() == expected.tolist()  # g4 has no strand: no promoter
    # the default is the challenge's 2 kb, 80 bins of 25 bp; clipped at the contig start
    assert promoter_coverage(genes, "chrA", n_bins=300, bin_size=25)[:4].tolist() == [1, 1, 1, 1]
    assert promoter_coverage(genes, "chrA", n_bins=300, bin_size=25).sum() == 4 + 80 + 80


def test_contigs_without_regions_are_zero(genes):
    assert gene_coverage(genes, "chrB", n_bins=5, bin_size=25).tolist() == [0] * 5
    assert len(genes) == 5


def test_distance_to_the_nearest_strand_aware_tss(genes):
    # chrA TSSs: g4 (unstranded) 0, g1 (+) 100, g3 (-) 329, g2 (-) 409; bin centres 50, 150, ...
    # nearest distances 50 50 79 21 41 141 241 341 -> classes of [0, 50), [50, 150), >= 150
    classes = tss_classes(genes, "chrA", n_bins=8, bin_size=100, edges=(50, 150))
    assert classes.tolist() == [1, 1, 1, 0, 0, 1, 2, 2] and classes.dtype == np.uint8
    assert tss_classes(genes, "chrQ", n_bins=3, bin_size=100, edges=(50, 150)).tolist() == [2] * 3
    assert tss_labels((50, 150)) == ["tss<0.05kb", "tss0.05-0.15kb", "tss>=0.15kb"]
    assert tss_labels() == ["tss<1kb", "tss1-5kb", "tss5-20kb", "tss20-100kb", "tss>=100kb"]


def test_enhancers_bed12(tmp_path):
    path = tmp_path / "enh.bed"
    path.write_text("chrA\t50\t120\tchrA:50-120\t35\t.\t60\t61\t0,0,0\t2\t10,10\t0,60\n")
    coverage = enhancer_coverage(read_enhancers(path), "chrA", n_bins=10, bin_size=25)
    assert coverage.tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]


def test_malformed_files_name_the_file_and_line(tmp_path):
    short = tmp_path / "short.bed"
    short.write_text("# genes\nchrA\t1\t5\tg\n")
    with pytest.raises(InputError, match=r"short\.bed: line 2 has 4"):
        read_genes(short)
    bad = tmp_path / "bad.bed"
    bad.write_text("chrA\tx\t5\n")
    with pytest.raises(InputError, match=r"bad\.bed: line 1: start and end"):
        read_enhancers(bad)
    with pytest.raises(InputError, match="not found"):
        read_genes(tmp_path / "missing.bed")


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")
def test_reads_the_challenge_annotations():
    genes = read_genes(SHARED / "annotations" / "hg38" / "gencode.v29.genes.gtf.bed.gz")
    assert len(genes) == 58721
    coverage = promoter_coverage(genes, "chr21", n_bins=46709983 // 25 + 1, bin_size=25)
    assert coverage.max() >= 1

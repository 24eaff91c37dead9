import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.io.genome import one_hot
from epimpute.motifs import JASPAR_IDS, consensus, jaspar_motifs, scan

COMPLEMENT = str.maketrans("ACGT", "TGCA")


def test_pinned_jaspar_motifs_load_from_the_packaged_database():
    motifs = jaspar_motifs(list(JASPAR_IDS))
    assert [m.name for m in motifs] == list(JASPAR_IDS)
    for motif in motifs:
        assert motif.matrix_id == JASPAR_IDS[motif.name]
        np.testing.assert_allclose(motif.pwm.sum(axis=0), 1.0)
    ctcf = jaspar_motifs(["ctcf"])[0]
    assert ctcf.name == "CTCF" and ctcf.length == 15 and consensus(ctcf) == "GCCACCAGGGGGCGC"
    with pytest.raises(InputError, match="no JASPAR motif pinned for 'FOO'"):
        jaspar_motifs(["FOO"])


def test_scan_finds_planted_matches_on_both_strands():
    ctcf, spi1 = jaspar_motifs(["CTCF", "SPI1"])
    word = consensus(spi1)
    sequence = "N" * 40 + consensus(ctcf) + "N" * 30 + word[::-1].translate(COMPLEMENT) + "N" * 20
    hits = scan([ctcf, spi1], one_hot(sequence), threshold=1e-6)
    assert hits[["tf", "start", "end", "strand"]].values.tolist() == [
        ["CTCF", 40, 55, "+"], ["SPI1", 85, 98, "-"]]
    assert (hits["p_value"] < 1e-6).all()
    batch = np.stack([one_hot(sequence), one_hot("N" * len(sequence))])
    assert scan([ctcf], batch, threshold=1e-6)["sequence"].tolist() == [0]
    assert scan([ctcf], one_hot("N" * 100), threshold=1e-3).empty

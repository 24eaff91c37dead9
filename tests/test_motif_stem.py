"""Known motifs as fixed stem filters of seqcell."""

import numpy as np
import pytest
import torch

from epimpute.errors import InputError
from epimpute.models.motif_stem import MATCH_P, MotifStem, motif_filters, motif_width
from epimpute.models.seqcell import Seqcell, SeqcellConfig, receptive_field
from epimpute.motifs import JASPAR_IDS, jaspar_library, scan


def _random_one_hot(n: int, seed: int) -> np.ndarray:
    x = np.zeros((4, n), dtype=np.float32)
    x[np.random.default_rng(seed).integers(0, 4, n), np.arange(n)] = 1.0
    return x


def _stem(motifs):
    stem = MotifStem(2, 5, len(motifs), motif_width([m.length for m in motifs]))
    stem.set_motifs([m.pwm for m in motifs])
    return stem


def test_library_takes_pinned_names_and_matrix_ids_in_order():
    motifs = jaspar_library(["MA0004.1", "ctcf"])
    assert [(m.name, m.matrix_id) for m in motifs] == [("Arnt", "MA0004.1"),
                                                       ("CTCF", JASPAR_IDS["CTCF"])]
    np.testing.assert_allclose(motifs[0].pwm.sum(axis=0), 1.0)
    with pytest.raises(InputError, match="no JASPAR motif pinned for 'NOTATF'"):
        jaspar_library(["NOTATF"])
    with pytest.raises(InputError, match="JASPAR2026 has no matrix MA9999.1"):
        jaspar_library(["MA9999.1"])
    with pytest.raises(InputError, match="motifs given twice: MA0139.2"):
        jaspar_library(["CTCF", "MA0139.2"])


def test_filter_responses_are_the_fimo_match_scores_on_both_strands():
    motifs = jaspar_library(["CTCF", "MA0004.1", "REST"])  # lengths 15, 6, 21: width 21
    width = motif_width([m.length for m in motifs])
    assert width == 21 and motif_width([6, 8]) == 9
    stem = _stem(motifs)
    x = _random_one_hot(100_000, seed=0)
    with torch.no_grad():
        response = stem(torch.from_numpy(x)[None])[0, 2:].numpy()
    response -= stem.motifs.bias.detach().numpy()[:, None]  # the bare match score
    hits = scan(motifs, x, threshold=1e-3)
    assert len(hits) > 300 and set(hits["strand"]) == {"+", "-"}
    names = [m.name for m in motifs]
    for hit in hits.itertuples():
        m = names.index(hit.tf)
        lo = (width - motifs[m].length) // 2
        if hit.strand == "+":  # the filter is centred: output i sees [i - 10, i + 10]
            got = response[2 * m, hit.start + width // 2 - lo]
        else:
            got = response[2 * m + 1, hit.start + width // 2 - (width - lo - motifs[m].length)]
        assert got == pytest.approx(hit.score, abs=0.02), hit


def test_initial_bias_passes_about_the_match_p_value_of_random_positions():
    motifs = jaspar_library(["CTCF", "REST"])
    stem = _stem(motifs)
    x = _random_one_hot(400_000, seed=1)
    with torch.no_grad():
        response = stem(torch.from_numpy(x)[None])[0, 2:].numpy()
    passed = (response[:, 50:-50] > 0).mean(axis=1)  # both strands of each motif
    assert ((passed > MATCH_P / 3) & (passed < 3 * MATCH_P)).all(), passed
    # a motif's score: a sum of independent columns, mean + 3.719 sd by hand for a
    # 2-column motif with a certain A and a uniform column (whose log-odds are all 0)
    pwm = np.array([[1.0, 0.25], [0.0, 0.25], [0.0, 0.25], [0.0, 0.25]])
    weights, biases = motif_filters([pwm], 3)
    hit, miss = np.log2(1.0001 / 1.0004 / 0.25), np.log2(0.0001 / 1.0004 / 0.25)
    np.testing.assert_allclose(weights[0, :, 0], [hit, miss, miss, miss], rtol=1e-6)
    np.testing.assert_allclose(weights[0, :, 1], 0.0, atol=1e-6)
    mean, sd = (hit + 3 * miss) / 4, np.sqrt(3 / 16) * (hit - miss)
    np.testing.assert_allclose(biases, -(mean + 3.719 * sd), rtol=1e-5)
    np.testing.assert_allclose(weights[1], weights[0][::-1, ::-1])  # T, then the uniform


def test_seqcell_with_motifs_widens_the_stem_and_keeps_the_filters_fixed():
    motifs = jaspar_library(["CTCF", "REST"])
    config = SeqcellConfig(stem_channels=4, channels=8, dilations=(1, 2), global_sites=5,
                           dropout=0.0, task="accessibility",
                           stem_motifs=tuple(m.matrix_id for m in motifs), motif_width=21)
    assert receptive_field(config) == receptive_field(
        SeqcellConfig(stem_kernel=21, dilations=(1, 2)))
    network = Seqcell(config, n_marks=1)
    network.trunk[0].set_motifs([m.pwm for m in motifs])
    assert network.trunk[3].in_channels == 4 + 2 * 2
    fixed = network.trunk[0].motifs.weight.detach().clone()
    optimizer = torch.optim.AdamW(network.parameters(), lr=0.1)
    sequence = torch.from_numpy(_random_one_hot(30 * 125, seed=2))[None]
    for _ in range(2):
        optimizer.zero_grad()
        network(sequence, torch.zeros(1, 30), torch.zeros(1, 0))[0].square().mean().backward()
        optimizer.step()
    assert torch.equal(network.trunk[0].motifs.weight, fixed)
    assert network.trunk[0].motifs.bias.grad is not None
    with pytest.raises(ValueError, match="the stem holds 2 motifs, got 1"):
        network.trunk[0].set_motifs([motifs[0].pwm])

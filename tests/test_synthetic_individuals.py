"""The multi-individual generator plants the peaks it says it plants."""

import numpy as np
import pandas as pd

from epimpute.synthetic_individuals import IndividualsSpec, generate_individuals

SPEC = IndividualsSpec(n_tissues=3, contigs={"chrA": 200_000}, seed=4)


def mean_at(values, centres):
    return float(np.mean([values[max(0, c - 2):c + 3].mean() for c in centres]))


def test_planted_peaks_belong_to_their_individual_and_tissues():
    compendium = generate_individuals(SPEC)
    assert len(compendium.signal) == 3 * 2 * 5
    genetic = compendium.planted[("A", "*")]["chrA"]
    own = compendium.planted[("A", "tissue2")]["chrA"]
    signal = {k: v["chrA"] for k, v in compendium.signal.items()}
    for tissue in compendium.tissues:  # A's genetic peaks: in all A's tissues, not in B's
        assert mean_at(signal[(tissue, "A", "H3K4me3")], genetic) > \
            3 * mean_at(signal[(tissue, "B", "H3K4me3")], genetic)
    # A's tissue-restricted peaks: in A's tissue2 only
    assert mean_at(signal[("tissue2", "A", "H3K27ac")], own) > \
        3 * mean_at(signal[("tissue1", "A", "H3K27ac")], own)


def test_same_seed_same_compendium_and_an_entex_style_sheet(tmp_path):
    a, b = generate_individuals(SPEC), generate_individuals(SPEC)
    assert all(np.array_equal(a.signal[k]["chrA"], b.signal[k]["chrA"]) for k in a.signal)
    sheet = pd.read_csv(a.write(tmp_path), sep="\t")
    assert list(sheet.columns) == ["cell_type", "individual", "assay", "path"]
    assert (tmp_path / sheet["path"][0]).exists()

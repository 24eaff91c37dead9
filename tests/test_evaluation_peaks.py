"""Peak calling: hand cases of the bdgpeakcall rules, files, and agreement with MACS3 itself."""

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from epimpute.errors import InputError
from epimpute.evaluation.peaks import (
    PeakParams,
    call_peaks,
    call_peaks_intervals,
    overlaps_mask,
    peak_mask,
    write_bed,
    write_narrowpeak,
)


def _call(values, *, bin_size=10, **params):
    return call_peaks(
        np.asarray(values, dtype=np.float32),
        bin_size=bin_size,
        scale="log10p",
        contig="chr1",
        params=PeakParams(**params),
    )


def test_one_run_of_equal_values_is_one_interval():
    peaks = _call([0, 0, 5, 5, 5, 0, 0], cutoff=2, min_length=20, max_gap=0)
    assert peaks.start.tolist() == [20] and peaks.end.tolist() == [50]
    assert peaks.summit.tolist() == [35]  # midpoint of the merged interval, not of a bin
    assert peaks.score.tolist() == [5.0]


def test_gap_and_length_rules():
    values = [3, 0, 3]
    merged = _call(values, cutoff=2, min_length=0, max_gap=10)
    assert list(zip(merged.start, merged.end)) == [(0, 30)]
    split = _call(values, cutoff=2, min_length=10, max_gap=9)
    assert list(zip(split.start, split.end)) == [(0, 10), (20, 30)]
    assert len(_call(values, cutoff=2, min_length=11, max_gap=9)) == 0


def test_cutoff_is_inclusive():
    assert len(_call([1.99, 2.0, 1.0], cutoff=2, min_length=0, max_gap=0)) == 1
    assert len(_call([1.99, 1.0], cutoff=2, min_length=0, max_gap=0)) == 0


def test_summit_is_the_middle_of_tied_highest_intervals():
    three = _call([4, 1, 4, 1, 4], cutoff=0.5, min_length=0, max_gap=0)
    assert three.summit.tolist() == [25]
    two = _call([4, 1, 4], cutoff=0.5, min_length=0, max_gap=0)
    assert two.summit.tolist() == [5]  # the lower middle
    assert _call([1, 6, 4], cutoff=0.5, min_length=0, max_gap=0).summit.tolist() == [15]


def test_arcsinh_input_and_partial_last_bin():
    raw = np.array([0, 3, 3, 0, 4, 4], dtype=np.float32)
    on_raw = call_peaks(raw, bin_size=10, length=55, scale="log10p", params=PeakParams(2, 0, 0))
    on_arcsinh = call_peaks(np.arcsinh(raw), bin_size=10, length=55, params=PeakParams(2, 0, 0))
    assert on_raw.end.tolist() == on_arcsinh.end.tolist() == [30, 55]
    assert on_arcsinh.score == pytest.approx(on_raw.score, rel=1e-6)
    with pytest.raises(InputError, match="do not fit"):
        call_peaks(raw, bin_size=10, length=70)


def test_masks_and_overlaps():
    peaks = _call([0, 3, 3, 0, 0, 3, 0], cutoff=2, min_length=0, max_gap=0)
    mask = peak_mask(peaks, n_bins=7, bin_size=10)
    assert mask.tolist() == [False, True, True, False, False, True, False]
    other = np.zeros(7, dtype=bool)
    other[2] = True
    assert overlaps_mask(peaks, other, bin_size=10).tolist() == [True, False]


def test_intervals_must_be_contiguous():
    with pytest.raises(InputError, match="contiguous"):
        call_peaks_intervals([0, 20], [10, 30], [3, 3])
    assert len(call_peaks_intervals([], [], [])) == 0


def test_writers(tmp_path):
    peaks = _call([0, 3, 3.5, 0], cutoff=2, min_length=0, max_gap=0)
    write_narrowpeak(tmp_path / "p.narrowPeak", [peaks], name="E003")
    fields = (tmp_path / "p.narrowPeak").read_text().strip().split("\t")
    assert fields[:6] == ["chr1", "10", "30", "E003_peak1", "35", "."]
    assert fields[9] == "15"  # summit (25) - start (10)
    write_bed(tmp_path / "p.bed", [peaks])
    assert (tmp_path / "p.bed").read_text() == "chr1\t10\t30\n"


def _tied_signal(seed, n):
    rng = np.random.default_rng(seed)
    smooth = np.convolve(rng.exponential(1.0, n), np.ones(5) / 2, mode="same")
    return (np.round(smooth * 2) / 2).astype(np.float32)  # steps of 0.5: many equal values


@pytest.mark.skipif(shutil.which("macs3") is None, reason="macs3 is not installed")
@pytest.mark.parametrize(("cutoff", "min_length", "max_gap"), [(2, 200, 30), (3, 50, 60)])
def test_matches_macs3_bdgpeakcall(tmp_path, cutoff, min_length, max_gap):
    n, bin_size = 4000, 25
    length = n * bin_size - 7  # a partial last bin
    values = _tied_signal(cutoff, n)
    starts = np.arange(n) * bin_size
    ends = np.minimum(starts + bin_size, length)
    bedgraph = tmp_path / "signal.bdg"
    with open(bedgraph, "w") as handle:
        handle.writelines(f"chrT\t{s}\t{e}\t{v!r}\n" for s, e, v in zip(starts, ends, values.tolist()))
    result = subprocess.run(
        [
            "macs3",
            "bdgpeakcall",
            "-i",
            str(bedgraph),
            "-c",
            str(cutoff),
            "-l",
            str(min_length),
            "-g",
            str(max_gap),
            "--no-trackline",
            "--outdir",
            str(tmp_path),
            "-o",
            "macs.narrowPeak",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    macs = pd.read_csv(tmp_path / "macs.narrowPeak", sep="\t", header=None)
    ours = call_peaks(
        values,
        bin_size=bin_size,
        length=length,
        contig="chrT",
        scale="log10p",
        params=PeakParams(cutoff, min_length, max_gap),
    )
    write_narrowpeak(tmp_path / "ours.narrowPeak", [ours])
    mine = pd.read_csv(tmp_path / "ours.narrowPeak", sep="\t", header=None)
    assert len(macs) > 20
    # chrom, start, end, score (10 x summit value) and summit offset agree exactly
    assert macs[[0, 1, 2, 4, 9]].values.tolist() == mine[[0, 1, 2, 4, 9]].values.tolist()

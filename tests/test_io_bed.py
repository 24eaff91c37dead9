import gzip

import pytest

from epimpute.errors import InputError
from epimpute.io.bed import read_bed


def test_regions_keep_their_file_line_numbers(tmp_path):
    path = tmp_path / "r.bed.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("track name=x\n# comment\nchr1\t10\t20\tg\t0\t-\n\nchr2\t0\t5\tg\t0\t+\n")
    frame = read_bed(path, min_columns=6)
    assert frame["chrom"].tolist() == ["chr1", "chr2"]
    assert frame["start"].tolist() == [10, 0] and frame["end"].tolist() == [20, 5]
    assert frame["strand"].tolist() == ["-", "+"] and frame["line"].tolist() == [3, 5]
    assert read_bed(path)["strand"].tolist() == [".", "."]


def test_an_empty_file_has_no_regions(tmp_path):
    path = tmp_path / "empty.bed"
    path.write_text("# nothing\n")
    frame = read_bed(path)
    assert len(frame) == 0 and list(frame.columns) == ["chrom", "start", "end", "strand", "line"]


@pytest.mark.parametrize(("text", "message"), [
    ("chr1\t1\n", r"x\.bed: line 1 has 2 tab-separated columns"),
    ("chr1\t1\t5\nchr1\t1.5\t9\n", r"x\.bed: line 2: start and end"),
    ("#\nchr1\t9\t5\n", r"x\.bed: line 2 has a negative start or end before start"),
    ("chr1\t-1\t5\n", r"x\.bed: line 1 has a negative start"),
])
def test_bad_lines_are_named(tmp_path, text, message):
    path = tmp_path / "x.bed"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_bed(path)


def test_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="stage-1 regions file not found"):
        read_bed(tmp_path / "nowhere.bed", what="stage-1 regions")

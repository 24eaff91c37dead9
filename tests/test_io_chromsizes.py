import pytest

from epimpute.errors import InputError
from epimpute.io.chromsizes import read_chrom_sizes


def test_reads_in_file_order(tmp_path):
    path = tmp_path / "genome.sizes"
    path.write_text("# assembly x\nchr2\t20\n\nchr1  45\nchr10\t7\n")
    assert list(read_chrom_sizes(path).items()) == [("chr2", 20), ("chr1", 45), ("chr10", 7)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("chr1\t45\nchr2\n", r"line 2: expected 'name length'"),
        ("chr1\t45\tx\n", r"line 1: expected 'name length'"),
        ("chr1\tlots\n", r"line 1: length 'lots' is not a positive integer"),
        ("chr1\t0\n", r"line 1: length '0' is not a positive integer"),
        ("chr1\t45\nchr1\t45\n", r"line 2: contig 'chr1' is listed twice"),
        ("# nothing\n", r"no contigs listed"),
    ],
)
def test_bad_files_name_the_line(tmp_path, text, message):
    path = tmp_path / "bad.sizes"
    path.write_text(text)
    with pytest.raises(InputError, match=r"bad\.sizes(, |: )" + message):
        read_chrom_sizes(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"absent\.sizes: no such file"):
        read_chrom_sizes(tmp_path / "absent.sizes")

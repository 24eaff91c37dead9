from pathlib import Path

import pytest

from epimpute.errors import InputError
from epimpute.io.samplesheet import SampleSpec, check_samples, file_kind, read_sample_sheet


@pytest.fixture
def data(tmp_path):
    """A folder of (empty) signal files the sheets below refer to."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ["a.bw", "b.bigWig", "c.bedGraph.gz", "d.bdg", "e.npz", "chr1.npy", "chr2.npy"]:
        (folder / name).touch()
    return folder


def write_sheet(folder, text):
    path = folder / "samples.tsv"
    path.write_text(text)
    return path


def test_reads_rows_and_resolves_paths_against_the_sheet(tmp_path, data):
    sheet = write_sheet(
        tmp_path,
        "cell_type\tassay\tpath\tindividual\tchrom\n"
        "E003\tH3K4me3\tdata/a.bw\t\t\n"
        "# a comment line\n"
        "\n"
        f"E004\tH3K27ac\t{data / 'c.bedGraph.gz'}\tdonor1\t\n"
        "E005\tDNase\tdata/chr1.npy\t\tchr1\n"
        "E005\tDNase\tdata/chr2.npy\t\tchr2\n",
    )
    specs = read_sample_sheet(sheet)
    assert [s.key for s in specs] == [
        "E003:H3K4me3",
        "E004@donor1:H3K27ac",
        "E005:DNase",
        "E005:DNase",
    ]
    assert specs[0] == SampleSpec("E003", "H3K4me3", data.resolve() / "a.bw", row=2)
    assert specs[1].biosample == "E004@donor1"
    assert specs[1].path == data / "c.bedGraph.gz"
    assert [s.row for s in specs] == [2, 5, 6, 7]
    assert [s.kind for s in specs] == ["bigwig", "bedgraph", "array", "array"]
    assert specs[3].chrom == "chr2"


def test_optional_columns_may_be_left_out(tmp_path, data):
    sheet = write_sheet(tmp_path, "path\tassay\tcell_type\ndata/a.bw\tH3K4me3\tE003\n")
    (spec,) = read_sample_sheet(sheet)
    assert (spec.cell_type, spec.assay, spec.individual, spec.chrom) == ("E003", "H3K4me3", "", "")


@pytest.mark.parametrize(
    "name, kind",
    [
        ("x.bw", "bigwig"),
        ("x.bigwig", "bigwig"),
        ("x.BigWig", "bigwig"),
        ("x.bedgraph", "bedgraph"),
        ("x.bdg.gz", "bedgraph"),
        ("x.v2.bedGraph.gz", "bedgraph"),
        ("x.npy", "array"),
        ("x.npz", "array"),
        ("x.bed", None),
        ("x.npz.gz", None),
        ("x", None),
    ],
)
def test_file_kind(name, kind):
    assert file_kind(name) == kind


HEADER = "cell_type\tassay\tpath\tindividual\tchrom\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"samples\.tsv: the sample sheet is empty"),
        ("# only a comment\n", r"samples\.tsv: the sample sheet is empty"),
        (HEADER, r"samples\.tsv: the sample sheet has a header but no rows"),
        ("cell_type\tpath\nE003\tdata/a.bw\n", r"samples\.tsv, line 1: missing column\(s\) assay"),
        ("cell_type\tassay\tpath\tnotes\n", r"samples\.tsv, line 1: unknown column\(s\) 'notes'"),
        ("cell_type\tassay\tpath\tassay\n", r"samples\.tsv, line 1: column\(s\) assay repeated"),
        (HEADER + "E003\tH3K4me3\tdata/a.bw\n", r"samples\.tsv, line 2: 3 tab-separated fields"),
        (HEADER + "E003\t\tdata/a.bw\t\t\n", r"samples\.tsv, line 2: the 'assay' cell is empty"),
        (
            HEADER + "E:03\tH3K4me3\tdata/a.bw\t\t\n",
            r"line 2: cell_type 'E:03' is not a valid name \(letters, digits",
        ),
        (
            HEADER + "E@03\tH3K4me3\tdata/a.bw\t\t\n",
            r"line 2: cell_type 'E@03' is not a valid name",
        ),
        (HEADER + "E003\tH3:K4\tdata/a.bw\t\t\n", r"line 2: assay 'H3:K4' is not a valid name"),
        (HEADER + "../../evil\tH3K4me3\tdata/a.bw\t\t\n", r"line 2: cell_type '\.\./\.\./evil' is not"),
        (HEADER + "/abs/path/X\tH3K4me3\tdata/a.bw\t\t\n", r"line 2: cell_type '/abs/path/X' is not"),
        (HEADER + "E003\t.hidden\tdata/a.bw\t\t\n", r"line 2: assay '\.hidden' is not a valid"),
        (HEADER + "E003\tH3K4me3\tdata/a.bw\t..\t\n", r"line 2: individual '\.\.' is not a valid"),
        (
            HEADER + "E003\tH3K4me3\tdata/a.bw\td@1\t\n",
            r"line 2: individual 'd@1' is not a valid name",
        ),
        (HEADER + "E003\tH3K4me3\tdata/absent.bw\t\t\n", r"line 2: .*absent\.bw: no such file"),
        (HEADER + "E003\tH3K4me3\tdata/a.bed\t\t\n", r"line 2: .*a\.bed: unknown file type"),
        (
            HEADER + "E003\tH3K4me3\tdata/a.bw\t\t\nE003\tH3K4me3\tdata/d.bdg\t\t\n",
            r"line 3: track E003:H3K4me3 is already listed \(.*samples\.tsv, line 2\)",
        ),
        (
            HEADER + "E003\tDNase\tdata/chr1.npy\t\tchr1\nE003\tDNase\tdata/chr2.npy\t\tchr1\n",
            r"line 3: track E003:DNase is already listed",
        ),
        (HEADER + "E003\tDNase\tdata/a.bw\t\tchr1\n", r"line 2: the chrom column applies only"),
        (HEADER + "E003\tDNase\tdata/chr1.npy\t\t\n", r"line 2: .*chr1\.npy holds one contig"),
    ],
)
def test_bad_sheets_name_the_sheet_and_line(tmp_path, data, text, message):
    sheet = write_sheet(tmp_path, text)
    with pytest.raises(InputError, match=message):
        read_sample_sheet(sheet)


def test_same_track_twice_is_allowed_for_distinct_individuals(tmp_path, data):
    sheet = write_sheet(
        tmp_path, HEADER + "E003\tH3K4me3\tdata/a.bw\td1\t\nE003\tH3K4me3\tdata/d.bdg\td2\t\n"
    )
    assert [s.biosample for s in read_sample_sheet(sheet)] == ["E003@d1", "E003@d2"]


def test_missing_sheet(tmp_path):
    with pytest.raises(InputError, match=r"absent\.tsv: no such file"):
        read_sample_sheet(tmp_path / "absent.tsv")


def test_check_samples_on_specs_built_in_code(data):
    spec = SampleSpec("E003", "H3K4me3", data / "a.bw")
    check_samples([spec])
    with pytest.raises(
        InputError, match=r"sample list: sample E003:H3K4me3: track E003:H3K4me3 is already"
    ):
        check_samples([spec, SampleSpec("E003", "H3K4me3", data / "b.bigWig")])
    with pytest.raises(InputError, match="no samples"):
        check_samples([])
    assert isinstance(spec.path, Path)

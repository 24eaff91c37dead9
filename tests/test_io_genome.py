import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from epimpute.errors import InputError
from epimpute.io.genome import check_contigs, contig_alias, one_hot, open_genome

# ../shared/data beside the repository (one level further up from a git worktree).
SEQUENCE = next((p / "shared" / "data" / "sequence" for p in Path(__file__).resolve().parents[1:4]
                 if (p / "shared" / "data" / "sequence").is_dir()),
                Path(__file__).resolve().parents[2] / "shared" / "data" / "sequence")
CONTIGS = {"chrA": "ACGTNacgtnRYacgtACGTTTTTggccAANNNNGT", "chrB": "GGGcccTTTaaaN"}


def write_2bit(path: Path, sequences: dict[str, str]) -> None:
    """Write ``sequences`` as UCSC 2bit (format: the UCSC 'twoBit' file description).

    Header of four little-endian uint32 (signature 0x1A412743, version 0, count, 0), an
    index of (name length byte, name, uint32 offset), then per sequence: length, N blocks,
    lowercase blocks, a reserved word and the bases at 2 bits each (T C A G = 0 1 2 3,
    first base in the high bits). Bases other than ACGT are stored as N blocks.
    """
    code = {"T": 0, "C": 1, "A": 2, "G": 3}

    def blocks(flags: list[bool]) -> list[tuple[int, int]]:
        runs, start = [], None
        for i, flag in enumerate([*flags, False]):
            if flag and start is None:
                start = i
            elif not flag and start is not None:
                runs.append((start, i - start))
                start = None
        return runs

    records = []
    for seq in sequences.values():
        n_runs = blocks([b.upper() not in code for b in seq])
        mask_runs = blocks([b.islower() for b in seq])
        packed = bytearray()
        for i in range(0, len(seq), 4):
            byte = 0
            for j in range(4):
                base = seq[i + j].upper() if i + j < len(seq) else "T"
                byte = (byte << 2) | code.get(base, 0)
            packed.append(byte)
        record = struct.pack("<II", len(seq), len(n_runs))
        record += b"".join(struct.pack("<I", s) for s, _ in n_runs)
        record += b"".join(struct.pack("<I", n) for _, n in n_runs)
        record += struct.pack("<I", len(mask_runs))
        record += b"".join(struct.pack("<I", s) for s, _ in mask_runs)
        record += b"".join(struct.pack("<I", n) for _, n in mask_runs)
        records.append(record + struct.pack("<I", 0) + bytes(packed))
    header = struct.pack("<IIII", 0x1A412743, 0, len(sequences), 0)
    index_size = sum(1 + len(name) + 4 for name in sequences)
    offset = len(header) + index_size
    index = b""
    for name, record in zip(sequences, records):
        index += bytes([len(name)]) + name.encode() + struct.pack("<I", offset)
        offset += len(record)
    path.write_bytes(header + index + b"".join(records))


def write_fasta(path: Path, sequences: dict[str, str], *, compress: str = "none",
                width: int = 10) -> Path:
    text = "".join(f">{name} description\n" + "".join(
        seq[i:i + width] + "\n" for i in range(0, len(seq), width))
        for name, seq in sequences.items()).encode()
    if compress == "gzip":
        path.write_bytes(gzip.compress(text))
    elif compress == "bgzip":
        from Bio import bgzf

        with bgzf.BgzfWriter(str(path), "wb") as fh:
            fh.write(text)
    else:
        path.write_bytes(text)
    return path


@pytest.fixture(params=["fasta", "gzip", "bgzip", "2bit"])
def genome_file(request, tmp_path) -> Path:
    if request.param == "2bit":
        path = tmp_path / "g.2bit"
        write_2bit(path, CONTIGS)
        return path
    if request.param == "fasta":
        return write_fasta(tmp_path / "g.fa", CONTIGS)
    return write_fasta(tmp_path / "g.fa.gz", CONTIGS, compress=request.param)


def test_every_format_reads_the_same_bases(genome_file):
    with open_genome(genome_file) as genome:
        assert genome.contigs == {name: len(seq) for name, seq in CONTIGS.items()}
        for name, seq in CONTIGS.items():
            if genome_file.suffix == ".2bit":  # 2bit stores only ACGT and N
                seq = "".join(b if b.upper() in "ACGT" else "N" for b in seq)
            assert genome.fetch(name, 0, len(seq)) == seq
            assert genome.fetch(name, 3, 9) == seq[3:9]
            np.testing.assert_array_equal(genome.one_hot(name, 0, len(seq)), one_hot(seq))
        assert genome.fetch("chrB", 0, 6) == "GGGccc"  # soft-masking kept


def test_outside_the_contig_is_padded_with_n(genome_file):
    with open_genome(genome_file) as genome:
        assert genome.fetch("chrB", -3, 2) == "NNNGG"
        assert genome.fetch("chrB", 11, 16) == "aNNNN".replace("a", CONTIGS["chrB"][11])
        assert genome.fetch("chrB", 20, 23) == "NNN"
        assert genome.fetch("chrB", -2, 15) == "NN" + CONTIGS["chrB"] + "NN"
        assert genome.one_hot("chrB", -1, 1).tolist() == [[0, 0], [0, 0], [0, 1], [0, 0]]


def test_one_hot_channels_lowercase_and_ambiguity():
    x = one_hot("ACGTacgtNnRY-")
    assert x.shape == (4, 13) and x.dtype == np.float32
    expected = np.zeros((4, 13))
    for i in range(8):
        expected[i % 4, i] = 1
    np.testing.assert_array_equal(x, expected)
    assert one_hot(b"GG", dtype=np.uint8).tolist() == [[0, 0], [0, 0], [1, 1], [0, 0]]


def test_contig_checks_name_the_file_and_hint_aliases(tmp_path):
    path = write_fasta(tmp_path / "g.fa", {"22": "ACGT" * 5, "MT": "AC"})
    with open_genome(path) as genome:
        check_contigs(genome, {"22": 20})
        with pytest.raises(InputError, match=r"g\.fa: no contig 'chr22' \(it has '22'"):
            check_contigs(genome, {"chr22": 20})
        with pytest.raises(InputError, match=r"g\.fa: contig '22' has 20 bases, but the store "
                                             r"has 21"):
            check_contigs(genome, {"22": 21})
        with pytest.raises(InputError, match=r"no contig 'chrM' \(it has 'MT'"):
            genome.fetch("chrM", 0, 1)
        with pytest.raises(InputError, match=r"no contig 'chr1'$"):
            genome.fetch("chr1", 0, 1)
    assert contig_alias("chr7", ["7"]) == "7" and contig_alias("7", ["chr8"]) is None


@pytest.mark.parametrize("content, message", [
    (b"", r"no sequences found"),
    (b"ACGT\n>x\nAC\n", r"line 1: sequence before the first '>'"),
    (b">a\nAC\n>a\nGG\n", r"contig 'a' is listed twice"),
    (b">\nAC\n", r"line 1: sequence without a name"),
])
def test_bad_fasta_is_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.fa.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(InputError, match=r"bad\.fa\.gz(, |: )" + message):
        open_genome(path)


def test_missing_and_non_fasta_files(tmp_path):
    with pytest.raises(InputError, match=r"nope\.fa: no such genome file"):
        open_genome(tmp_path / "nope.fa")
    path = tmp_path / "junk.fa"
    path.write_bytes(b"\x00\x01binary")
    with pytest.raises(InputError, match=r"junk\.fa: cannot be indexed as FASTA"):
        open_genome(path)


def test_real_hg19_slice_plain_gzip_soft_masked():
    path = SEQUENCE / "hg19.chr22_1-22000000.fa.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found (../shared/data absent)")
    with open_genome(path) as genome:
        assert genome.contigs == {"22": 22_000_000}
        assert set(genome.fetch("22", 0, 16_000_000)[::1000]) == {"N"}
        window = genome.fetch("22", 17_000_000, 17_100_000)
        assert "N" not in window.upper() and any(b.islower() for b in window)
        x = genome.one_hot("22", 17_000_000, 17_100_000)
        np.testing.assert_array_equal(x.sum(axis=0), 1)
        with pytest.raises(InputError, match=r"no contig 'chr22' \(it has '22'"):
            check_contigs(genome, {"chr22": 51_304_566})


def test_real_hg38_bgzip_with_index_matches_plain_decompression():
    path = SEQUENCE / "hg38.chr2_1-2333275.fa.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found (../shared/data absent)")
    with gzip.open(path, "rt") as fh:
        lines = fh.read().split("\n")
    truth = "".join(lines[1:])
    with open_genome(path) as genome:
        assert genome.contigs == {"chr2": len(truth)}
        for start in (0, 1_000_003, len(truth) - 7):
            assert genome.fetch("chr2", start, start + 50) == (truth[start:start + 50] + "N" * 50)[:50]

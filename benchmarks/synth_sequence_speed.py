"""Time and peak memory of ``epimpute synth-sequence`` on the real hg19 chr22 slice.

Times each stage separately: reading the plain-gzip FASTA into memory and fetching the
window, generating (motif scans, sites, genes, variants, tracks) and writing the store. The
first memelite scan of a fresh environment also compiles its numba kernels (cached on disk
afterwards); ``--warm`` runs one small scan first so that the figure is the scan alone.
CPU time is printed beside wall time because the machine may be busy.

    PYTHONPATH=src python benchmarks/synth_sequence_speed.py --cell-types 6 --warm
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from epimpute.io.genome import one_hot, open_genome
from epimpute.motifs import jaspar_motifs, scan
from epimpute.synthetic_sequence import SequenceSpec, generate, write_store

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "sequence" / \
    "hg19.chr22_1-22000000.fa.gz"


def _clock() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genome", type=Path, default=DEFAULT)
    parser.add_argument("--cell-types", type=int, default=6)
    parser.add_argument("--start", type=int, default=16_050_000)
    parser.add_argument("--end", type=int, default=22_000_000)
    parser.add_argument("--warm", action="store_true", help="compile memelite's kernels first")
    args = parser.parse_args()
    if args.warm:
        scan(jaspar_motifs(["CTCF"]), one_hot("ACGT" * 100), threshold=1e-4)
    spec = SequenceSpec(n_cell_types=args.cell_types, start=args.start, end=args.end)
    stages = {}
    t, c = _clock()
    with open_genome(args.genome) as genome:
        sequence = genome.fetch(spec.contig, spec.start, spec.end)
        length = genome.contigs[spec.contig]
    stages["read genome"] = _clock()
    compendium = generate(sequence, spec, contig_length=length)
    stages["generate"] = _clock()
    with tempfile.TemporaryDirectory() as folder:
        write_store(compendium, Path(folder) / "seq.zarr")
        stages["write store"] = _clock()
    for name, (t1, c1) in stages.items():
        print(f"{name:12s} wall {t1 - t:6.2f} s  cpu {c1 - c:6.2f} s")
        t, c = t1, c1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_bins = (spec.end - spec.start) // spec.bin_size
    print(f"{spec.end - spec.start:,} bp ({n_bins:,} bins), {len(compendium.signal)} tracks, "
          f"{len(compendium.sites)} sites, {len(compendium.genes)} genes, "
          f"{len(compendium.variants)} variants; peak RSS {peak:.0f} MB")
    print(f"site shares: {compendium.sites['role'].value_counts(normalize=True).round(3).to_dict()}")
    print(f"mean ATAC (arcsinh) {np.mean([np.arcsinh(v).mean() for k, v in compendium.signal.items() if k[1] == 'ATAC']):.3f}")


if __name__ == "__main__":
    main()

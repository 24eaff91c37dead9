"""Ingest throughput and memory on bigWigs of hg38 size.

Writes synthetic bigWigs over real hg38 contig lengths (a dense piecewise-constant
background plus random peaks and broad domains, from a fixed seed), then ingests them into
a store with ``--jobs 1`` and ``--jobs 2`` and prints bins per second (per core: divided
by the jobs), bins per CPU second (per-core speed whatever else loads the machine), the CPU
use of each run, the number of worker processes seen and the peak resident memory of the ingesting process and of its largest
worker. A second part ingests one file restricted to one contig at a time (chr1, then the
smallest contig chosen) to show that memory does not grow with the contig's length.

Every ingest runs in a fresh subprocess so that peak-memory figures are its own. Run from
the repository root, e.g.::

    PYTHONPATH=src python benchmarks/ingest_scale.py                     # chr1, chr21, chr22
    PYTHONPATH=src python benchmarks/ingest_scale.py --genome --files 2  # chr1-22, X, Y
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyBigWig
from tqdm.auto import tqdm

# hg38 (GRCh38) primary contig lengths in bases
HG38 = {
    "chr1": 248_956_422, "chr2": 242_193_529, "chr3": 198_295_559, "chr4": 190_214_555,
    "chr5": 181_538_259, "chr6": 170_805_979, "chr7": 159_345_973, "chr8": 145_138_636,
    "chr9": 138_394_717, "chr10": 133_797_422, "chr11": 135_086_622, "chr12": 133_275_309,
    "chr13": 114_364_328, "chr14": 107_043_718, "chr15": 101_991_189, "chr16": 90_338_345,
    "chr17": 83_257_441, "chr18": 80_373_285, "chr19": 58_617_616, "chr20": 64_444_167,
    "chr21": 46_709_983, "chr22": 50_818_468, "chrX": 156_040_895, "chrY": 57_227_415,
}
_WRITE_BATCH = 1_000_000


def synthetic_intervals(
    rng: np.random.Generator, length: int, mean_interval: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint sorted intervals covering most of ``[0, length)`` with a peaky signal.

    Background segments have exponential lengths (mean ``mean_interval``) and low values;
    a quarter of them are left empty (no data). Peaks (150-1,500 bp, about one per 20 kb)
    and broad domains (10-200 kb, about one per 500 kb) add to the segments they cover.
    """
    n = int(length / mean_interval * 1.1) + 1
    cuts = np.cumsum(np.maximum(1, rng.exponential(mean_interval, size=n)).astype(np.int64))
    cuts = cuts[cuts < length]
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [length]))
    values = rng.gamma(2.0, 0.25, size=starts.size)
    boost = np.zeros(starts.size + 1)
    for count, low, high, height in ((length // 20_000, 150, 1_500, (5.0, 50.0)),
                                     (length // 500_000, 10_000, 200_000, (1.0, 4.0))):
        first = rng.integers(0, length, size=count)
        last = np.minimum(first + rng.integers(low, high, size=count), length)
        a = np.searchsorted(starts, first, side="right") - 1
        b = np.searchsorted(starts, last, side="left")
        heights = rng.uniform(*height, size=count)
        np.add.at(boost, a, heights)
        np.add.at(boost, b, -heights)
    values = values + np.cumsum(boost)[:-1]
    keep = rng.random(starts.size) >= 0.25
    return starts[keep], ends[keep], values[keep]


def write_synthetic_bigwig(path: Path, sizes: dict[str, int], *, seed: int,
                           mean_interval: int) -> int:
    """Write one synthetic bigWig; returns its number of intervals."""
    rng = np.random.default_rng(seed)
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()), maxZooms=10)
    total = 0
    try:
        for contig, length in sizes.items():
            starts, ends, values = synthetic_intervals(rng, length, mean_interval)
            total += starts.size
            for i in range(0, starts.size, _WRITE_BATCH):
                part = slice(i, i + _WRITE_BATCH)
                columns = [starts[part], ends[part], values[part]]
                if not pyBigWig.numpy:
                    columns = [c.tolist() for c in columns]
                bw.addEntries([contig] * len(columns[0]), columns[0], ends=columns[1],
                              values=columns[2])
    finally:
        bw.close()
    return total


class _TreeSampler:
    """Samples the resident memory of this process and its children every 0.1 s."""

    def __init__(self) -> None:
        self.peak_tree_rss = 0
        self.max_workers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> _TreeSampler:  # noqa: PYI034
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.1):
            rss, workers = _rss_kb(me), 0
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    ppid = int(stat.rsplit(")", 1)[1].split()[1])
                    if ppid != me:
                        continue
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                except (OSError, ValueError, IndexError):
                    continue
                rss += _rss_kb(int(entry))
                workers += b"spawn_main" in cmdline
            self.peak_tree_rss = max(self.peak_tree_rss, rss)
            self.max_workers = max(self.max_workers, workers)


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(sheet: str, out: str, jobs: int, chroms: list[str] | None, bin_size: int) -> None:
    """Run one ingest in this process and print its figures as one JSON line."""
    from epimpute.store import ingest

    start, cpu0 = time.perf_counter(), os.times()
    with _TreeSampler() as sampler:
        store = ingest(sheet, out, jobs=jobs, chroms=chroms, bin_size=bin_size)
    wall, cpu1 = time.perf_counter() - start, os.times()
    cpu = sum(cpu1[:4]) - sum(cpu0[:4])
    bins = len(store.tracks) * sum(store.n_bins(c) for c in store.contigs)
    print(json.dumps({
        "wall_s": wall, "cpu_s": cpu, "bins": bins, "max_workers": sampler.max_workers,
        "self_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "tree_rss_mb": sampler.peak_tree_rss / 1024,
    }))


def run_measure(sheet: Path, out: Path, jobs: int, chroms: list[str] | None,
                bin_size: int) -> dict[str, float]:
    """Ingest in a fresh subprocess and return its figures."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, __file__, "--measure", str(sheet), str(out), str(jobs),
               ",".join(chroms or []), str(bin_size)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chroms", default="chr1,chr21,chr22",
                        help="comma-separated hg38 contigs to generate (default %(default)s)")
    parser.add_argument("--genome", action="store_true", help="all of chr1-22, X and Y")
    parser.add_argument("--files", type=int, default=4, help="bigWigs to ingest")
    parser.add_argument("--jobs", default="1,2", help="--jobs values to compare")
    parser.add_argument("--mean-interval", type=int, default=200,
                        help="mean background interval length in bases")
    parser.add_argument("--bin-size", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", default="chr21",
                        help="small contig compared with chr1 for memory")
    parser.add_argument("--workdir", type=Path, help="keep the generated files here")
    args = parser.parse_args()
    names = list(HG38) if args.genome else args.chroms.split(",")
    unknown = [c for c in names if c not in HG38]
    if unknown:
        parser.error(f"not hg38 contigs: {', '.join(unknown)}")
    sizes = {c: HG38[c] for c in names}
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ingest_scale."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        _benchmark(args, sizes, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def _benchmark(args: argparse.Namespace, sizes: dict[str, int], work: Path) -> None:
    bases = sum(sizes.values())
    print(f"contigs {', '.join(sizes)}: {bases / 1e6:.1f} Mbp, "
          f"{sum(-(-n // args.bin_size) for n in sizes.values()) / 1e6:.2f} M bins per file; "
          f"{args.files} files, CPUs {os.cpu_count()}, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    paths, intervals = [], 0
    start = time.perf_counter()
    for i in tqdm(range(args.files), desc="write bigWigs", unit="file"):
        path = work / f"track{i}.bw"
        if not path.exists():
            intervals += write_synthetic_bigwig(path, sizes, seed=args.seed + i,
                                                mean_interval=args.mean_interval)
        paths.append(path)
    print(f"wrote {intervals:,} intervals in {time.perf_counter() - start:.1f} s "
          f"({sum(p.stat().st_size for p in paths) / 2**20:.0f} MiB)")
    sheet = work / "samples.tsv"
    sheet.write_text("cell_type\tassay\tpath\n"
                     + "".join(f"C{i}\tsignal\t{p.name}\n" for i, p in enumerate(paths)))

    print(f"\n{'jobs':>4} {'wall s':>7} {'CPU/wall':>8} {'workers':>7} {'M bins/s':>8} "
          f"{'M bins/s/core':>13} {'M bins/CPU s':>12} {'main MB':>8} {'worker MB':>9} {'all MB':>7}")
    for jobs in (int(j) for j in args.jobs.split(",")):
        r = run_measure(sheet, work / "store.zarr", jobs, None, args.bin_size)
        rate = r["bins"] / r["wall_s"] / 1e6
        print(f"{jobs:>4} {r['wall_s']:>7.1f} {r['cpu_s'] / r['wall_s']:>8.2f} "
              f"{r['max_workers']:>7} {rate:>8.2f} {rate / jobs:>13.2f} "
              f"{r['bins'] / r['cpu_s'] / 1e6:>12.2f} "
              f"{r['self_rss_mb']:>8.0f} {r['worker_rss_mb'] if jobs > 1 else 0:>9.0f} "
              f"{r['tree_rss_mb']:>7.0f}")

    print("\npeak memory by contig length (one file, --jobs 1):")
    one = work / "one.tsv"
    one.write_text(f"cell_type\tassay\tpath\nC0\tsignal\t{paths[0].name}\n")
    for contig in dict.fromkeys(c for c in ("chr1", args.small) if c in sizes):
        r = run_measure(one, work / "store.zarr", 1, [contig], args.bin_size)
        print(f"  {contig:>6}: {sizes[contig] / 1e6:6.1f} Mbp, {r['bins'] / 1e6:5.2f} M bins, "
              f"peak RSS {r['self_rss_mb']:.0f} MB, {r['wall_s']:.1f} s "
              f"(a whole-contig float32 row would be {r['bins'] * 4 / 2**20:.0f} MiB)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        _, _, sheet_arg, out_arg, jobs_arg, chroms_arg, bin_arg = sys.argv
        measure(sheet_arg, out_arg, int(jobs_arg), chroms_arg.split(",") if chroms_arg else None,
                int(bin_arg))
    else:
        main()

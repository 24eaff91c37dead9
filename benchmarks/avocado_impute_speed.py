"""Time and peak memory of Avocado imputation on a compendium of ENCODE2018-Core shape.

Builds a random store laid out like the ENCODE 2018 core compendium (400 biosamples x 84
assays, 3,814 observed tracks, one contig), an Avocado network of the ``paper`` sizes (the
preset the store's size selects) with random weights, and times
``AvocadoImputer.impute_region`` for ``--targets`` unobserved pairs over ``--bins`` bins.
The machine may be busy: the CPU time of the process (user, and system time, which
counts the zeroing of freshly touched pages) is printed beside the wall time. Peak memory
is the process's resident high-water mark during imputation, reset first
(``/proc/self/clear_refs``, Linux), and also printed net of the memory held before.

Also times reading every input track of the region from the store, which imputing with
Avocado does not need (``Imputer.reads_signal`` is False).

    PYTHONPATH=src python benchmarks/avocado_impute_speed.py --bins 20000 --targets 100
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from epimpute.models.avocado import (
    Avocado,
    AvocadoConfig,
    AvocadoImputer,
    GenomeFactors,
)
from epimpute.models.layout import Layout
from epimpute.store import Store, Track, create_store

N_BIOSAMPLES, N_ASSAYS, N_TRACKS = 400, 84, 3814


def build_store(path: Path, n_bins: int, seed: int) -> Store:
    """A random store of ENCODE2018-Core shape with one contig of ``n_bins`` 25-bp bins."""
    rng = np.random.default_rng(seed)
    pairs = rng.choice(N_BIOSAMPLES * N_ASSAYS, size=N_TRACKS, replace=False)
    tracks = [Track(f"B{p // N_ASSAYS:03d}", f"A{p % N_ASSAYS:02d}") for p in sorted(pairs)]
    writer = create_store(path, tracks=tracks, contigs={"chr1": n_bins * 25}, bin_size=25)
    for row in tqdm(range(N_TRACKS), desc="writing the random store", leave=False):
        writer.write(row, "chr1", rng.gamma(1.0, 1.0, n_bins).astype(np.float32))
    return Store.open(path)


def peak_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def resident(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` of this process in GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 2**20
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bins", type=int, default=20_000)
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--batch-bins", type=int, default=None,
                        help="AvocadoImputer batch_bins (default: the imputer's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", type=Path, default=None,
                        help="reuse (or create) the random store here")
    parser.add_argument("--save", type=Path, default=None,
                        help="write the imputed values to this .npy (to compare versions)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.store or Path(tmp) / "encode_core.zarr"
        store = Store.open(path) if path.exists() else build_store(path, args.bins, args.seed)
        layout = Layout.from_keys([t.key for t in store.tracks], bin_size=25,
                                  biosamples=store.biosamples, assays=store.assays)
        config = AvocadoConfig().resolve(len(layout.tracks))
        torch.manual_seed(args.seed)
        network = Avocado(layout, config)
        factors = GenomeFactors.for_contig(store.n_bins("chr1"), config)
        options = {} if args.batch_bins is None else {"batch_bins": args.batch_bins}
        imputer = AvocadoImputer(network, {"chr1": factors}, **options)
        observed = set(layout.tracks)
        rng = np.random.default_rng(args.seed + 1)
        targets: list[tuple[int, int]] = []
        while len(targets) < args.targets:
            pair = (int(rng.integers(layout.n_biosamples)), int(rng.integers(layout.n_assays)))
            if pair not in observed and pair not in targets:
                targets.append(pair)
        n_bins = min(args.bins, store.n_bins("chr1"))

        started = time.perf_counter()
        signal = store.read("chr1", 0, n_bins)
        read_seconds = time.perf_counter() - started
        del signal

        # Avocado uses only the region's length: a zero-strided array stands in for it
        placeholder = np.broadcast_to(np.float32(0), (len(layout.tracks), n_bins))
        available = np.ones(len(layout.tracks), bool)
        before = resident("VmRSS")
        peak_reset()
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        imputed = imputer.impute_region(placeholder, available, targets, contig="chr1",
                                        start=0)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        peak = resident("VmHWM")
        if args.save is not None:
            np.save(args.save, imputed)

    print(f"preset {config.preset}: {config.celltype_factors} cell-type, {config.assay_factors} "
          f"assay, {'/'.join(map(str, config.genome_factors))} genome factors, hidden "
          f"{'x'.join(map(str, config.hidden))}, {config.members} member(s)")
    print(f"{len(targets)} targets x {n_bins} bins, {args.threads} threads, batch_bins "
          f"{imputer.batch_bins}")
    print(f"impute_region: {seconds:.1f} s, {seconds / n_bins * 1e3:.2f} ms per bin "
          f"({seconds / n_bins * 20_000:.1f} s per 20,000 bins)")
    print(f"CPU time: {after.ru_utime - cpu.ru_utime:.1f} s user, "
          f"{after.ru_stime - cpu.ru_stime:.1f} s system (page faults: "
          f"{after.ru_minflt - cpu.ru_minflt})")
    print(f"peak resident memory: {peak:.2f} GB ({peak - before:.2f} GB above the "
          f"{before:.2f} GB held before imputing)")
    print(f"reading all {len(layout.tracks)} input tracks of the region (not needed): "
          f"{read_seconds:.1f} s")


if __name__ == "__main__":
    main()

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

Imputation runs once per ``--precision`` (fp32, and bf16 as ``--precision bf16`` on the
command line gives it: a bf16 autocast around ``impute_region``), and the bf16 values are
compared with the fp32 ones (max absolute and relative error). The multiply-adds per
(target, bin) follow from the layer sizes; the achieved GFLOP/s are set beside the
machine's own matrix speed, measured here with ``torch.matmul`` on ``--threads`` threads
(a 2048 x 256 @ 256 x 256 product, and the decoder's tile, GRID_ROWS x 2048 @ 2048 x 2048).
``--tile-rows`` overrides ``GRID_ROWS``.

``--train-epochs N`` also times N epochs of stage-1 training on the same store (all
``--bins`` positions, every track an input, the training defaults): seconds per epoch,
positions (bins) per second and peak resident memory.

    PYTHONPATH=src python benchmarks/avocado_impute_speed.py --bins 20000 --targets 100
    PYTHONPATH=src python benchmarks/avocado_impute_speed.py --bins 20000 --targets 0 \
        --train-epochs 3
"""

from __future__ import annotations

import argparse
import itertools
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import epimpute.models.avocado.network as network_module
from epimpute.hardware import autocast
from epimpute.models.avocado import (
    Avocado,
    AvocadoConfig,
    AvocadoImputer,
    GenomeFactors,
)
from epimpute.models.layout import Layout
from epimpute.store import Store, Track, create_store
from epimpute.training.avocado import AvocadoTrainingConfig, train_stage1
from epimpute.training.data import store_layout
from epimpute.training.loop import RunSettings

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


def matmul_gflops(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 2.0
                  ) -> tuple[float, float]:
    """GFLOP/s of ``(m, k) @ (k, n)`` products in ``dtype`` over about ``seconds``: per
    second of wall time and per CPU second of this process (all threads)."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    out = a @ b
    count, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds or count < 3:
        torch.matmul(a, b, out=out)
        count += 1
    flops = 2 * m * k * n * count / 1e9
    return flops / (time.perf_counter() - started), flops / (time.process_time() - cpu)


def flops_per_track_bin(config: AvocadoConfig, n_targets: int, n_bins: int) -> tuple[float, float]:
    """Floating-point operations per (target, bin): the factorised decoder as imputed
    (first layer's genome part shared by the targets, its pair part by the bins) and the
    plain decoder on the concatenated input."""
    hidden = config.hidden
    pair, genome = config.celltype_factors + config.assay_factors, config.n_genome_features
    rest = sum(2 * a * b for a, b in zip(hidden, hidden[1:] + (1,)))
    first_split = (2 * genome * hidden[0] / max(n_targets, 1) + 2 * pair * hidden[0] / n_bins
                   + hidden[0])
    return (config.members * (first_split + rest),
            config.members * (2 * (pair + genome) * hidden[0] + rest))


def time_imputation(imputer: AvocadoImputer, targets: list[tuple[int, int]], n_bins: int,
                    n_tracks: int, bf16: bool) -> dict[str, float | np.ndarray]:
    """Impute ``targets`` over ``n_bins`` bins, under a bf16 autocast when ``bf16``."""
    # Avocado uses only the region's length: a zero-strided array stands in for it
    placeholder = np.broadcast_to(np.float32(0), (n_tracks, n_bins))
    available = np.ones(n_tracks, bool)
    before = resident("VmRSS")
    peak_reset()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with autocast(torch.device("cpu"), enabled=bf16):
        imputed = imputer.impute_region(placeholder, available, targets, contig="chr1",
                                        start=0)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"values": imputed, "seconds": seconds, "before": before, "peak": resident("VmHWM"),
            "user": after.ru_utime - cpu.ru_utime, "system": after.ru_stime - cpu.ru_stime,
            "faults": after.ru_minflt - cpu.ru_minflt}


def time_training(store: Store, epochs: int, seed: int) -> None:
    """Stage-1 epochs of the default training over the whole store; prints the figures."""
    layout = store_layout(store)
    rows = list(range(len(store.tracks)))
    config = AvocadoConfig().resolve(len(rows))
    training = AvocadoTrainingConfig(max_epochs=epochs, patience=epochs + 1)
    blocks = [("chr1", 0, store.n_bins("chr1"))]
    before = resident("VmRSS")
    peak_reset()
    started = time.perf_counter()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    _, _, data, history = train_stage1(
        store, layout, rows, blocks, config=config, training=training,
        settings=RunSettings(seed=seed, device="cpu", progress=True))
    after = resource.getrusage(resource.RUSAGE_SELF)
    total = time.perf_counter() - started
    peak = resident("VmHWM")
    ends = [0.0] + [e["seconds"] for e in history.epochs]
    per_epoch = [b - a for a, b in itertools.pairwise(ends)]
    positions = history.epochs[-1]["bins"]
    print(f"training ({config.preset} preset, batch {training.batch_size}, stage 1, "
          f"{len(data)} positions, {positions} trained per epoch, validation included): "
          f"epochs {', '.join(f'{t:.1f}' for t in per_epoch)} s; "
          f"{positions / min(per_epoch):,.0f} bins/s at best")
    print(f"training: {total:.1f} s in all (loading included), CPU "
          f"{after.ru_utime - cpu.ru_utime:.1f} s user + {after.ru_stime - cpu.ru_stime:.1f} s "
          f"system; peak resident {peak * 1024:.0f} MiB ({(peak - before) * 1024:.0f} MiB "
          f"above the {before * 1024:.0f} MiB held before)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bins", type=int, default=20_000)
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--batch-bins", type=int, default=None,
                        help="AvocadoImputer batch_bins (default: the imputer's)")
    parser.add_argument("--tile-rows", type=int, default=None,
                        help="(target, bin) rows per decoder tile (default: GRID_ROWS)")
    parser.add_argument("--precision", nargs="+", choices=("fp32", "bf16"),
                        default=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-epochs", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", type=Path, default=None,
                        help="reuse (or create) the random store here")
    parser.add_argument("--save", type=Path, default=None,
                        help="write the imputed values to this .npy (to compare versions)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.tile_rows is not None:
        network_module.GRID_ROWS = args.tile_rows

    speeds = [f"{m}x{k}@{k}x{n} {name} {wall:.0f} GFLOP/s ({cpu:.0f} per CPU second)"
              for m, k, n in ((2048, 256, 256), (network_module.GRID_ROWS, 2048, 2048))
              for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
              for wall, cpu in [matmul_gflops(m, k, n, dtype)]]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads: matmul "
          + ", ".join(speeds))
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
        print(f"preset {config.preset}: {config.celltype_factors} cell-type, "
              f"{config.assay_factors} assay, {'/'.join(map(str, config.genome_factors))} "
              f"genome factors, hidden {'x'.join(map(str, config.hidden))}, "
              f"{config.members} member(s)")

        if targets:
            started = time.perf_counter()
            signal = store.read("chr1", 0, n_bins)
            read_seconds = time.perf_counter() - started
            del signal
            split, plain = flops_per_track_bin(config, len(targets), n_bins)
            print(f"{len(targets)} targets x {n_bins} bins, batch_bins {imputer.batch_bins}, "
                  f"tiles of {network_module.GRID_ROWS} rows; {split / 1e6:.2f} MFLOP per "
                  f"target-bin factorised ({plain / 1e6:.2f} MFLOP unfactorised)")
            runs = {}
            for precision in args.precision:
                run = runs[precision] = time_imputation(
                    imputer, targets, n_bins, len(layout.tracks), precision == "bf16")
                seconds = run["seconds"]
                print(f"{precision}: impute_region {seconds:.1f} s "
                      f"({seconds / n_bins * 20_000:.1f} s per 20,000 bins), "
                      f"{split * len(targets) * n_bins / seconds / 1e9:.0f} GFLOP/s "
                      f"({split * len(targets) * n_bins / (run['user'] + run['system']) / 1e9:.0f} "
                      f"per CPU second); CPU "
                      f"{run['user']:.1f} s user + {run['system']:.1f} s system "
                      f"({run['faults']} page faults); peak resident {run['peak']:.2f} GB "
                      f"({run['peak'] - run['before']:.2f} GB above the {run['before']:.2f} GB "
                      f"held before)")
            if "fp32" in runs and "bf16" in runs:
                exact, reduced = runs["fp32"]["values"], runs["bf16"]["values"]
                error = np.abs(reduced - exact)
                scale = np.abs(exact).max(axis=1, keepdims=True)
                print(f"bf16 vs fp32: max abs error {error.max():.2e} (values up to "
                      f"{np.abs(exact).max():.3f}), max relative to each track's largest "
                      f"value {(error / scale).max():.2e}, RMS {np.sqrt((error ** 2).mean()):.2e}")
            if args.save is not None:
                np.save(args.save, runs[args.precision[0]]["values"])
            print(f"reading all {len(layout.tracks)} input tracks of the region (not needed): "
                  f"{read_seconds:.1f} s")
        if args.train_epochs:
            del imputer, network, factors
            time_training(store, args.train_epochs, args.seed)


if __name__ == "__main__":
    main()

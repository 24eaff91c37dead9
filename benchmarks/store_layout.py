"""Read throughput of the store's chunk layout against alternatives, for both access patterns.

Patterns: *track* (one track genome-wide: training on a track, export, evaluation) and
*region* (every track over a window of bins: imputation, eDICE training batches). Layouts:

- ``today``: chunks (1, 131072), zarr's default codec (zstd);
- ``blocks``: chunks (64, 16384), Blosc zstd level 3 with byte shuffle;
- ``sharded``: shards (64, 131072) of inner chunks (64, 16384), Blosc zstd + shuffle
  (zarr v3 sharding: one file per shard, chunks read individually).

The data are a generated ENCODE-like compendium (``--like``, default the Roadmap-like
pattern), so values compress as real signal would. Run::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/store_layout.py --bins 524288
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from epimpute.store import Store
from epimpute.synthetic_compendium import resolve_pattern, synthesize

BLOSC = BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.shuffle)


def make_layouts(source: Store, contig: str, work: Path) -> dict[str, zarr.Array]:
    data = source.read(contig)
    arrays = {"today": zarr.open_array(source.path / "signal" / contig, mode="r")}
    blocks = zarr.create_array(work / "blocks", shape=data.shape, chunks=(64, 16384),
                               dtype="float32", compressors=[BLOSC], fill_value=0.0)
    blocks[:] = data
    arrays["blocks"] = blocks
    sharded = zarr.create_array(work / "sharded", shape=data.shape, chunks=(64, 16384),
                                shards=(64, 131072), dtype="float32", compressors=[BLOSC],
                                fill_value=0.0)
    sharded[:] = data
    arrays["sharded"] = sharded
    assert all(np.array_equal(a[:, :1000], data[:, :1000]) for a in arrays.values())
    del data
    return arrays


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6


def timed(read, repeats: int) -> float:
    """Best wall seconds of ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        read()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--like", default="roadmap", help="pilot, roadmap or a manifest TSV")
    parser.add_argument("--bins", type=int, default=524_288)
    parser.add_argument("--region", type=int, default=16_384, help="bins of a region read")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/store_layout"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    store = synthesize(resolve_pattern(args.like), args.work / "today.zarr",
                       contigs={"chr1": 25 * args.bins})
    arrays = make_layouts(store, "chr1", args.work)
    n_tracks = len(store.tracks)
    rng = np.random.default_rng(0)
    rows = rng.choice(n_tracks, size=4, replace=False)
    starts = rng.integers(0, args.bins - args.region, size=4)
    print(f"{n_tracks} tracks x {args.bins:,} bins ({4 * n_tracks * args.bins / 1e9:.2f} GB "
          f"raw); region reads of {args.region:,} bins")
    print("layout | disk MB | one track genome-wide MB/s | all tracks, one region MB/s")
    print("--- | --- | --- | ---")
    paths = {"today": args.work / "today.zarr", "blocks": args.work / "blocks",
             "sharded": args.work / "sharded"}
    for name, array in arrays.items():
        track = timed(lambda a=array: [a[int(r), :] for r in rows], args.repeats)
        region = timed(lambda a=array: [a[:, int(s):int(s) + args.region] for s in starts],
                       args.repeats)
        track_mb = 4 * len(rows) * args.bins / 1e6 / track
        region_mb = 4 * len(starts) * n_tracks * args.region / 1e6 / region
        print(f"{name} | {disk_mb(paths[name]):,.0f} | {track_mb:,.0f} | {region_mb:,.0f}")
    shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()

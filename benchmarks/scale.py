"""Cost of epimpute at the shapes of real compendia: one table of time and peak memory.

For each shape (pilot 5 x 5, Roadmap-like 127 x 24, ENCODE2018-Core 400 x 84) and each
genome length, the script generates a store (``epimpute synth``), trains each model for a
short budget and imputes with it, every command in its own process, and prints:

- store GB (on disk) and synth seconds;
- train bins/s: the training loop's own count of bins seen per second of training;
- impute track-bins/s: (targets x bins) / wall seconds of the ``impute`` command (start-up
  included): ``average`` imputes every missing track, the networks ``--targets`` of them;
- peak MiB: the command's maximum resident set size (``os.wait4``);
- FLOPs per track-bin, counted from the layer sizes of the trained network (shared work
  per bin divided over the targets, plus the per-target decoder).

Targets on 2 cores: >= 1 M track-bins/s for ``average``, >= 200 k for eDICE at the Roadmap
shape. Run from the repository root (quiet machine preferred)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/scale.py --lengths 200000,500000

Generated data go to ``--work`` (default ``benchmarks/results/scale``), removed per shape
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SHARED = Path(os.environ.get("EPIMPUTE_SHARED_DATA",
                             Path(__file__).resolve().parents[2] / "shared" / "data"))
ENCODE = SHARED / "ENCODE2018Core.tsv"
SHAPES = {"pilot": "pilot", "roadmap": "roadmap", "encode": str(ENCODE)}
TRAINING = {
    "edice": {"training": {"max_epochs": 1000}},
    "avocado": {"training": {"max_epochs": 1000}},
}


MAX_RSS_MIB = 4096.0
"""Commands growing past this resident size are stopped (the machine is shared)."""
STOPPED = -9


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run(args: list[str], *, timeout: float) -> tuple[float, float, int]:
    """Run ``python -m epimpute ARGS``; returns (wall seconds, peak MiB, exit status).

    A command past ``timeout`` seconds or :data:`MAX_RSS_MIB` is killed (status -9).
    """
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "epimpute", "-q", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline or rss_mib(process.pid) > MAX_RSS_MIB:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            print(f"  ! epimpute {args[0]} stopped after {time.perf_counter() - started:.0f} s"
                  f" at {usage.ru_maxrss / 1024:,.0f} MiB", file=sys.stderr)
            return time.perf_counter() - started, usage.ru_maxrss / 1024, STOPPED
        time.sleep(0.05)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        message = process.stderr.read().decode()[-400:] if process.stderr else ""
        print(f"  ! epimpute {' '.join(args[:1])} exited {code}: {message}", file=sys.stderr)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, code


def folder_gb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9


def flops_per_track_bin(model_dir: Path, n_targets: int) -> float | None:
    """Multiply-adds x 2 of the network's dense layers per imputed track-bin."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from epimpute.model_dir import load_model

    imputer = load_model(model_dir)
    if imputer.name == "average":
        return None
    layout = imputer.layout
    tokens = {"biosample_encoder": layout.n_biosamples, "assay_encoder": layout.n_assays}
    shared = per_target = 0.0
    for name, value in imputer.state_dict().items():
        if value.ndim != 2 or "embedding" in name or not name.endswith("weight"):
            continue
        if name.startswith(("genome", "pair_", "celltype", "assay_embedding")):
            continue
        encoder = next((k for k in tokens if name.startswith(k)), None)
        if encoder is None:
            per_target += 2 * value.numel()
        else:
            shared += 2 * value.numel() * tokens[encoder]
            if name.endswith("qkv.weight"):  # attention scores and weighted sums
                d = value.shape[1]
                shared += 4 * tokens[encoder] ** 2 * d
    return per_target + shared / max(n_targets, 1)


def bench_shape(shape: str, bins: int, work: Path, models: list[str], n_targets: int,
                minutes: float, timeout: float) -> Iterator[dict]:
    store = work / f"{shape}-{bins}.zarr"
    shutil.rmtree(store, ignore_errors=True)
    seconds, peak, code = run(["synth", "--like", SHAPES[shape], "--bins", str(bins),
                               "--out", str(store)], timeout=timeout)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from epimpute.store import Store

    opened = Store.open(store)
    base = {"shape": shape, "tracks": len(opened.tracks), "bins": bins,
            "store_gb": folder_gb(store), "synth_s": seconds, "synth_mib": peak}
    biosamples, assays, observed = opened.observed_matrix()
    missing = [f"{b}:{a}" for i, b in enumerate(biosamples) for j, a in enumerate(assays)
               if not observed[i, j]]
    for model in models:
        row = dict(base, model=model)
        model_dir = work / f"{shape}-{bins}-{model}"
        shutil.rmtree(model_dir, ignore_errors=True)
        config = work / f"{model}.json"
        config.write_text(json.dumps(TRAINING.get(model, {})))
        args = ["train", str(store), "--model", model, "--out", str(model_dir),
                "--device", "cpu"]
        if model != "average":
            args += ["--config", str(config), "--max-minutes", str(minutes)]
        seconds, peak, code = run(args, timeout=timeout)
        row["train_mib"], row["train_code"] = peak, code
        if code == 0 and model != "average":
            history = json.loads((model_dir / "config.json").read_text())["provenance"]["history"]
            row["train_bins_s"] = history["bins_seen"] / max(history["seconds"], 1e-9)
        if code != 0:
            yield row
            continue
        targets = missing if model == "average" else missing[:n_targets]
        if not targets:  # a fully observed shape: leave-one-out imputations instead
            targets = [t.key for t in opened.tracks][:n_targets]
        out = work / f"{shape}-{bins}-{model}-imputed.zarr"
        shutil.rmtree(out, ignore_errors=True)
        args = ["impute", str(model_dir), str(store), "--out", str(out), "--format", "zarr",
                "--device", "cpu", "--precision", "fp32"]
        args += ["--missing"] if model == "average" and missing else \
            [x for key in targets for x in ("--target", key)]
        seconds, peak, code = run(args, timeout=timeout)
        row.update(impute_targets=len(targets), impute_mib=peak, impute_code=code,
                   flops=flops_per_track_bin(model_dir, len(targets)))
        if code == 0:
            row["impute_track_bins_s"] = len(targets) * bins / seconds
        yield row
        shutil.rmtree(out, ignore_errors=True)


def fmt(value: float | None, digits: int = 0, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value / scale:,.{digits}f}"


def main() -> None:
    global MAX_RSS_MIB
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="pilot,roadmap,encode")
    parser.add_argument("--lengths", default="100000,200000", help="genome lengths in bins")
    parser.add_argument("--models", default="average,edice,avocado")
    parser.add_argument("--targets", type=int, default=32,
                        help="tracks the networks impute (average: every missing one)")
    parser.add_argument("--train-minutes", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=300, help="seconds per command")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/scale"))
    parser.add_argument("--keep", action="store_true", help="keep the generated stores")
    parser.add_argument("--max-rss-mib", type=float, default=MAX_RSS_MIB,
                        help="stop a command growing past this resident size")
    args = parser.parse_args()
    MAX_RSS_MIB = args.max_rss_mib
    if "encode" in args.shapes and not ENCODE.is_file():
        sys.exit(f"ENCODE2018-Core manifest not found at {ENCODE}; drop 'encode' from --shapes")
    args.work.mkdir(parents=True, exist_ok=True)
    header = ("shape", "tracks", "bins", "store GB", "synth s", "model", "train bins/s",
              "train MiB", "targets", "impute track-bins/s", "impute MiB", "FLOPs/track-bin",
              "note")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header), flush=True)
    for shape in args.shapes.split(","):
        for bins in (int(b) for b in args.lengths.split(",")):
            for r in bench_shape(shape, bins, args.work, args.models.split(","), args.targets,
                                 args.train_minutes, args.timeout):
                print_row(r)
            if not args.keep:
                for path in args.work.glob(f"{shape}-{bins}*"):
                    shutil.rmtree(path, ignore_errors=True)


def print_row(r: dict) -> None:
    note = {STOPPED: "stopped", None: "", 0: ""}
    r["note"] = "; ".join(f"{step} {note.get(r.get(f'{step}_code'), 'failed')}"
                          for step in ("train", "impute")
                          if note.get(r.get(f"{step}_code"), "failed"))
    print(" | ".join([r["shape"], str(r["tracks"]), f"{r['bins']:,}", fmt(r["store_gb"], 2),
                      fmt(r["synth_s"], 1), r["model"], fmt(r.get("train_bins_s")),
                      fmt(r.get("train_mib")), str(r.get("impute_targets", "-")),
                      fmt(r.get("impute_track_bins_s")), fmt(r.get("impute_mib")),
                      fmt(r.get("flops")), r["note"]]), flush=True)

if __name__ == "__main__":
    main()

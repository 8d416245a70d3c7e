"""Time and peak memory of ``scmib run`` (the embedded default) on the real data.

Runs the benchmark twice into a fresh folder: a first run (everything
computed) and a resumed run (everything reused), as separate processes, and
prints wall time, total CPU time and peak memory of each, per stage, and the
resumed/first ratio. With ``--cold-start-reference`` it also makes a first run
whose components start as new interpreters (``scmib run --cold-start``, how
every job started before the warm-start server) and gives the ratio; with
``--serial`` a ``--jobs 1`` run as a reference for the parallel speed-up; with
``--reference-src DIR`` a first run of the scmib package in DIR (an earlier
commit's ``src``, e.g. from ``git worktree add /tmp/before REV``) with these
components, so a change is timed against the code before it in one script.
All runs share one numba cache folder, filled before the first (an image or an
earlier run has it filled). The machine's speed (``machine_speed.py``) is measured
before the runs and printed at the top of the report, so figures from different
machines can be related.

    python benchmarks/run_benchmark.py --data_mirror ../shared/data [--profile test]
        [--cold-start-reference] [--serial] [--reference-src DIR] [--save-runs F] [--save-results DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from machine_speed import machine_speed  # benchmarks/ is on the path when this script runs


def timed_run(
    outdir: Path, profile: str, jobs: int, mirror: str | None, *extra: str, src: str | None = None
) -> dict[str, float]:
    cmd = [
        sys.executable,
        "-m",
        "scmib.cli",
        "run",
        "--profile",
        profile,
        "--outdir",
        str(outdir),
        "--jobs",
        str(jobs),
        "--no-progress",
        *extra,
    ]
    if mirror:
        cmd += ["--data_mirror", mirror]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": src} if src else None  # PYTHONPATH comes before site-packages
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    runs = pd.read_csv(outdir / "results" / "runs.tsv", sep="\t")
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        # ru_maxrss of RUSAGE_CHILDREN: the largest process among all finished descendants.
        "peak_mb": after.ru_maxrss / 1024,
        "jobs": len(runs),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, help="seeds per stochastic method (default: the profile's)")
    parser.add_argument("--data_mirror")
    parser.add_argument("--serial", action="store_true", help="also time --jobs 1 as a reference")
    parser.add_argument(
        "--cold-start-reference", action="store_true", help="also time a first run with --cold-start"
    )
    parser.add_argument("--reference-src", help="also time a first run of the scmib package in this folder")
    parser.add_argument("--save-runs", type=Path, help="write the first run's runs.tsv here")
    parser.add_argument(
        "--save-results", type=Path, help="copy the first run's results folder (tables, report) here"
    )
    args = parser.parse_args()
    seeds = ("--seeds", str(args.seeds)) if args.seeds else ()
    machine = machine_speed()  # before the runs, while the machine is idle
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NUMBA_CACHE_DIR"] = str(Path(tmp) / "numba")
        warm_cache = [sys.executable, "-m", "scmib.metrics.embedding.graph", "--warm-numba-cache"]
        subprocess.run(warm_cache, check=True, capture_output=True)
        first = timed_run(Path(tmp) / "run", args.profile, args.jobs, args.data_mirror, *seeds)
        resumed = timed_run(Path(tmp) / "run", args.profile, args.jobs, args.data_mirror, *seeds)
        if args.save_runs:
            first["runs"].to_csv(args.save_runs, sep="\t", index=False)
        if args.save_results:
            shutil.copytree(Path(tmp) / "run" / "results", args.save_results)
        serial = None
        if args.serial:
            serial = timed_run(Path(tmp) / "serial", args.profile, 1, args.data_mirror, *seeds)
        cold = None
        if args.cold_start_reference:
            cold = timed_run(
                Path(tmp) / "cold", args.profile, args.jobs, args.data_mirror, "--cold-start", *seeds
            )
        reference = None
        if args.reference_src:
            src = str(Path(args.reference_src).resolve())
            reference = timed_run(
                Path(tmp) / "reference", args.profile, args.jobs, args.data_mirror, *seeds, src=src
            )
    print(f"machine: {machine}")
    print(f"scmib run --profile {args.profile} --jobs {args.jobs}: {first['jobs']} jobs")
    print(
        f"  first run   : wall {first['wall_s']:8.1f} s  cpu {first['cpu_s']:8.1f} s  "
        f"peak memory {first['peak_mb']:7.0f} MB (largest single process)"
    )
    print(
        f"  resumed run : wall {resumed['wall_s']:8.1f} s  ratio resumed/first "
        f"{resumed['wall_s'] / first['wall_s']:.3f}"
    )
    if cold:
        print(
            f"  --cold-start: wall {cold['wall_s']:8.1f} s  cpu {cold['cpu_s']:8.1f} s  "
            f"warm start is {cold['wall_s'] / first['wall_s']:.2f}x faster (wall), "
            f"{cold['cpu_s'] / first['cpu_s']:.2f}x less CPU"
        )
    if reference:
        print(
            f"  reference   : wall {reference['wall_s']:8.1f} s  cpu {reference['cpu_s']:8.1f} s  "
            f"({args.reference_src}): this code is {reference['wall_s'] / first['wall_s']:.2f}x faster "
            f"(wall), {reference['cpu_s'] / first['cpu_s']:.2f}x less CPU"
        )
    if serial:
        print(
            f"  --jobs 1    : wall {serial['wall_s']:8.1f} s  speed-up of --jobs {args.jobs}: "
            f"{serial['wall_s'] / first['wall_s']:.2f}x"
        )
    by_stage = (
        first["runs"]
        .groupby("stage")
        .agg(
            jobs=("job", "size"),
            wall_s=("wall_time_s", "sum"),
            cpu_s=("cpu_time_s", "sum"),
            max_peak_mb=("peak_memory_mb", "max"),
        )
    )
    print("\nper stage (sums over jobs of the first run):")
    print(by_stage.round(1).to_string())
    by_component = (
        first["runs"]
        .groupby("component")
        .agg(jobs=("job", "size"), wall_s=("wall_time_s", "sum"), cpu_s=("cpu_time_s", "sum"))
        .nlargest(12, "cpu_s")
    )
    print("\ncomponents with the most CPU (sums over jobs of the first run):")
    print(by_component.round(1).to_string())
    slowest = first["runs"].nlargest(5, "wall_time_s")[["job", "wall_time_s", "peak_memory_mb"]]
    print("\nslowest jobs:")
    print(slowest.to_string(index=False))


if __name__ == "__main__":
    main()

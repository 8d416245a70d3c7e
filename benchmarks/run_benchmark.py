"""Time and peak memory of ``scmib run`` (the embedded default) on the real data.

Runs the benchmark twice into a fresh folder: a cold run (everything computed)
and a resumed run (everything reused), as separate processes, and prints wall
time, total CPU time and peak memory of each, per stage, and the resume/cold
ratio. With ``--serial`` it also runs ``--jobs 1`` as a reference for the
parallel speed-up.

    python benchmarks/run_benchmark.py --data_mirror ../shared/data [--profile test] [--serial]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def timed_run(outdir: Path, profile: str, jobs: int, mirror: str | None) -> dict[str, float]:
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
    ]
    if mirror:
        cmd += ["--data_mirror", mirror]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
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
    parser.add_argument("--data_mirror")
    parser.add_argument("--serial", action="store_true", help="also time --jobs 1 as a reference")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold = timed_run(Path(tmp) / "cold", args.profile, args.jobs, args.data_mirror)
        warm = timed_run(Path(tmp) / "cold", args.profile, args.jobs, args.data_mirror)
        serial = timed_run(Path(tmp) / "serial", args.profile, 1, args.data_mirror) if args.serial else None
    print(f"scmib run --profile {args.profile} --jobs {args.jobs}: {cold['jobs']} jobs")
    print(
        f"  cold run    : wall {cold['wall_s']:8.1f} s  cpu {cold['cpu_s']:8.1f} s  "
        f"peak memory {cold['peak_mb']:7.0f} MB (largest single process)"
    )
    print(
        f"  resumed run : wall {warm['wall_s']:8.1f} s  ratio resumed/cold "
        f"{warm['wall_s'] / cold['wall_s']:.3f}"
    )
    if serial:
        print(
            f"  --jobs 1    : wall {serial['wall_s']:8.1f} s  speed-up of --jobs {args.jobs}: "
            f"{serial['wall_s'] / cold['wall_s']:.2f}x"
        )
    by_stage = (
        cold["runs"]
        .groupby("stage")
        .agg(
            jobs=("job", "size"),
            wall_s=("wall_time_s", "sum"),
            cpu_s=("cpu_time_s", "sum"),
            max_peak_mb=("peak_memory_mb", "max"),
        )
    )
    print("\nper stage (sums over jobs of the cold run):")
    print(by_stage.round(1).to_string())
    slowest = cold["runs"].nlargest(5, "wall_time_s")[["job", "wall_time_s", "peak_memory_mb"]]
    print("\nslowest jobs:")
    print(slowest.to_string(index=False))


if __name__ == "__main__":
    main()

"""Every component at the competition's size: wall, CPU and peak memory per job, beside its label.

Runs ``scmib run --profile scale`` (the ``synthetic_competition`` loader: CITE
70,000 training + 15,000 test cells x 13,953 genes + 134 proteins; Multiome
42,000 + 15,000 cells x 13,431 genes + 116,490 peaks) one job at a time
(``--jobs 1``, so each job has the machine to itself) with every component
started cold (its peak memory is its own process's), under its labels' memory
and time limits, then prints one row per job: status, wall, CPU, peak memory,
the labels' memory, and what the competition reported where known. The run
resumes like any other (run the same command again), so the slow parts can be
run one at a time with the usual filters:

    python benchmarks/competition_scale.py --outdir /scratch/scale --datasets synthetic_competition_cite \\
        --task predict_modality --methods 'knn*,mean*'
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from scmib.resources import requests
from scmib.runner.execute import earlier_result
from scmib.runner.plan import RUNNABLE_TASKS, Selection, plan
from scmib.spec import find_repo_root

#: What the competition's reports say a job cost at full size (component -> note).
REPORTED = {
    "predict_modality/methods/guanlab_kernel_ridge": "Guanlab: 5.8 h on 30 CPUs, 46 GB (GEX->ATAC)",
    "joint_embedding/metrics/cc_cons": "scib's cell-cycle conservation: 110 GB at full size",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", required=True, help="run folder (resumable)")
    parser.add_argument("--task", help="tasks to run (default: all)")
    parser.add_argument("--datasets", help="synthetic_competition_cite and/or _multiome (default: both)")
    parser.add_argument("--methods", help="methods and controls to run (default: all)")
    parser.add_argument("--metrics", help="metrics to run (default: all)")
    parser.add_argument(
        "--table-only", action="store_true", help="print the table of what has run, run nothing"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    cmd = [sys.executable, "-m", "scmib.cli", "run", "--profile", "scale", "--outdir", args.outdir]
    cmd += ["--jobs", "1", "--cold-start", "--no-progress"]
    for option in ("task", "datasets", "methods", "metrics"):
        if getattr(args, option):
            cmd += [f"--{option}", getattr(args, option)]
    if not args.table_only:
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    print_table(args)


def print_table(args: argparse.Namespace) -> None:
    """One row per planned job that has a record in the output folder (this run's or an earlier,
    interrupted one's), then what is left."""
    repo = find_repo_root()
    selection = Selection(
        tasks=args.task.split(",") if args.task else list(RUNNABLE_TASKS),
        profile="scale",
        datasets=args.datasets.split(",") if args.datasets else None,
        methods=args.methods.split(",") if args.methods else None,
        metrics=args.metrics.split(",") if args.metrics else None,
    )
    jobs = plan(repo, Path(args.outdir).resolve(), selection)
    rows = []
    for job in jobs:
        result = earlier_result(job)
        if result is None:
            continue
        rows.append(
            {
                "job": job.id.replace("synthetic_competition_", ""),
                "status": "success" if result.status == "cached" else result.status,
                "wall": f"{result.wall_time_s / 60:.1f} min"
                if result.wall_time_s >= 60
                else f"{result.wall_time_s:.1f} s",
                "CPU s": round(result.cpu_time_s),
                "peak GB": round(result.peak_memory_mb / 1024, 2),
                "label GB": requests(job.spec.resources).memory_gb,
                "competition reported": REPORTED.get(job.spec.id, ""),
            }
        )
    table = pd.DataFrame(rows)
    if args.markdown:
        print("| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns))
        for row in table.itertuples(index=False):
            print("| " + " | ".join(str(v) for v in row) + " |")
    else:
        with pd.option_context("display.width", 250, "display.max_rows", 1000, "display.max_colwidth", 90):
            print(table.to_string(index=False))
    done = table["status"].isin(["success", "not_applicable"]) if len(table) else pd.Series(dtype=bool)
    over = (table["peak GB"] > 24).sum() if len(table) else 0
    print(
        f"\n{len(jobs)} jobs planned: {int(done.sum())} finished, {len(table) - int(done.sum())} did not "
        f"(failed, oom, timeout or upstream), {len(jobs) - len(table)} not run yet; {over} above 24 GB"
    )


if __name__ == "__main__":
    main()

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
from scmib.spec import find_repo_root, load_spec

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
    args = parser.parse_args()
    cmd = [sys.executable, "-m", "scmib.cli", "run", "--profile", "scale", "--outdir", args.outdir]
    cmd += ["--jobs", "1", "--cold-start", "--no-progress"]
    for option in ("task", "datasets", "methods", "metrics"):
        if getattr(args, option):
            cmd += [f"--{option}", getattr(args, option)]
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
    runs = pd.read_csv(Path(args.outdir) / "results" / "runs.tsv", sep="\t")
    runs = runs[runs["dataset"].astype(str).str.startswith("synthetic_competition")]
    repo = find_repo_root()
    label_gb = {
        component: requests(load_spec(repo / "components" / component).resources).memory_gb
        for component in runs["component"].unique()
    }
    table = pd.DataFrame(
        {
            "job": runs["job"].str.replace("synthetic_competition_", "", regex=False),
            "status": runs["status"],
            "wall": runs["wall_time_s"].map(lambda s: f"{s / 60:.1f} min" if s >= 60 else f"{s:.1f} s"),
            "CPU s": runs["cpu_time_s"].round(0),
            "peak GB": (runs["peak_memory_mb"] / 1024).round(2),
            "label GB": runs["component"].map(label_gb),
            "competition reported": runs["component"].map(REPORTED).fillna(""),
        }
    )
    with pd.option_context("display.width", 250, "display.max_rows", 1000, "display.max_colwidth", 90):
        print(table.to_string(index=False))
    finished = runs["status"].isin(["success", "cached", "not_applicable"])
    over = runs[(runs["peak_memory_mb"] / 1024 > 24) | ~finished]
    print(f"\n{len(runs)} jobs; {len(over)} did not finish or needed more than 24 GB")


if __name__ == "__main__":
    main()

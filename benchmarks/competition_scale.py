"""Every component at the competition's size: wall, CPU and peak memory per job, beside its label.

Runs the jobs of ``scmib run --profile scale`` (the ``synthetic_competition``
loader: CITE 70,000 training + 15,000 test cells x 13,953 genes + 134 proteins;
Multiome 42,000 + 15,000 cells x 13,431 genes + 116,490 peaks) with the
runner, one job at a time (so each job has the machine to itself) with every
component started cold (its peak memory is its own process's), under its
labels' memory and time limits, then prints one row per job: status, wall, CPU, peak memory,
the labels' memory, and what the competition reported where known. The run
resumes like any other (run the same command again), so the slow parts can be
run one at a time with the usual filters. ``--epochs N`` trains the learnt
models N epochs (their memory does not depend on it; their time is about
proportional). It writes the jobs' records, not the results tables or report of
``scmib run``:

    python benchmarks/competition_scale.py --outdir /scratch/scale --datasets synthetic_competition_cite \\
        --task predict_modality --methods 'knn*,mean*'
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pandas as pd

from scmib.data.cache import numba_cache_dir
from scmib.resources import requests
from scmib.runner.execute import RunInterrupted, earlier_result, execute, raise_interrupt
from scmib.runner.lock import OutdirLock
from scmib.runner.plan import RUNNABLE_TASKS, Job, Selection, plan
from scmib.spec import find_repo_root

#: What the competition's reports say a job cost at full size (component -> note).
REPORTED = {
    "predict_modality/methods/guanlab_kernel_ridge": "Guanlab: 5.8 h on 30 CPUs, 46 GB (GEX->ATAC)",
    "joint_embedding/metrics/cc_cons": "scib's cell-cycle conservation: 110 GB at full size",
}


#: Arguments that set how long a learnt model trains (``--epochs`` sets them all; CLUE fine-tunes too).
EPOCH_ARGUMENTS = ("epochs", "max_epochs", "finetune_epochs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", required=True, help="run folder (resumable)")
    parser.add_argument("--task", help="tasks to run (default: all)")
    parser.add_argument("--datasets", help="synthetic_competition_cite and/or _multiome (default: both)")
    parser.add_argument("--methods", help="methods and controls to run (default: all)")
    parser.add_argument("--metrics", help="metrics to run (default: all)")
    parser.add_argument(
        "--variants", help="task variants to run, e.g. atac2gex or 'gex2*' (default: all; datasets always)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help="train learnt models this many epochs instead of their default (a memory and "
        "time-per-epoch check). Their jobs keep their folders, so a run with other epochs in the "
        "same --outdir replaces their results (the table shows the epochs each row ran)",
    )
    parser.add_argument(
        "--component_args",
        action="append",
        default=[],
        metavar="COMPONENT.ARGUMENT=VALUE",
        help="set a component's argument instead of its default, as in scmib run (repeatable)",
    )
    parser.add_argument(
        "--table-only", action="store_true", help="print the table of what has run, run nothing"
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    jobs = planned_jobs(args)
    if not args.table_only:
        outdir = Path(args.outdir).resolve()
        signal.signal(signal.SIGTERM, raise_interrupt)
        print(f"{len(jobs)} jobs, profile 'scale', output in {outdir}", file=sys.stderr)
        try:
            with OutdirLock(outdir, wait=False):
                # One job at a time, each a new process: its peak memory is its own.
                numba_cache = numba_cache_dir()
                execute(jobs, n_jobs=1, progress=False, warm_start_log=None, numba_cache=numba_cache)
        except RunInterrupted:
            print("interrupted: run the same command again to go on", file=sys.stderr)
    print_table(args, jobs)


def planned_jobs(args: argparse.Namespace) -> list[Job]:
    """The scale profile's jobs for the filters given, learnt models set to ``--epochs``."""
    selection = Selection(
        tasks=args.task.split(",") if args.task else list(RUNNABLE_TASKS),
        profile="scale",
        datasets=args.datasets.split(",") if args.datasets else None,
        methods=args.methods.split(",") if args.methods else None,
        metrics=args.metrics.split(",") if args.metrics else None,
        component_args=args.component_args,
    )
    jobs = plan(find_repo_root(), Path(args.outdir).resolve(), selection)
    if args.variants:
        # A variant's jobs depend only on the dataset jobs (no variant) and on their own variant's.
        patterns = args.variants.split(",")
        jobs = [job for job in jobs if not job.variant or any(fnmatch(job.variant, p) for p in patterns)]
    for job in jobs:
        for name in EPOCH_ARGUMENTS:
            if args.epochs and name in job.spec.argument_map:
                job.params[name] = args.epochs  # changes the job's key, and its dependents'
    return jobs


#: scmib's training loops and its scvi-tools models (:class:`scmib.methods.torch_models.EpochLog`):
#: "... epoch 2/60: ... (3.21 s)".
EPOCH_LINE = re.compile(r" epoch \d+/\d+: .*\(([0-9.]+) s\)$")


def seconds_per_epoch(log: Path) -> float | None:
    """Median seconds of a training epoch in a job's log (None if it logged no epochs)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    seconds = [float(m.group(1)) for line in text.splitlines() if (m := EPOCH_LINE.search(line))]
    return float(np.median(seconds)) if seconds else None


def print_table(args: argparse.Namespace, jobs: list[Job]) -> None:
    """One row per planned job that has a record in the output folder (this run's or an earlier,
    interrupted one's), then what is left."""
    rows = []
    for job in jobs:
        result = earlier_result(job)
        if result is None:
            continue
        epochs = [f"{job.params[name]}" for name in EPOCH_ARGUMENTS if name in job.params]
        per_epoch = seconds_per_epoch(Path(result.log)) if epochs else None
        rows.append(
            {
                "job": job.id.replace("synthetic_competition_", ""),
                "epochs": epochs[0] if epochs else "",
                "s/epoch": "" if per_epoch is None else f"{per_epoch:.1f}",
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

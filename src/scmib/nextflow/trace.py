"""``scmib check-run``: was a finished Nextflow run complete, and did ``-resume`` re-run only what changed?

Used by the GitHub Actions workflow after ``nextflow run`` (where Nextflow
runs): it reads the run's ``pipeline_info/plan.json`` and ``trace.txt`` and
``results/runs.tsv`` and returns a list of problems (empty when all is well):

- every planned job has a record in the results, and none failed for a reason
  of the infrastructure (no record: image pull, staging, command not found);
- every job task the trace lists ended (completed or cached), retries aside;
- with ``all_cached``: every job task came from the cache (a second ``-resume``);
- with ``rerun_method``: exactly that method's jobs and their metrics re-ran,
  everything else came from the cache (after editing its ``script.py``);
- with ``stub`` (a ``-stub`` run): only that every planned job's task completed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scmib.errors import ScmibError
from scmib.runner.execute import INFRASTRUCTURE, OK

#: The workflow's steps that run planned jobs (aliases of SCMIB_JOB in workflows/scmib.nf).
JOB_STEPS = ("LOAD_DATASET", "PROCESS_DATASET", "RUN_METHOD", "PREPARE_PREDICTION", "RUN_METRIC")


def job_tasks(trace: pd.DataFrame) -> pd.DataFrame:
    """The trace's rows of job tasks, the last attempt of each job (``tag`` is the job id)."""
    steps = trace["process"].astype(str).str.rsplit(":", n=1).str[-1]
    jobs = trace[steps.isin(JOB_STEPS)]
    ordered = jobs.sort_values("task_id", key=lambda ids: ids.astype(int))
    return ordered.groupby("tag", sort=False).tail(1).set_index("tag")


def read_trace(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def check_run(
    outdir: Path, all_cached: bool = False, rerun_method: str | None = None, stub: bool = False
) -> list[str]:
    """Problems of the Nextflow run whose ``--outdir`` is ``outdir`` (see the module docstring).

    With ``stub`` (a ``-stub`` run, which runs no component and writes no
    results), only the wiring: every planned job has a task that completed.
    """
    needed = [outdir / "pipeline_info" / "plan.json", outdir / "pipeline_info" / "trace.txt"]
    needed += [] if stub else [outdir / "results" / "runs.tsv"]
    if missing := [str(path) for path in needed if not path.is_file()]:
        raise ScmibError(
            f"{outdir} is not the --outdir of a finished Nextflow run of main.nf: "
            f"missing {', '.join(missing)} "
            "(a local `scmib run` folder has no pipeline_info/; check it with `scmib report`)"
        )
    plan = json.loads(needed[0].read_text())
    tasks = job_tasks(read_trace(needed[1]))
    planned = {job["id"]: job for job in plan["jobs"]}
    if stub:
        done = set(tasks.index[tasks["status"] == "COMPLETED"])
        return [f"{job_id}: no completed task in the stub run" for job_id in planned if job_id not in done]
    runs = pd.read_csv(outdir / "results" / "runs.tsv", sep="\t").set_index("job")
    problems = [f"{job_id}: planned but not in results/runs.tsv" for job_id in set(planned) - set(runs.index)]
    for job_id, row in runs[runs["status"] == INFRASTRUCTURE].iterrows():
        problems.append(f"{job_id}: failed for a reason of the infrastructure: {row.message}")
    for job_id, row in tasks[~tasks["status"].isin(["COMPLETED", "CACHED"])].iterrows():
        problems.append(f"{job_id}: its task ended {row.status} (exit {row.exit})")
    started = set(tasks.index)
    # A job downstream of one that did not succeed never starts: collect records it (upstream_failed,
    # or not_applicable below a job that does not apply) without a task.
    succeeded = set(runs.index[runs["status"].isin(OK)])
    skipped = {job_id for job_id, job in planned.items() if set(job.get("deps", [])) - succeeded}
    recorded = set(runs.index[~runs["status"].isin(["upstream_failed", INFRASTRUCTURE])]) - skipped
    problems += [f"{job_id}: recorded but no task ran it" for job_id in sorted(recorded - started)]
    reran = set(tasks.index[tasks["status"] != "CACHED"])
    if all_cached and reran:
        problems.append(f"{len(reran)} jobs re-ran on -resume, none should have: {sorted(reran)[:10]}")
    if rerun_method is not None:
        expected = {
            job_id
            for job_id, job in planned.items()
            if job["method"] == rerun_method
            and job["stage"] in ("method", "control_method", "prepare", "metric")
        }
        if not expected:
            problems.append(f"no planned job runs method '{rerun_method}'")
        if reran != expected:
            problems.append(
                f"after changing {rerun_method}, re-ran {sorted(reran - expected)[:10]} too many "
                f"and {sorted(expected - reran)[:10]} too few"
            )
    return problems

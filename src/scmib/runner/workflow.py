"""The two ends of a workflow run: one planned job in a task folder, and the collection of all of them.

``scmib job`` runs inside a Nextflow task (in the component's container): it
finds the job in the plan, reads its inputs from the upstream job folders
staged beside it and records its outcome exactly as the local runner does.
``scmib collect`` rebuilds the results table and report from those folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scmib.errors import ScmibError
from scmib.report import write_report
from scmib.runner.execute import FAILED, LOG, RECORD, JobResult, run_job, skipped_result
from scmib.runner.export import component_spec, find_entry, job_from_entry, jobs_from_plan, read_plan
from scmib.runner.results import write_tables

#: Exit status of a process killed by SIGKILL, which is how the kernel's and the
#: executors' out-of-memory killers end it; Nextflow retries it with more memory.
OOM_EXIT = 137
STATUS_FILE = ".job.status"
LOST = (
    "no record: the executor stopped this task (out of memory or time after its retries, or "
    "cancelled); see the Nextflow trace"
)


def run_planned_job(plan_path: Path, job_id: str, repo: Path, attempt: int = 1, max_attempts: int = 1) -> int:
    """Run one job of a plan in the current folder; return the exit status for the executor.

    Returns 0 whenever the outcome is recorded (success, failure, not applicable,
    timeout), so a failing component never stops the workflow, and 137 when the
    component was killed (out of memory) and attempts remain, so it is retried.
    """
    entry = find_entry(read_plan(plan_path), job_id)
    job = job_from_entry(entry, component_spec(repo, entry["component"]), Path.cwd(), deps=[])
    missing = [str(p) for p in job.inputs.values() if not p.is_file()]
    if missing:
        raise ScmibError(f"{job_id}: upstream files are not staged in {Path.cwd()}: {missing}")
    result = run_job(job, entry["key"], threads=entry["cpus"])
    # The workflow routes on this one word (Nextflow reads it without parsing JSON).
    (job.workdir / STATUS_FILE).write_text(result.status + "\n")
    print(f"{job_id}: {result.status} (exit {result.exit_code}, {result.wall_time_s} s)")
    if result.message:
        print(result.message)
    if result.exit_code in (-9, OOM_EXIT) and attempt < max_attempts:
        return OOM_EXIT
    return 0


def _recorded(folder: Path, relative_to: Path) -> JobResult | None:
    try:
        data = json.loads((folder / RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    # The log path in the record is the task's own folder; point at the collected copy.
    log, base = (folder / LOG).absolute(), relative_to.absolute()
    data["log"] = str(log.relative_to(base)) if log.is_relative_to(base) else str(log)
    return JobResult(**data)


def collect(plan_path: Path, jobs_dir: Path, outdir: Path, repo: Path) -> pd.DataFrame:
    """Results tables and report of a workflow run from its job folders (``jobs_dir/<folder>``).

    A job without a record is ``upstream_failed`` / ``not_applicable`` when a
    dependency did not succeed (the workflow does not start it), else ``failed``
    with a message saying the executor stopped it.
    """
    jobs = jobs_from_plan(read_plan(plan_path), repo, jobs_dir)
    results: dict[str, JobResult] = {}
    for job in jobs:
        recorded = _recorded(job.workdir, outdir)
        if recorded is None:
            recorded = skipped_result(job, "", [results[d.id] for d in job.deps]) or JobResult(
                job.id, FAILED, None, 0.0, 0.0, 0.0, "", "", LOST
            )
        results[job.id] = recorded
    table = write_tables(outdir, jobs, results)
    write_report(outdir)
    return table

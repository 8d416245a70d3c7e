"""The two ends of a workflow run: one planned job in a task folder, and the collection of all of them.

``scmib job`` runs inside a Nextflow task (in the component's container). The
task is handed its job's plan entry as a file (``job.json``), its own
component folder (staged as ``component``) and its upstream job folders; so
its cache key in Nextflow depends on exactly those, and editing one method
re-runs that method's jobs and their metrics only. It records the outcome
exactly as the local runner does, plus a small *record folder* (record, status,
log and any score file) that is all ``scmib collect`` reads.

``scmib collect`` rebuilds the results table and report from the record folders.
A planned job without a record, whose sources all succeeded, was started and
lost by the workflow's infrastructure (image pull, staging, missing command, an
executor's kill): it is recorded as ``infrastructure_failed``, never silently.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pandas as pd

from scmib.data.cache import MIRROR_ENV
from scmib.errors import ScmibError
from scmib.io import write_text_atomic
from scmib.resources import task_time_limit_s, time_limit_s
from scmib.runner.execute import (
    INFRASTRUCTURE,
    LOG,
    MEMORY_MARGIN,
    OOM,
    RECORD,
    JobResult,
    raise_interrupt,
    run_job,
    skipped_result,
)
from scmib.runner.export import job_from_entry, jobs_from_plan, read_plan
from scmib.runner.finish import write_results
from scmib.spec import load_spec

#: The exit status of a SIGKILLed process, which is how memory killers end one; the workflow's
#: errorStrategy retries it with more memory while attempts remain.
OOM_EXIT = 137
STATUS_FILE = ".job.status"
#: A job's log is copied into its record up to this size (its end, where the error is).
RECORD_LOG_BYTES = 256 * 1024
LOST = (
    "no record: the workflow started this job but it ended without scmib recording an outcome "
    "(image pull or staging error, command not found, killed by the executor or at its time limit, "
    "preempted after its retries); see the task in pipeline_info/trace.txt"
)


def read_job_entry(path: Path) -> dict[str, Any]:
    """A job's plan entry, as the workflow writes it into the task folder."""
    try:
        entry = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ScmibError(f"{path}: cannot read the job description: {exc}") from exc
    if not isinstance(entry, dict):
        raise ScmibError(f"{path}: not an scmib plan entry (a JSON {type(entry).__name__}, not an object)")
    missing = {"id", "folder", "component", "inputs", "outputs", "params", "stage"} - set(entry)
    if missing:
        raise ScmibError(f"{path}: not an scmib plan entry (missing {sorted(missing)})")
    return entry


def executor_exit_status(result: JobResult, attempt: int, max_attempts: int, capped: bool = False) -> int:
    """What ``scmib job`` exits with: 0 when the outcome is recorded, 137 to be retried with more memory.

    Only a memory kill is worth another attempt, and only while the next attempt gets more memory
    (``capped``: the executor's cap, ``resourceLimits``, already held this one below its request, so
    every later attempt would get the same); a timeout, a failure or a result that does not apply
    would end the same way again.
    """
    return OOM_EXIT if result.status == OOM and attempt < max_attempts and not capped else 0


def _write_record(job_dir: Path, record_dir: Path, score_files: list[Path]) -> None:
    """The record folder: ``.job.json``, ``.job.status``, the end of ``.job.log`` and the score files.

    Made under a temporary name and renamed, so a task stopped half-way leaves no partial record.
    """
    partial = record_dir.with_name(f".{record_dir.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    for name in (RECORD, STATUS_FILE):
        shutil.copyfile(job_dir / name, partial / name)
    log = job_dir / LOG
    if log.is_file():
        with open(log, "rb") as source, open(partial / LOG, "wb") as copy:
            size = source.seek(0, 2)
            if size > RECORD_LOG_BYTES:
                copy.write(f"[... first {size - RECORD_LOG_BYTES} bytes of the log left out ...]\n".encode())
            source.seek(max(0, size - RECORD_LOG_BYTES))
            shutil.copyfileobj(source, copy)
    for path in score_files:
        if path.is_file():
            shutil.copyfile(path, partial / path.name)
    if record_dir.exists():
        shutil.rmtree(record_dir)
    partial.rename(record_dir)


def run_planned_job(
    job_file: Path,
    component_dir: Path,
    attempt: int = 1,
    max_attempts: int = 1,
    task_time_s: float | None = None,
    record_root: Path | None = None,
    threads: int | None = None,
    task_memory_gb: float | None = None,
) -> int:
    """Run one job of a plan in the current folder; return the exit status for the executor.

    ``task_time_s`` is the executor's time limit of this task: the component is
    stopped (and recorded as ``timeout``) before it. ``threads`` is what the
    executor gave the task (its request may have been capped); the memory limit is
    the job's request times the attempt, as the executor's, or ``task_memory_gb`` where the
    executor gave less (a cap), and then a memory kill is recorded, not retried. The record folder goes to
    ``record_root/<job folder>``. See :func:`executor_exit_status` for the exit status.
    """
    entry = read_job_entry(job_file)
    spec = load_spec(component_dir)
    if spec.id != entry["component"]:
        raise ScmibError(
            f"{component_dir}: the staged component is {spec.id}, "
            f"but job {entry['id']} runs {entry['component']}"
        )
    job = job_from_entry(entry, spec, Path.cwd(), deps=[])
    missing = [str(p) for p in job.inputs.values() if not p.is_file()]
    if missing:
        raise ScmibError(f"{job.id}: upstream files are not staged in {Path.cwd()}: {missing}")
    limit = task_time_limit_s(time_limit_s(spec.resources), task_time_s)
    # A workflow hands loaders its mirror explicitly (--data_mirror, staged into the task). One in the
    # launching shell's environment is on no other machine, and a relative one names the wrong folder.
    os.environ.pop(MIRROR_ENV, None)
    # Nextflow ends a task with SIGTERM (a cancelled run, -resume after Ctrl-C): kill the component too.
    signal.signal(signal.SIGTERM, raise_interrupt)
    requested_gb = entry.get("memory_gb", 0) * attempt
    # Nextflow's task.memory is the request unless resourceLimits capped it.
    capped = task_memory_gb is not None and task_memory_gb < requested_gb - 0.01
    memory_gb = (task_memory_gb if capped else requested_gb) * MEMORY_MARGIN or None
    threads = threads or entry.get("cpus", 1)
    key = entry.get("key", "")
    result = run_job(job, key, threads=threads, time_limit=limit, memory_limit_gb=memory_gb)
    # The workflow routes on this one word (Nextflow reads it without parsing JSON).
    write_text_atomic(job.workdir / STATUS_FILE, result.status + "\n")
    if record_root is not None:
        scores = list(job.outputs.values()) if job.stage == "metric" else []
        _write_record(job.workdir, record_root / job.workdir.name, scores)
    print(f"{job.id}: {result.status} (exit {result.exit_code}, {result.wall_time_s} s)")
    if result.message:
        print(result.message)
    return executor_exit_status(result, attempt, max_attempts, capped)


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
    """Results tables and report of a workflow run from its record folders (``jobs_dir/<folder>``).

    A job without a record is ``upstream_failed`` / ``not_applicable`` when a
    dependency did not succeed (the workflow does not start it), else
    ``infrastructure_failed`` (see the module docstring).
    """
    jobs = jobs_from_plan(read_plan(plan_path), repo, jobs_dir)
    results: dict[str, JobResult] = {}
    for job in jobs:
        recorded = _recorded(job.workdir, outdir)
        if recorded is None:
            recorded = skipped_result(job, "", [results[d.id] for d in job.deps]) or JobResult(
                job.id, INFRASTRUCTURE, None, 0.0, 0.0, 0.0, "", "", LOST
            )
        results[job.id] = recorded
    table, _ = write_results(outdir, jobs, results)
    lost = [r.job_id for r in results.values() if r.status == INFRASTRUCTURE]
    if lost:
        print(f"scmib collect: {len(lost)} jobs failed for reasons of the infrastructure, not their own:")
        print("\n".join(f"  {job_id}" for job_id in lost))
    return table

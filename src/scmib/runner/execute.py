"""Run planned jobs as separate processes, in parallel, with resume and resource accounting."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from scmib.component import command_line
from scmib.errors import EXIT_NOT_APPLICABLE
from scmib.resources import time_limit_s
from scmib.runner.plan import Job

RECORD = ".job.json"
LOG = ".job.log"
#: Job outcomes. ``cached`` is a success reused from an earlier run; ``oom`` a component killed by
#: SIGKILL that the runner did not kill itself (the kernel's or a container's memory killer);
#: ``infrastructure_failed`` a workflow task that ended without a record (image pull, staging,
#: missing command, executor kill): not the component's fault, and never silent.
SUCCESS, CACHED, NOT_APPLICABLE, FAILED, TIMEOUT, OOM, UPSTREAM, INFRASTRUCTURE = (
    "success",
    "cached",
    "not_applicable",
    "failed",
    "timeout",
    "oom",
    "upstream_failed",
    "infrastructure_failed",
)
OK = (SUCCESS, CACHED)
#: Outcomes that count as a failure of the job (the run goes on; ``--strict`` exits 1).
FAILURES = (FAILED, TIMEOUT, OOM, UPSTREAM, INFRASTRUCTURE)
#: Process groups of running components, killed if the runner itself is interrupted.
_LIVE: set[int] = set()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have finished in the meantime
        os.killpg(pid, signal.SIGKILL)


@dataclass
class JobResult:
    job_id: str
    status: str
    exit_code: int | None
    wall_time_s: float
    cpu_time_s: float
    peak_memory_mb: float
    key: str
    log: str
    message: str = ""


def _tail(path: Path, n_lines: int = 8) -> str:
    """The last lines a component printed (the error, for a failure), without the command line."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    output = [line for line in lines[1:] if line.strip()]  # line 0 is "$ command"
    return "\n".join(output[-n_lines:])


def cached_result(job: Job, key: str) -> JobResult | None:
    """The earlier result of this job if its key matches, it finished, and its outputs exist."""
    record = job.workdir / RECORD
    try:
        data = json.loads(record.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("key") != key or data.get("status") not in (SUCCESS, CACHED, NOT_APPLICABLE):
        return None
    if data["status"] != NOT_APPLICABLE and not all(p.is_file() for p in job.outputs.values()):
        return None
    data["status"] = data["status"] if data["status"] == NOT_APPLICABLE else CACHED
    return JobResult(**data)


def run_job(job: Job, key: str, threads: int, time_limit: float | None = None) -> JobResult:
    """Run one job in its own process, measuring wall time, CPU time and peak memory.

    ``time_limit`` (seconds) defaults to the limit of the component's labels. If
    the caller is interrupted (Ctrl-C, SIGTERM turned into an exception), the
    component's process group is killed before the exception goes on.
    """
    job.workdir.mkdir(parents=True, exist_ok=True)
    for output in job.outputs.values():
        output.unlink(missing_ok=True)
    cmd = [sys.executable, str(job.spec.script_path), *command_line(job.spec, job.argv_values)]
    usage_path = job.workdir / ".usage.json"
    usage_path.unlink(missing_ok=True)
    # Through the launcher, so the job's peak memory is its own (see scmib.runner.launch).
    launched = [sys.executable, "-m", "scmib.runner.launch", str(usage_path), "--", *cmd]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    log_path = job.workdir / LOG
    limit = time_limit if time_limit is not None else time_limit_s(job.spec.resources)
    start = time.perf_counter()
    with open(log_path, "w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(
            launched, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        _LIVE.add(proc.pid)
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            _kill_group(proc.pid)

        timer = threading.Timer(limit, _kill)
        timer.start()
        try:
            # wait4 (not Popen.wait) returns the child's own resource usage.
            _, wait_status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            _kill_group(proc.pid)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
            raise
        finally:
            timer.cancel()
            _LIVE.discard(proc.pid)
        proc.returncode = os.waitstatus_to_exitcode(wait_status)
    wall = time.perf_counter() - start
    try:
        own = json.loads(usage_path.read_text())
    except (OSError, ValueError):  # the launcher itself was killed: its usage includes the job's
        own = {"maxrss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}
    code = proc.returncode
    if timed_out.is_set():
        status, message = TIMEOUT, f"killed after its time limit of {limit:g} s"
    elif code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        status = OOM
        message = "killed by SIGKILL, not by scmib: most likely out of memory\n" + _tail(log_path, 3)
    elif code == 0:
        missing = [str(p) for p in job.outputs.values() if not p.is_file()]
        status = FAILED if missing else SUCCESS
        message = f"exited 0 but did not write {missing}" if missing else ""
    elif code == EXIT_NOT_APPLICABLE:
        status, message = NOT_APPLICABLE, _tail(log_path, 1)
    else:
        status, message = FAILED, _tail(log_path)
    result = JobResult(
        job_id=job.id,
        status=status,
        exit_code=code,
        wall_time_s=round(wall, 3),
        cpu_time_s=round(own["cpu_s"], 3),
        peak_memory_mb=round(own["maxrss_kb"] / 1024, 1),  # Linux reports KiB
        key=key,
        log=str(log_path),
        message=message,
    )
    tmp = job.workdir / f"{RECORD}.tmp"
    tmp.write_text(json.dumps(asdict(result), indent=1))
    os.replace(tmp, job.workdir / RECORD)
    return result


def skipped_result(job: Job, key: str, dep_results: list[JobResult]) -> JobResult | None:
    """The result of a job that cannot run because a dependency did not succeed, else None."""
    blocked = [r for r in dep_results if r.status not in OK]
    if not blocked:
        return None
    # Downstream of a method that does not apply is not applicable either.
    status = NOT_APPLICABLE if all(r.status == NOT_APPLICABLE for r in blocked) else UPSTREAM
    return JobResult(
        job.id, status, None, 0.0, 0.0, 0.0, key, "", f"{blocked[0].job_id}: {blocked[0].status}"
    )


def execute(jobs: list[Job], n_jobs: int = 1, progress: bool = True) -> dict[str, JobResult]:
    """Run ``jobs`` (dependencies first), ``n_jobs`` at a time; a failure skips only its dependents.

    If the runner itself is interrupted, the components it started are killed.
    """
    n_jobs = max(1, n_jobs)
    keys = {job.id: job.key for job in jobs}
    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    results: dict[str, JobResult] = {}
    pending = list(jobs)
    running: dict[Future, Job] = {}
    bar = tqdm(
        total=len(jobs),
        desc="scmib run",
        unit="job",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
    )

    def finish(job_id: str, result: JobResult) -> None:
        results[job_id] = result
        if result.status in (FAILED, TIMEOUT):
            bar.write(f"[{result.status}] {job_id}: see {result.log}")
        failed = sum(r.status in (FAILED, TIMEOUT) for r in results.values())
        bar.set_postfix_str(f"running={len(running)} done={len(results)} failed={failed}")
        bar.update(1)

    try:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            while pending or running:
                for job in [j for j in pending if all(d.id in results for d in j.deps)]:
                    if len(running) >= n_jobs:
                        break  # submit no more than can run, so "running" means running
                    pending.remove(job)
                    key = keys[job.id]
                    dep_results = [results[d.id] for d in job.deps]
                    done = skipped_result(job, key, dep_results) or cached_result(job, key)
                    if done is not None:
                        finish(job.id, done)
                    else:
                        running[pool.submit(run_job, job, key, threads)] = job
                if not running:
                    if pending and not any(all(d.id in results for d in j.deps) for j in pending):
                        raise RuntimeError(f"jobs depend on jobs that are not planned: {pending[0].id}")
                    continue
                for future in wait(running, return_when=FIRST_COMPLETED)[0]:
                    job = running.pop(future)
                    try:
                        result = future.result()
                    except Exception as exc:  # the runner itself must never stop on one job
                        result = JobResult(
                            job.id, FAILED, None, 0.0, 0.0, 0.0, keys[job.id], "", f"runner error: {exc}"
                        )
                    finish(job.id, result)
    except BaseException:
        for pid in list(_LIVE):
            _kill_group(pid)
        raise
    finally:
        bar.close()
    return results

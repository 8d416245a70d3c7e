"""Run planned jobs as separate processes, in parallel, with resume and resource accounting."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from scmib.component import command_line
from scmib.errors import EXIT_NOT_APPLICABLE
from scmib.io import write_text_atomic
from scmib.resources import requests, time_limit_s
from scmib.runner.plan import Job, start_order
from scmib.runner.warm import WarmServer, extra_preload, preload_name

RECORD = ".job.json"
LOG = ".job.log"
#: Job outcomes. ``cached`` is a success reused from an earlier run; ``oom`` a component that ran
#: out of memory (its label's limit, or SIGKILLed by a memory killer); ``interrupted`` a job the
#: runner stopped on Ctrl-C or SIGTERM (resumable: it runs again next time);
#: ``infrastructure_failed`` a workflow task that ended without a record (image pull, staging,
#: missing command, executor kill): not the component's fault, and never silent. ``not_run`` is
#: only in results: a metric of a method in them that has not run as it is now (a filtered run
#: after a partial one), so the method is not scored on fewer metrics than the others.
SUCCESS, CACHED, NOT_APPLICABLE, FAILED, TIMEOUT, OOM, INTERRUPTED, UPSTREAM, INFRASTRUCTURE = (
    "success",
    "cached",
    "not_applicable",
    "failed",
    "timeout",
    "oom",
    "interrupted",
    "upstream_failed",
    "infrastructure_failed",
)
NOT_RUN = "not_run"
OK = (SUCCESS, CACHED)
#: Outcomes that count as a failure of the job (the run goes on; ``--strict`` exits 1).
FAILURES = (FAILED, TIMEOUT, OOM, INTERRUPTED, UPSTREAM, INFRASTRUCTURE)
#: Launchers of running components, stopped if the runner itself is interrupted.
_LIVE: set[int] = set()
#: Set when the runner is interrupted: jobs that end now are recorded as ``interrupted``.
_INTERRUPTED = threading.Event()
#: What a failed allocation prints (Python, numpy, C++).
_OUT_OF_MEMORY = re.compile(r"MemoryError|Cannot allocate memory|std::bad_alloc|Unable to allocate")
#: Seconds a launcher gets to end its command's processes before its whole group is SIGKILLed.
_GRACE_S = 10.0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have finished in the meantime
        os.killpg(pid, signal.SIGKILL)


def _stop(pid: int) -> None:
    """Stop a launcher and everything below it: SIGTERM (it kills its descendants), then SIGKILL
    its process group if it has not ended within :data:`_GRACE_S`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)

    def _if_still_running() -> None:
        if pid in _LIVE:  # not yet reaped, so the pid is still this launcher's
            _kill_group(pid)

    timer = threading.Timer(_GRACE_S, _if_still_running)
    timer.daemon = True
    timer.start()


def raise_interrupt(signum: int, _frame: object) -> None:
    """A signal handler that makes SIGTERM (a scheduler, ``kill``) stop a run exactly as Ctrl-C does."""
    raise KeyboardInterrupt(f"signal {signum}")


def stop_all() -> None:
    """Interrupt the run: every running component is stopped and recorded as ``interrupted``."""
    _INTERRUPTED.set()
    for pid in list(_LIVE):
        _stop(pid)


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


def _tail(path: Path, n_lines: int = 8, max_bytes: int = 64 * 1024) -> str:
    """The last lines a component printed (the error, for a failure), without the command line.

    Reads only the end of the file: a log can be large.
    """
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - max_bytes))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    lines = text.strip().splitlines()
    if size <= max_bytes:
        lines = lines[1:]  # line 0 is "$ command"
    output = [line for line in lines if line.strip()]
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


def earlier_result(job: Job) -> JobResult | None:
    """The outcome recorded for this job with its current key: a success (as ``cached``), a result
    that does not apply, or a failure; None if it never ran as it is now (or was interrupted)."""
    if (cached := cached_result(job, job.key)) is not None:
        return cached
    try:
        data = json.loads((job.workdir / RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("key") != job.key or data.get("status") not in (FAILED, TIMEOUT, OOM, UPSTREAM):
        return None
    return JobResult(**data)


def _set_aside(paths: list[Path], suffix: str) -> list[Path]:
    """Rename each existing file to ``<name><suffix>`` (replacing an older one); return the new paths."""
    moved = []
    for path in paths:
        if path.is_file():
            target = path.with_name(path.name + suffix)
            os.replace(path, target)
            moved.append(target)
    return moved


#: Waits for a started job: its wait status and the usage of what supervised it.
Ended = Callable[[], tuple[int, dict]]


def _start_cold(
    cmd: list[str], log_path: Path, usage_path: Path, memory_bytes: int | None, env: dict[str, str]
) -> tuple[int, Ended]:
    """Start ``cmd`` as a new process through the launcher (its own peak memory, no process left
    behind, a bounded log, in its own session)."""
    launched = [sys.executable, "-m", "scmib.runner.launch", str(usage_path)]
    if memory_bytes:
        launched += ["--memory-bytes", str(memory_bytes)]
    with open(log_path, "a") as log:
        proc = subprocess.Popen(
            [*launched, "--", *cmd], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def ended() -> tuple[int, dict]:
        # wait4 (not Popen.wait) returns the child's own resource usage.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait for it again
        return status, {"maxrss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}

    return proc.pid, ended


def _start_warm(
    warm: WarmServer,
    script: Path,
    argv: list[str],
    log_path: Path,
    usage_path: Path,
    memory_bytes: int | None,
) -> tuple[int, Ended]:
    """Fork ``script argv`` from the warm-start server, under the same supervision as a cold start."""
    pid = warm.start(script, argv, log_path, usage_path, memory_bytes)

    def ended() -> tuple[int, dict]:
        try:
            done = warm.wait(pid)
        except RuntimeError as exc:  # the server is gone, and with it this job's exit status
            _stop(pid)
            with open(log_path, "a") as log:
                log.write(f"\nscmib: {exc}\n")
            return 1 << 8, {"maxrss_kb": 0, "cpu_s": 0.0}  # recorded as failed (exit 1)
        return done["status"], {"maxrss_kb": done["maxrss_kb"], "cpu_s": done["cpu_s"]}

    return pid, ended


def run_job(
    job: Job,
    key: str,
    threads: int,
    time_limit: float | None = None,
    memory_limit_gb: float | None = None,
    warm: WarmServer | None = None,
    numba_cache: Path | None = None,
) -> JobResult:
    """Run one job in its own process, measuring wall time, CPU time and peak memory.

    ``time_limit`` (seconds) defaults to the limit of the component's labels;
    ``memory_limit_gb`` (None: none) caps its heap (see :mod:`scmib.runner.launch`).
    With ``warm`` (a running :class:`~scmib.runner.warm.WarmServer`) a Python
    component is forked from it instead of started cold (same supervision).
    Earlier outputs are set aside as ``*.previous`` while it runs (removed on
    success); the outputs of a job that did not succeed are set aside as
    ``*.partial``, so no later step or user finds a half-written file under
    its final name. On Ctrl-C or SIGTERM (:func:`stop_all` from another thread,
    or ``KeyboardInterrupt`` in this one, which is raised again once recorded)
    the component and everything it started are killed and the job is recorded
    as ``interrupted``.
    """
    job.workdir.mkdir(parents=True, exist_ok=True)
    outputs = list(job.outputs.values())
    previous = _set_aside(outputs, ".previous")
    argv = command_line(job.spec, job.argv_values)
    cmd = [sys.executable, str(job.spec.script_path), *argv]
    usage_path = job.workdir / ".usage.json"
    usage_path.unlink(missing_ok=True)
    memory_bytes = int(memory_limit_gb * 1024**3) if memory_limit_gb else None
    log_path = job.workdir / LOG
    limit = time_limit if time_limit is not None else time_limit_s(job.spec.resources)
    start = time.perf_counter()
    with open(log_path, "w") as log:
        # Quoted as a shell would take it back, on one line (the first, which failure messages skip).
        log.write("$ " + shlex.join(cmd).replace("\n", "\\n") + "\n")
    pid, ended = None, None
    if warm is not None and job.spec.script_path.suffix == ".py":
        with contextlib.suppress(RuntimeError):  # the server has ended: start this one cold
            pid, ended = _start_warm(warm, job.spec.script_path, argv, log_path, usage_path, memory_bytes)
    if pid is None or ended is None:
        pid, ended = _start_cold(cmd, log_path, usage_path, memory_bytes, job_env(threads, numba_cache))
    _LIVE.add(pid)
    timed_out = threading.Event()

    def _time_up() -> None:
        timed_out.set()
        _stop(pid)

    timer = threading.Timer(limit, _time_up)
    timer.start()
    if _INTERRUPTED.is_set():  # interrupted while this one was starting
        _stop(pid)
    interrupt: KeyboardInterrupt | None = None
    try:
        wait_status, supervisor_usage = ended()
    except KeyboardInterrupt as exc:  # this thread's (``scmib job`` under SIGTERM): record, then re-raise
        _INTERRUPTED.set()
        interrupt = exc
        wait_status, supervisor_usage = _stopped(pid, ended)
    except BaseException:  # a runner error: the component must not outlive it, the run goes on
        _stopped(pid, ended)
        raise
    finally:
        timer.cancel()
        _LIVE.discard(pid)
    wall = time.perf_counter() - start
    try:
        own = json.loads(usage_path.read_text())
    except (OSError, ValueError):  # the launcher itself was killed: its usage includes the job's
        own = supervisor_usage
    code = os.waitstatus_to_exitcode(wait_status)
    tail = _tail(log_path)
    if _INTERRUPTED.is_set() and code != 0:
        status, message = INTERRUPTED, "stopped: the run was interrupted (it runs again on resume)"
    elif timed_out.is_set():
        status, message = TIMEOUT, f"killed after its time limit of {limit:g} s"
    elif code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        status = OOM
        message = "killed by SIGKILL, not by scmib: most likely out of memory\n" + _tail(log_path, 3)
    elif code not in (0, EXIT_NOT_APPLICABLE) and memory_limit_gb and _OUT_OF_MEMORY.search(tail):
        status = OOM
        message = f"out of memory: its limit is {memory_limit_gb:g} GB (its labels' memory)\n" + _tail(
            log_path, 3
        )
    elif code == 0:
        missing = [str(p) for p in outputs if not p.is_file()]
        status = FAILED if missing else SUCCESS
        message = f"exited 0 but did not write {missing}" if missing else ""
    elif code == EXIT_NOT_APPLICABLE:
        status, message = NOT_APPLICABLE, _tail(log_path, 1)
    else:
        status, message = FAILED, tail
    if status == SUCCESS:
        for path in previous:
            path.unlink(missing_ok=True)
    elif partial := _set_aside(outputs, ".partial"):
        message += f"\n(its outputs were set aside as {', '.join(p.name for p in partial)})"
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
    write_record(job, result)
    if interrupt is not None:
        raise interrupt
    return result


def _stopped(pid: int, ended: Ended) -> tuple[int, dict]:
    """Stop the component ``pid`` whose wait was cut short and reap it: its wait status and usage
    (a SIGKILL status and none where it had been reaped already)."""
    _stop(pid)
    try:
        return ended()
    except ChildProcessError:
        return signal.SIGKILL, {"maxrss_kb": 0, "cpu_s": 0.0}


def threads_per_job(n_jobs: int) -> int:
    """Each of ``n_jobs`` jobs running at once gets an equal share of the machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, n_jobs))


def job_env(threads: int, numba_cache: Path | None = None) -> dict[str, str]:
    """The environment of every job: this one, unbuffered output, ``threads`` threads per library, and
    numba's compiled functions cached in ``numba_cache`` (unless ``NUMBA_CACHE_DIR`` is set already)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    if numba_cache is not None:
        env.setdefault("NUMBA_CACHE_DIR", str(numba_cache))
    return env


def write_record(job: Job, result: JobResult) -> None:
    """The job's outcome as ``.job.json`` in its folder, written atomically."""
    write_text_atomic(job.workdir / RECORD, json.dumps(asdict(result), indent=1))


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


def outcome_summary(statuses: list[str]) -> str:
    """One line counting job outcomes, in the words every report of a run uses.

    ``"432 jobs: 392 succeeded (12 from cache), 20 not applicable, 20 failed (8 failed, 12 upstream_failed)"``
    """
    counts = {status: statuses.count(status) for status in dict.fromkeys(statuses)}
    succeeded = counts.get(SUCCESS, 0) + counts.get(CACHED, 0)
    parts = [f"{succeeded} succeeded" + (f" ({counts[CACHED]} from cache)" if counts.get(CACHED) else "")]
    if counts.get(NOT_APPLICABLE):
        parts.append(f"{counts[NOT_APPLICABLE]} not applicable")
    failures = {s: n for s, n in counts.items() if s in FAILURES}
    if failures:
        detail = ", ".join(f"{n} {s}" for s, n in failures.items())
        parts.append(f"{sum(failures.values())} did not succeed ({detail})")
    if counts.get(NOT_RUN):
        parts.append(f"{counts[NOT_RUN]} not run as they are now (scored 0)")
    return f"{len(statuses)} jobs: " + ", ".join(parts)


class RunInterrupted(Exception):
    """The run was interrupted (Ctrl-C, SIGTERM); ``results`` holds what finished, running jobs as
    ``interrupted``. Everything recorded is kept: the same command resumes where it stopped."""

    def __init__(self, results: dict[str, JobResult]) -> None:
        super().__init__("interrupted")
        self.results = results


#: Head-room over a label's memory before a job counts as out of memory (allocator slack).
MEMORY_MARGIN = 1.25


def job_memory_limit_gb(job: Job, memory_scale: float | None) -> float | None:
    """The heap limit of a job: its labels' memory x ``memory_scale`` x :data:`MEMORY_MARGIN` (None: none)."""
    if memory_scale is None:
        return None
    return requests(job.spec.resources).memory_gb * memory_scale * MEMORY_MARGIN


class _LazyServers:
    """The run's warm-start servers, each started by the first job that needs it (a resume may
    need none): one with the scientific stack, and one for each :func:`extra_preload` (torch, the
    graph code, both). A job whose server could not start uses the plain one, or starts cold."""

    def __init__(self, env: dict[str, str], log_path: Path | None) -> None:
        self.env, self.log_path = env, log_path
        self._servers: dict[tuple[str, ...], WarmServer | None] = {}
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, preload: tuple[str, ...] = ()) -> WarmServer | None:
        if self.log_path is None:
            return None
        with self._guard:
            lock = self._locks.setdefault(preload, threading.Lock())
        with lock:  # a server starting (seconds) does not hold up jobs of the other one
            if preload not in self._servers:
                log = self.log_path
                if preload:  # .warm_start.torch.log beside .warm_start.log
                    log = log.with_name(f"{log.stem}.{preload_name(preload)}{log.suffix}")
                try:
                    server: WarmServer | None = WarmServer(self.env, log, preload)
                except Exception as exc:  # e.g. the log folder cannot be written
                    tqdm.write(f"scmib: warm start failed ({exc})")
                    server = None
                if server is None or not server.alive:
                    tqdm.write(f"scmib: warm start failed (see {log}); components start without it")
                self._servers[preload] = server
            server = self._servers[preload]
        if server is not None and server.alive:
            return server
        return self.get() if preload else None

    def close(self) -> None:
        """End the servers. Ctrl-C meanwhile (every job may be done) interrupts the run: the server
        is killed and the rest still ended."""
        for server in list(self._servers.values()):
            if server is not None:
                try:
                    server.close()
                except KeyboardInterrupt:
                    stop_all()


def execute(
    jobs: list[Job],
    n_jobs: int = 1,
    progress: bool = True,
    memory_scale: float | None = 1.0,
    warm_start_log: Path | None = None,
    numba_cache: Path | None = None,
) -> dict[str, JobResult]:
    """Run ``jobs`` (dependencies first, the way to long jobs before the rest: :func:`start_order`),
    ``n_jobs`` at a time; a failure skips only its dependents.

    Each job runs under the memory of its labels times ``memory_scale`` (None:
    no limit). With ``warm_start_log`` components are forked from a warm-start
    server (:mod:`scmib.runner.warm`, its output in that file; a second one for
    torch components writes ``<stem>.torch<suffix>`` beside it) instead of
    started cold; ``numba_cache`` is the folder numba caches compiled code in.
    On Ctrl-C or SIGTERM (as ``KeyboardInterrupt``) every running component is
    stopped at once and recorded as ``interrupted``, nothing new starts, and
    :class:`RunInterrupted` is raised.
    """
    n_jobs = max(1, n_jobs)
    keys = {job.id: job.key for job in jobs}
    threads = threads_per_job(n_jobs)
    warm = _LazyServers(job_env(threads, numba_cache), warm_start_log)

    def run(job: Job, key: str, memory_limit_gb: float | None) -> JobResult:
        # Interrupted while this job waited for a thread: start no server for it (it is stopped anyway).
        preload = extra_preload(job.spec.requirements.python, job.inputs.values())
        server = None if _INTERRUPTED.is_set() else warm.get(preload)
        return run_job(
            job, key, threads, memory_limit_gb=memory_limit_gb, warm=server, numba_cache=numba_cache
        )

    results: dict[str, JobResult] = {}
    pending = start_order(jobs)  # long jobs early: they do not end the run alone
    running: dict[Future, Job] = {}
    _INTERRUPTED.clear()
    bar = tqdm(
        total=len(jobs),
        desc="scmib run",
        unit="job",
        # A log file gets the outcome lines, not a frame every half second.
        disable=not progress or not sys.stderr.isatty(),
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
    )

    def show(refresh: bool = False) -> None:
        failed = sum(r.status in (FAILED, TIMEOUT, OOM) for r in results.values())
        bar.set_postfix_str(f"running={len(running)} done={len(results)} failed={failed}", refresh=refresh)

    def finish(job_id: str, result: JobResult) -> None:
        results[job_id] = result
        if result.status in (FAILED, TIMEOUT, OOM):
            bar.write(f"[{result.status}] {job_id}: see {result.log}")
        show()
        bar.update(1)

    def collect(futures) -> None:
        for future in futures:
            job = running.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # the runner itself must never stop on one job
                result = JobResult(
                    job.id, FAILED, None, 0.0, 0.0, 0.0, keys[job.id], "", f"runner error: {exc}"
                )
            finish(job.id, result)

    try:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            try:
                while (pending or running) and not _INTERRUPTED.is_set():
                    for job in [j for j in pending if all(d.id in results for d in j.deps)]:
                        if len(running) >= n_jobs:
                            break  # submit no more than can run, so "running" means running
                        pending.remove(job)
                        key = keys[job.id]
                        dep_results = [results[d.id] for d in job.deps]
                        skipped = skipped_result(job, key, dep_results)
                        if skipped is not None:
                            # Its outputs of an earlier run are not what its record now says.
                            _set_aside(list(job.outputs.values()), ".previous")
                            # Nor is its log of an earlier run: the log says why it did not run now.
                            write_text_atomic(job.workdir / LOG, f"not run: {skipped.message}\n")
                            write_record(job, skipped)  # so later runs' results can show it too
                            finish(job.id, skipped)
                        elif (cached := cached_result(job, key)) is not None:
                            finish(job.id, cached)
                        else:
                            limit = job_memory_limit_gb(job, memory_scale)
                            future = pool.submit(run, job, key, limit)
                            running[future] = job
                    show(refresh=True)  # what runs now, after this round of starts
                    if not running:
                        if pending and not any(all(d.id in results for d in j.deps) for j in pending):
                            raise RuntimeError(f"jobs depend on jobs that are not planned: {pending[0].id}")
                        continue
                    collect(wait(running, return_when=FIRST_COMPLETED)[0])
            except KeyboardInterrupt:
                stop_all()
            # Interrupted: the stopped components end within seconds; record them before leaving.
            while running:
                try:
                    collect(wait(running)[0])
                except KeyboardInterrupt:  # a second Ctrl-C while stopping: stop again, keep waiting
                    stop_all()
    finally:
        bar.close()
        warm.close()
    if _INTERRUPTED.is_set():
        raise RunInterrupted(results)
    return results

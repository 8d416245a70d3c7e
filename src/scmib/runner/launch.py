"""Start a component, contain it, and record its own usage.

``python -m scmib.runner.launch USAGE [--memory-bytes N] [--log-bytes N] -- CMD...``

- **Its own peak memory.** Linux carries a process's memory high-water mark
  across ``exec``: a job started straight from the runner reports at least the
  runner's own peak. This small launcher starts fresh, forks and execs the
  command, and writes the command's own rusage (``maxrss_kb``, ``cpu_s``) as
  JSON to USAGE.
- **No process left behind.** The launcher is a child subreaper
  (``PR_SET_CHILD_SUBREAPER``): a grandchild that detaches (``setsid``, a
  daemon) is re-parented to it, not to init. When the command ends, or when the
  launcher gets SIGTERM (the runner's timeout or interruption), it kills every
  process still below it.
- **Memory limit.** With ``--memory-bytes`` the command runs under
  ``RLIMIT_DATA`` (its heap and anonymous mappings, which is what Python,
  numpy and torch allocate): past it an allocation fails (``MemoryError``)
  instead of the machine swapping. cgroup v1 machines (like these) offer no
  writable memory controller to a process.
- **Bounded log.** The command's output goes through the launcher into the
  log (the launcher's stdout): the first and the last ``--log-bytes`` are
  kept, with a line saying how much was dropped between them.

It exits as the command did (killed by the same signal, so a memory kill still reads 137).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

PR_SET_CHILD_SUBREAPER = 36
#: The head and the tail of a job's output kept in its log (each).
LOG_BYTES = 4 * 1024 * 1024


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children (Linux); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), deepest last."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                queue += children
    return found


def kill_descendants(sweeps: int = 100) -> None:
    """SIGKILL every process below this one, reaping between sweeps (new forks may appear meanwhile)."""
    for sweep in range(sweeps):
        below = descendants(os.getpid())
        if not below:
            break
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if sweep + 1 < sweeps:
            reap()


def reap() -> None:
    """Collect every child that has exited (orphans re-parented here included)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


class BoundedLog:
    """Copies a stream to ``out`` keeping the first and the last ``limit`` bytes."""

    def __init__(self, out, limit: int) -> None:
        self.out, self.limit = out, limit
        self.head_left = limit
        self.tail = bytearray()
        self.dropped = 0

    def write(self, data: bytes) -> None:
        if self.head_left > 0:
            head, data = data[: self.head_left], data[self.head_left :]
            self.out.write(head)
            self.out.flush()
            self.head_left -= len(head)
        if data:
            self.tail += data
            excess = len(self.tail) - self.limit
            if excess > 0:
                del self.tail[:excess]
                self.dropped += excess

    def close(self) -> None:
        if self.dropped:
            note = f"\n[... {self.dropped} bytes of output dropped: the log keeps its head and tail ...]\n"
            self.out.write(note.encode())
        self.out.write(bytes(self.tail))
        self.out.flush()


def _pump(fd: int, log: BoundedLog) -> None:
    with os.fdopen(fd, "rb", buffering=0) as stream:
        while chunk := stream.read(65536):
            log.write(chunk)


def supervise(
    start: Callable[[], None], usage_path: str, memory_bytes: int | None = None, log_bytes: int = LOG_BYTES
) -> NoReturn:
    """Run ``start`` (it execs a command or runs a script, and never returns) in a child process and
    exit as it did, after writing its own usage to ``usage_path``.

    The child's output goes through a :class:`BoundedLog` to this process's stdout; this process
    becomes a subreaper and kills whatever the child leaves running. Called by :func:`main` (a cold
    start: ``start`` execs the command) and by :mod:`scmib.runner.warm` (a warm start: ``start``
    runs the component's script in the already-initialised interpreter).
    """
    become_subreaper()
    read_end, write_end = os.pipe()
    # The runner's timeout or interruption: end the command and everything it started (one sweep,
    # no reaping here: the command's own exit status is collected by wait4 below). Set before the
    # fork, so a stop that comes while the command starts is not lost.
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()
        kill_descendants(sweeps=1)

    signal.signal(signal.SIGTERM, stop)
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.close(read_end)
            os.dup2(write_end, 1)
            os.dup2(write_end, 2)
            os.close(write_end)
            if memory_bytes:
                resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
            start()
        finally:
            os._exit(127)
    os.close(write_end)
    log = BoundedLog(sys.stdout.buffer, log_bytes)
    pump = threading.Thread(target=_pump, args=(read_end, log), daemon=True)
    pump.start()
    if stopping.is_set():
        stop()
    while True:
        try:
            _, status, usage = os.wait4(pid, 0)
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for old kernels
            continue
    kill_descendants()  # whatever the command left running (daemons, setsid'd grandchildren)
    pump.join(timeout=10)
    log.close()
    with open(usage_path, "w") as handle:
        json.dump({"maxrss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}, handle)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if number != signal.SIGKILL:  # SIGKILL cannot be caught and needs no reset
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    sys.exit(os.waitstatus_to_exitcode(status))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m scmib.runner.launch USAGE [options] -- CMD...")
    parser.add_argument("usage")
    parser.add_argument("--memory-bytes", type=int, default=None)
    parser.add_argument("--log-bytes", type=int, default=LOG_BYTES)
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("no command after --")
    split = argv.index("--")
    args, cmd = parser.parse_args(argv[:split]), argv[split + 1 :]
    supervise(lambda: os.execvp(cmd[0], cmd), args.usage, args.memory_bytes, args.log_bytes)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Warm start: components forked from a parent that has already imported the scientific stack.

Importing numpy, scipy, pandas, anndata, scanpy, scikit-learn and scmib costs
seconds of CPU in every component process, and scanpy's neighbour graph adds
seconds more (pynndescent compiles its numba functions on import). The local
runner starts one *warm server* per run (``python -m scmib.runner.warm``) that
pays for this once; each job is then a fork of it:

    runner --request--> server --fork--> supervisor --fork--> component
                          (preloaded)   (launch.supervise)    (runs script.py)

The supervisor is :func:`scmib.runner.launch.supervise`, the same code a cold
start runs (subreaper, bounded log, memory limit, the component's own usage),
in a session of its own, so timeouts, interruption, exit codes, logs and
accounting are those of a cold start. The component runs its ``script.py`` as
``python script.py ARGS`` would (``__main__``, ``sys.argv``, the script's
folder on ``sys.path``, exit status, ``atexit``). Imports only some components
need stay lazy: a component that declares torch (``requirements.python``:
``torch`` or ``scvi-tools``) is forked from a second server that has also
imported torch, started when the first such job runs (a run without one never
imports it); scvi-tools itself is imported in the component. A component that
declares ``pynndescent`` (it builds kNN graphs through scanpy) and reads 8,192
cells or more is forked from a server that has built one graph on pynndescent's
path, whose numba code cannot be cached on disk and took 13 s to compile in
every such job (:func:`scmib.metrics.embedding.graph.compile_neighbour_search`);
on fewer cells scanpy's graph is exact and never runs it. A component declaring
both gets a server with both.

Peak memory of a warm component includes the preloaded modules it shares with
the server (about what a cold component spends importing them); CPU time is its
own only, which is the point.

Protocol (one JSON object per line): the runner writes ``{"script", "argv",
"log", "usage", "memory_bytes"}`` to the server's stdin; the server answers on
its stdout ``{"started": pid}``, and later ``{"exited": pid, "status",
"maxrss_kb", "cpu_s"}`` when that supervisor ends.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import json
import os
import re
import runpy
import select
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from scmib.runner.launch import supervise

#: What the server imports before it forks anything (every component needs most of it).
PRELOAD = ("numpy", "scipy.sparse", "pandas", "anndata", "scanpy", "sklearn", "scmib.component")
#: What the second server adds, for the components that train torch models (1.5 s of CPU each).
TORCH_PRELOAD = ("torch", "scmib.methods.torch_models")
#: Python requirements (of a spec) whose components import torch.
TORCH_REQUIREMENTS = frozenset({"torch", "scvi-tools"})
#: What a server adds for the components that build kNN graphs ("module:function" is called).
GRAPH_PRELOAD = ("scmib.metrics.embedding.graph:compile_neighbour_search",)
#: Python requirements (of a spec) whose components build scanpy's kNN graphs.
GRAPH_REQUIREMENTS = frozenset({"pynndescent"})
#: Cells from which scanpy's graph takes pynndescent (``PYNNDESCENT_MIN_CELLS`` of
#: ``scmib.metrics.embedding.graph``, not imported here: it imports scanpy): smaller inputs
#: never run the code the graph server compiles, so they do not start it.
GRAPH_MIN_CELLS = 8192
#: Short names of the extra preloads, for the servers' log files (``.warm_start.torch.log``).
_PRELOAD_NAMES = (("torch", TORCH_PRELOAD), ("graph", GRAPH_PRELOAD))
#: Seconds the runner waits for the server to have imported everything.
READY_TIMEOUT_S = 300.0


PR_SET_NAME = 15


def _name_process(name: str) -> None:
    """Show ``name`` (15 bytes) as this process's name in ``top`` and ``ps -o comm`` (Linux): a fork
    of the server would otherwise look like the server itself."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def _run_script(script: str, argv: list[str]) -> None:
    """Run ``script`` as ``python script ARGV`` would, in this (forked) interpreter, then exit."""
    # The signal handling of a new interpreter (the supervisor's and the server's are inherited).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _name_process(Path(script).parent.name)
    sys.argv = [script, *argv]
    sys.path[0] = str(Path(script).parent)  # where `python script.py` puts it (the server has its cwd)
    if "numpy" in sys.modules:  # a cold interpreter seeds numpy's global generator from the OS
        sys.modules["numpy"].random.seed()
    code: Any = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()  # what interpreter shutdown would run (temporary folders, ...)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code or 0)


def _start_supervisor(request: dict[str, Any], reply_fd: int, wakeup_fd: int) -> None:
    """In a fresh fork of the server: become a job's supervisor (never returns)."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(reply_fd)
        os.close(wakeup_fd)
        os.setsid()  # the runner stops a job by its process group, as for a cold start
        _name_process("scmib-launch")
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        supervise(
            lambda: _run_script(request["script"], request["argv"]),
            request["usage"],
            request.get("memory_bytes"),
        )
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException:
        traceback.print_exc()
    os._exit(127)


def extra_preload(requirements: Collection[str], inputs: Iterable[Path] = ()) -> tuple[str, ...]:
    """What the server of a component with these Python ``requirements`` (as a spec lists them:
    ``torch``, ``scvi-tools>=1.1``, ...) preloads beyond :data:`PRELOAD`: :data:`TORCH_PRELOAD`
    for torch users, :data:`GRAPH_PRELOAD` for graph builders one of whose ``inputs`` (``.h5ad``
    files) has :data:`GRAPH_MIN_CELLS` cells or more, both, or none."""
    names = {re.split(r"[^A-Za-z0-9._-]", r.strip(), maxsplit=1)[0] for r in requirements}
    names = {name.lower().replace("_", "-") for name in names}
    torch = TORCH_PRELOAD if TORCH_REQUIREMENTS & names else ()
    large = bool(GRAPH_REQUIREMENTS & names) and max(map(h5ad_cells, inputs), default=0) >= GRAPH_MIN_CELLS
    return torch + (GRAPH_PRELOAD if large else ())


def h5ad_cells(path: Path) -> int:
    """Cells (``obs``) of an ``.h5ad`` file, read from its index alone; 0 for any other file."""
    if Path(path).suffix != ".h5ad" or not Path(path).is_file():
        return 0
    import h5py

    from scmib.io import index_length

    try:
        with h5py.File(path, "r") as h5ad:
            return index_length(h5ad["obs"])
    except (OSError, KeyError, TypeError, ValueError):  # unreadable here: the job will say why
        return 0


def preload_name(preload: Sequence[str]) -> str:
    """A short name of an :func:`extra_preload`: ``torch``, ``graph``, ``torch+graph``."""
    names = [name for name, group in _PRELOAD_NAMES if set(group) <= set(preload)]
    return "+".join(names) or "+".join(preload)


def _preload(entry: str) -> None:
    """Import ``module``, or import it and call ``module:function``."""
    module, _, function = entry.partition(":")
    imported = importlib.import_module(module)
    if function:
        getattr(imported, function)()


def serve(extra: Sequence[str] = ()) -> None:
    """The server's loop: preload (:data:`PRELOAD` and ``extra``), say ready, then fork a
    supervisor per request and report exits."""
    # Replies go to a private copy of stdout; anything a library prints goes to stderr instead.
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    for entry in (*PRELOAD, *extra):
        _preload(entry)
    # The server never runs a torch operation: a fork inherits no OpenMP thread pool and no CUDA
    # context (a child cannot use its parent's). The runner's PYTORCH_NVML_BASED_CUDA_CHECK keeps
    # even torch.cuda.is_available() from initialising CUDA; check that nothing did.
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise RuntimeError("importing the preloaded modules initialised CUDA; cannot fork from here")
    from scmib.metrics.embedding.graph import preload_graph_code

    preload_graph_code()
    wakeup_r, wakeup_w = os.pipe()
    os.set_blocking(wakeup_w, False)
    signal.set_wakeup_fd(wakeup_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select() through the wakeup fd

    def reply(message: dict[str, Any]) -> None:
        os.write(reply_fd, (json.dumps(message) + "\n").encode())

    reply({"ready": os.getpid()})
    pending = b""
    while True:
        with contextlib.suppress(InterruptedError):
            readable, _, _ = select.select([0, wakeup_r], [], [], 5.0)
        if wakeup_r in readable:
            os.read(wakeup_r, 4096)
        while True:  # report every supervisor that has ended
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            cpu = usage.ru_utime + usage.ru_stime
            reply({"exited": pid, "status": status, "maxrss_kb": usage.ru_maxrss, "cpu_s": cpu})
        if 0 not in readable:
            continue
        chunk = os.read(0, 1 << 16)
        if not chunk:  # the runner has gone: so does the server (running jobs carry on and end)
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            sys.stdout.flush()  # nothing buffered here may reach a job's log
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _start_supervisor(request, reply_fd, wakeup_r)
            reply({"started": pid})


class WarmServer:
    """The runner's handle on a warm server: start jobs in it and wait for them, from any thread.

    ``env`` is the environment of every job (thread counts, numba's cache); the
    server's own output goes to ``log_path``; it imports ``preload`` too (see
    :func:`extra_preload`).
    """

    def __init__(self, env: dict[str, str], log_path: Path, preload: Sequence[str] = ()) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._started: list[int] = []
        self._exited: dict[int, dict[str, Any]] = {}
        self.alive = False
        self.pid: int | None = None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if preload:  # torch.cuda.is_available() asks NVML, not CUDA (whose state a fork cannot share)
            env = {**env, "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}
        with open(log_path, "w") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "scmib.runner.warm", *preload],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal is the runner's to handle
            )
        ready = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(ready,), daemon=True)
        self._reader.start()
        ready.wait(READY_TIMEOUT_S)
        self.alive = ready.is_set() and self.pid is not None

    def _read(self, ready: threading.Event) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            message = json.loads(line)
            with self._changed:
                if "ready" in message:
                    self.pid = message["ready"]
                    ready.set()
                elif "started" in message:
                    self._started.append(message["started"])
                elif "exited" in message:
                    self._exited[message["exited"]] = message
                self._changed.notify_all()
        with self._changed:
            self.alive = False
            self._changed.notify_all()
        ready.set()

    def start(self, script: Path, argv: list[str], log: Path, usage: Path, memory_bytes: int | None) -> int:
        """Fork a supervisor running ``script ARGV``; its pid (also its process group)."""
        request = {
            "script": str(script),
            "argv": argv,
            "log": str(log),
            "usage": str(usage),
            "memory_bytes": memory_bytes,
        }
        with self._lock:  # one request at a time, so the next "started" is this one's
            if not self.alive:
                raise RuntimeError("the warm-start server has ended")
            assert self._proc.stdin is not None
            self._proc.stdin.write((json.dumps(request) + "\n").encode())
            self._proc.stdin.flush()
            with self._changed:
                self._changed.wait_for(lambda: self._started or not self.alive)
                if not self._started:
                    raise RuntimeError("the warm-start server ended while starting a job")
                return self._started.pop(0)

    def wait(self, pid: int) -> dict[str, Any]:
        """Block until supervisor ``pid`` ends: ``{"status": wait status, "maxrss_kb", "cpu_s"}``.

        Raises :class:`RuntimeError` if the server ends first (the job's fate is then unknown).
        """
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exited or not self.alive)
            if pid not in self._exited:
                raise RuntimeError("the warm-start server ended while a job was running")
            return self._exited.pop(pid)

    def close(self) -> None:
        """End the server (running jobs are not touched: the runner stops them itself)."""
        with contextlib.suppress(OSError, ValueError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        finally:  # after 10 s, or at once on Ctrl-C during the wait: it must not outlive the run
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self.alive = False


if __name__ == "__main__":
    serve(sys.argv[1:])

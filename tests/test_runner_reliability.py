"""The local runner under faults: Ctrl-C, escaping processes, memory, huge logs, two runs, crashes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import METHODS, add_method, environment_without_thread_limits, scmib_run

from scmib.metrics.embedding.graph import PYNNDESCENT_MIN_CELLS
from scmib.runner import execute as runner
from scmib.runner.execute import INTERRUPTED, OOM, TIMEOUT, _tail, execute, job_env, run_job
from scmib.runner.launch import BoundedLog
from scmib.runner.lock import OutdirLock
from scmib.runner.plan import Job, Selection, plan
from scmib.runner.warm import GRAPH_MIN_CELLS, GRAPH_PRELOAD, TORCH_PRELOAD, WarmServer, extra_preload


@pytest.fixture
def sandbox(repo, first_run, data_dir, tmp_path):
    """A copy of the test repository and of the first run's output folder (everything cached)."""
    copy = tmp_path / "repo"
    shutil.copytree(repo / "components", copy / "components")
    out = tmp_path / "out"
    shutil.copytree(first_run[0], out, symlinks=True)
    return copy, out, data_dir


@pytest.fixture(scope="module")
def warm_server(tmp_path_factory):
    server = WarmServer(job_env(1), tmp_path_factory.mktemp("warm") / "server.log")
    assert server.alive
    yield server
    server.close()


@pytest.fixture(params=["cold", "warm"])
def start(request):
    """How a job starts: a new interpreter, or a fork of the warm-start server (same supervision)."""
    return request.getfixturevalue("warm_server") if request.param == "warm" else None


def starter_plan(repo: Path, out: Path, data_dir: Path, methods: list[str]) -> list[Job]:
    """The jobs of ``methods`` and the error metric on the starter CITE cells (test profile)."""
    selection = Selection(
        tasks=["predict_modality"],
        profile="test",
        datasets=["neurips2021_starter_cite"],
        methods=methods,
        metrics=["error"],
        data_mirror=str(data_dir),
    )
    return plan(repo, out, selection)


def planned(repo: Path, out: Path, data_dir: Path, method: str):
    jobs = starter_plan(repo, out, data_dir, [method])
    return next(j for j in jobs if j.id == f"predict_modality/neurips2021_starter_cite/gex2adt/{method}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


ESCAPE = (
    "import subprocess, time\n"
    "    p = subprocess.Popen(['setsid', 'sleep', '600'])\n"
    "    open(str(run.path('output')) + '.pid', 'w').write(str(p.pid))\n"
    "    time.sleep(600)"
)


def test_a_timeout_kills_the_component_and_what_it_detached(sandbox, start):
    repo, out, data_dir = sandbox
    add_method(repo, "escaping_method", ESCAPE)
    job = planned(repo, out, data_dir, "escaping_method")
    job.workdir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    result = run_job(job, job.key, threads=1, time_limit=8, warm=start)
    assert result.status == TIMEOUT and time.perf_counter() - began < 30
    grandchild = int(Path(str(job.outputs["output"]) + ".pid").read_text())
    time.sleep(0.5)
    assert not alive(grandchild), "a setsid'd grandchild outlived its job"


def test_memory_beyond_the_label_is_an_oom_with_its_limit(sandbox, start):
    repo, out, data_dir = sandbox
    add_method(repo, "greedy_method", "import numpy as np; np.ones(int(4e8))")  # 3.2 GB
    job = planned(repo, out, data_dir, "greedy_method")
    result = run_job(job, job.key, threads=1, memory_limit_gb=1.5, warm=start)
    assert result.status == OOM
    assert "its limit is 1.5 GB" in result.message and "Unable to allocate" in result.message


def test_a_crashed_job_leaves_no_output_under_its_final_name(sandbox, start):
    repo, out, data_dir = sandbox
    add_method(
        repo, "half_writer", "open(str(run.path('output')), 'wb').write(b'half an h5ad'); raise SystemExit(3)"
    )
    job = planned(repo, out, data_dir, "half_writer")
    result = run_job(job, job.key, threads=1, warm=start)
    output = job.outputs["output"]
    assert result.status == "failed" and result.exit_code == 3 and not output.exists()
    assert Path(str(output) + ".partial").read_bytes() == b"half an h5ad"
    assert "set aside as prediction.h5ad.partial" in result.message


def test_an_interrupt_in_the_calling_thread_is_recorded_then_raised(sandbox, start):
    """``scmib job`` waits for its component in its own thread, where Nextflow's SIGTERM arrives as
    KeyboardInterrupt: the component is killed, its half-written output set aside and the job
    recorded as interrupted before the interrupt goes on."""
    repo, out, data_dir = sandbox
    add_method(
        repo,
        "slow_writer",
        "import time; open(str(run.path('output')), 'wb').write(b'half an h5ad'); time.sleep(600)",
    )
    job = planned(repo, out, data_dir, "slow_writer")
    output = job.outputs["output"]

    def terminate_once_written() -> None:  # as Nextflow cancels a task
        while not output.exists():
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_once_written, daemon=True).start()
    began = time.perf_counter()
    handler = signal.signal(signal.SIGTERM, runner.raise_interrupt)  # what ``scmib job`` installs
    try:
        with pytest.raises(KeyboardInterrupt):
            run_job(job, job.key, threads=1, warm=start)
    finally:
        signal.signal(signal.SIGTERM, handler)
        runner._INTERRUPTED.clear()
    assert time.perf_counter() - began < 60
    record = json.loads((job.workdir / ".job.json").read_text())
    assert record["status"] == INTERRUPTED and "interrupted" in record["message"]
    assert not output.exists() and Path(str(output) + ".partial").read_bytes() == b"half an h5ad"


def test_a_job_skipped_for_a_failed_dependency_sets_its_earlier_output_aside(sandbox):
    """A metric whose method now fails is recorded ``upstream_failed``; its score of the earlier
    run no longer sits under its final name (it becomes ``score.h5ad.previous``)."""
    repo, out, data_dir = sandbox
    script = repo / METHODS / "knn_regression" / "script.py"
    main = "def main(run: ComponentRun) -> None:\n"
    script.write_text(script.read_text().replace(main, main + "    raise RuntimeError('broken since')\n"))
    jobs = starter_plan(repo, out, data_dir, ["knn_regression"])
    metric = next(j for j in jobs if j.id.endswith("/gex2adt/knn_regression/error"))
    score = metric.outputs["output"]
    assert score.is_file()  # the first run's
    results = execute(jobs, n_jobs=2, progress=False)
    assert results[metric.id].status == "upstream_failed"
    assert not score.exists() and Path(str(score) + ".previous").is_file()
    # Its log is not the earlier run's command line and output, but why it did not run now.
    method = "predict_modality/neurips2021_starter_cite/gex2adt/knn_regression"
    assert (metric.workdir / ".job.log").read_text() == f"not run: {method}: failed\n"


def test_logs_are_bounded_on_disk_and_read_from_their_end(tmp_path):
    path = tmp_path / "log"
    with open(path, "wb") as handle:
        log = BoundedLog(handle, limit=1000)
        for i in range(100_000):
            log.write(f"line {i}\n".encode())
        log.close()
    text = path.read_text()
    assert len(text) < 2200 and text.startswith("line 0\n") and text.endswith("line 99999\n")
    assert "bytes of output dropped" in text
    big = tmp_path / "big.log"
    big.write_text("$ command\n" + "x" * 50_000_000 + "\nthe error\n")
    assert _tail(big, 1) == "the error"


def test_a_second_run_on_the_same_folder_is_refused(sandbox):
    repo, out, _ = sandbox
    with OutdirLock(out):
        cmd = [sys.executable, "-m", "scmib.cli", "run", "--profile", "test", "--outdir", str(out)]
        proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"{out} is in use by scmib run" in proc.stderr and "--wait" in proc.stderr


def what_is_running(proc: subprocess.Popen, out: Path) -> str:
    """For a failure message: the processes still running, then the run's own output and the logs
    of the jobs it ran (the run is killed, so this never waits)."""
    tree = subprocess.run(["ps", "-eo", "pid,ppid,pgid,stat,etime,args"], capture_output=True, text=True)
    proc.kill()
    _, stderr = proc.communicate()
    logs = [log for log in out.rglob(".job.log") if time.time() - log.stat().st_mtime < 600]
    tails = [f"--- {log}\n{log.read_text()[-1500:]}" for log in logs]
    warm = out / ".warm_start.log"
    return "\n".join(
        [tree.stdout[-6000:], f"--- scmib run stderr\n{stderr[-3000:]}", *tails]
        + ([f"--- {warm}\n{warm.read_text()[-2000:]}"] if warm.is_file() else [])
    )


def interruptible(cmd: list[str], cwd: Path) -> subprocess.Popen:
    """Start ``cmd`` as a terminal starts a foreground command: with Ctrl-C's default action, even
    where this test inherited SIGINT ignored (a shell starts background jobs so, and CI may be one)."""

    def default_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(cmd, cwd=cwd, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


def run_command(repo: Path, out: Path, data_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "scmib.cli", "run", "--task", "predict_modality", "--profile", "test",
        "--datasets", "neurips2021_starter_cite", "--metrics", "error", "--outdir", str(out),
        "--data_mirror", str(data_dir), "--jobs", "2", "--no-progress",
    ]  # fmt: skip


def test_ctrl_c_stops_running_components_at_once_and_says_how_to_resume(sandbox):
    repo, out, data_dir = sandbox
    add_method(repo, "hanging_method", ESCAPE)
    proc = interruptible(run_command(repo, out, data_dir), repo)
    job_dir = out / "predict_modality/neurips2021_starter_cite/gex2adt/hanging_method"
    pid_file = job_dir / "prediction.h5ad.pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), "the hanging method never started"
    proc.send_signal(signal.SIGINT)
    start = time.perf_counter()
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("scmib run did not stop within 60 s of Ctrl-C\n" + what_is_running(proc, out))
    assert proc.returncode == 130 and time.perf_counter() - start < 20, what_is_running(proc, out)
    assert "Traceback" not in stderr and "run the same command again to resume" in stderr
    record = json.loads((job_dir / ".job.json").read_text())
    assert record["status"] == INTERRUPTED
    time.sleep(0.5)
    assert not alive(int(pid_file.read_text())), "a component's process outlived Ctrl-C"


@pytest.mark.slow
def test_a_run_interrupted_anywhere_then_resumed_equals_an_uninterrupted_one(
    repo, first_run, data_dir, tmp_path
):
    """Ctrl-C at three moments of one run, each time resumed; the end is the uninterrupted run's."""
    copy = tmp_path / "repo"
    shutil.copytree(repo / "components", copy / "components")
    out = tmp_path / "out"
    for delay in (4.0, 9.0, 15.0):
        proc = interruptible(run_command(copy, out, data_dir), copy)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode in (0, 130), stderr[-2000:]
        assert "Traceback" not in stderr
    scmib_run(copy, data_dir, out)
    resumed = pd.read_csv(out / "results" / "results.tsv", sep="\t")
    whole = pd.read_csv(first_run[0] / "results" / "results.tsv", sep="\t")
    keys = ["dataset", "variant", "method", "metric"]
    merged = resumed.merge(whole, on=keys, suffixes=("_resumed", "_whole"))
    assert len(merged) == len(resumed) == len(whole)
    same = merged[merged["method"] != "knn_regression"]  # another test edits kNN in the shared repo
    pd.testing.assert_series_equal(
        same["value_resumed"], same["value_whole"], check_names=False, check_exact=False, rtol=1e-12
    )


def test_ctrl_c_while_the_warm_servers_end_kills_them_and_interrupts_the_run(tmp_path):
    """Ctrl-C may come after the last job, while the servers end: the server is killed, not left
    behind, and the run counts as interrupted (exit 130: run the same command again)."""
    from scmib.runner import execute as runner

    servers = runner._LazyServers(job_env(1, tmp_path / "numba"), tmp_path / "warm.log")
    server = servers.get()
    assert server is not None and server.alive
    real_wait, calls = server._proc.wait, []

    def wait(timeout=None):
        calls.append(timeout)
        if len(calls) == 1:
            raise KeyboardInterrupt  # as SIGINT arrives during the wait
        return real_wait(timeout)

    server._proc.wait = wait
    runner._INTERRUPTED.clear()
    try:
        servers.close()
        assert runner._INTERRUPTED.is_set()
    finally:
        runner._INTERRUPTED.clear()
    assert len(calls) == 2 and server._proc.returncode is not None and not server.alive


def test_a_warm_start_runs_the_component_as_a_new_interpreter_would(sandbox, warm_server):
    """Same outcome, exit code and log as a cold start; the script is ``__main__`` with its own
    argv and folder on the path; what it prints and its traceback reach its log; its CPU time is
    its own (none of the server's imports)."""
    repo, out, data_dir = sandbox
    add_method(
        repo,
        "introspective",
        "import sys, pathlib; print('ARGV', sys.argv[1:3], pathlib.Path(sys.path[0]).name);"
        " print('MAIN', __name__); raise ValueError('boom')",
    )
    job = planned(repo, out, data_dir, "introspective")
    results = {name: run_job(job, job.key, threads=1, warm=server) for name, server in
               (("cold", None), ("warm", warm_server))}  # fmt: skip
    for name, result in results.items():
        log = Path(result.log).read_text()
        assert result.status == "failed" and result.exit_code == 1, name
        assert "ARGV ['--input_train_mod1=" in log and "introspective" in log and "MAIN __main__" in log
        assert "ValueError: boom" in log and "ValueError: boom" in result.message
    assert results["warm"].cpu_time_s < results["cold"].cpu_time_s / 3


def test_torch_components_start_with_torch_imported_and_train_as_from_a_cold_start(sandbox, tmp_path):
    """A component that declares torch is forked from a second server that has imported it; others
    still never import it; and a real torch model forked from that server, on two threads, trains to
    the prediction of a cold start (importing torch before a fork leaves it working)."""
    repo, out, data_dir = sandbox
    probe = "import sys; print('TORCH', 'torch' in sys.modules); raise NotApplicable('a probe')"
    add_method(repo, "torch_user", probe)
    config = repo / METHODS / "torch_user" / "config.yaml"
    config.write_text(config.read_text().replace("python: [scikit-learn]", "python: [torch]"))
    add_method(repo, "plain_user", probe)
    jobs = starter_plan(repo, out, data_dir, ["torch_user", "plain_user"])
    execute(jobs, n_jobs=2, progress=False, warm_start_log=out / ".warm_start.log")
    for job in jobs:
        if job.id.endswith(("/torch_user", "/plain_user")):
            expected = "TORCH True" if job.id.endswith("/torch_user") else "TORCH False"
            assert expected in (job.workdir / ".job.log").read_text(), job.id
    assert (out / ".warm_start.torch.log").is_file()

    cajal = planned(repo, out, data_dir, "cajal_marker_mlp")
    cajal.params["epochs"] = 10  # enough for thousands of steps of each kernel
    prediction = cajal.outputs["output"]
    torch_server = WarmServer(job_env(2), tmp_path / "torch.log", TORCH_PRELOAD)
    try:
        assert torch_server.alive
        predictions = {}
        for name, server in (("cold", None), ("warm", torch_server)):
            result = run_job(cajal, cajal.key, threads=2, time_limit=300, warm=server)
            assert result.status == "success", (name, Path(result.log).read_text()[-2000:])
            predictions[name] = ad.read_h5ad(prediction).layers["normalized"]
        assert torch_server.alive  # the warm job was forked, not started cold after a failure
    finally:
        torch_server.close()
    assert predictions["cold"].shape == (289, 134) and np.ptp(predictions["cold"]) > 0
    np.testing.assert_allclose(predictions["warm"], predictions["cold"], rtol=1e-5, atol=1e-6)


GRAPH_PROBE = """
import sys
import numpy as np
import scipy.sparse as sp
from pynndescent import pynndescent_
from scmib.metrics.embedding.graph import PYNNDESCENT_MIN_CELLS, knn_graph
print("COMPILED BEFORE", bool(pynndescent_.nn_descent.signatures))
rng = np.random.default_rng(0)
types = rng.integers(0, 20, PYNNDESCENT_MIN_CELLS + 1000)
embedding = rng.normal(0, 3, (20, 30))[types] + rng.normal(0, 1, (len(types), 30))
sp.save_npz(sys.argv[1], knn_graph(embedding).obsp["connectivities"].tocsr())
"""


def test_graph_builders_fork_from_a_server_that_compiled_pynndescent_and_build_the_same_graph(tmp_path):
    """A component that declares pynndescent and reads 8,192 cells or more is forked from a server
    that has compiled pynndescent's search (numba cannot cache it on disk: 13 s in every such job);
    its graph equals a cold start's, although numba's threading layer differs (workqueue in the server,
    which a fork survives; GNU OpenMP in a cold process)."""
    assert GRAPH_MIN_CELLS == PYNNDESCENT_MIN_CELLS
    small, large = tmp_path / "small.h5ad", tmp_path / "large.h5ad"
    for path, n_cells in ((small, GRAPH_MIN_CELLS - 1), (large, GRAPH_MIN_CELLS)):
        ad.AnnData(X=sp.csr_matrix((n_cells, 3), dtype=np.float32)).write_h5ad(path)
    assert extra_preload(["pynndescent"], [small, tmp_path / "absent.h5ad"]) == ()  # exact neighbours
    assert extra_preload(["pynndescent"], [small, large]) == GRAPH_PRELOAD
    assert extra_preload(["torch", "pynndescent>=0.5"], [large]) == TORCH_PRELOAD + GRAPH_PRELOAD
    assert extra_preload(["scanpy"], [large]) == ()
    script = tmp_path / "probe.py"
    script.write_text(GRAPH_PROBE)
    env = job_env(2, tmp_path / "numba")
    server = WarmServer(env, tmp_path / "graph_server.log", GRAPH_PRELOAD)
    try:
        assert server.alive, (tmp_path / "graph_server.log").read_text()[-2000:]
        log = tmp_path / "warm.log"
        pid = server.start(script, [str(tmp_path / "warm.npz")], log, tmp_path / "warm.usage", None)
        assert server.wait(pid)["status"] == 0, log.read_text()[-2000:]
    finally:
        server.close()
    assert "COMPILED BEFORE True" in log.read_text()
    cold = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "cold.npz")], env=env, capture_output=True, text=True
    )
    assert cold.returncode == 0 and "COMPILED BEFORE False" in cold.stdout, cold.stderr[-2000:]
    warm, cold_graph = (sp.load_npz(tmp_path / f"{name}.npz") for name in ("warm", "cold"))
    assert cold_graph.nnz > 9000 * 15
    np.testing.assert_array_equal(warm.indptr, cold_graph.indptr)
    np.testing.assert_array_equal(warm.indices, cold_graph.indices)
    np.testing.assert_array_equal(warm.data, cold_graph.data)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to tell one thread from all")
def test_a_process_told_one_thread_keeps_torch_on_one_after_numba_ran_in_parallel():
    """numba ignores OMP_NUM_THREADS and its OpenMP layer set every core in the libgomp torch uses:
    a component given one thread (a user's shell, a cluster) trained on two, one spinning.
    scmib makes numba follow OMP_NUM_THREADS."""
    probe = (
        "import scmib.component, numba, numpy as np, torch\n"
        "@numba.njit(parallel=True)\n"
        "def total(x):\n"
        "    s = 0.0\n"
        "    for i in numba.prange(x.shape[0]):\n"
        "        s += x[i]\n"
        "    return s\n"
        "total(np.ones(1000))\n"
        "print(numba.config.NUMBA_NUM_THREADS, numba.threading_layer(), torch.get_num_threads())\n"
    )
    env = environment_without_thread_limits()
    # The OpenMP layer shares torch's libgomp (where tbb is installed numba would pick tbb).
    env.update(OMP_NUM_THREADS="1", NUMBA_THREADING_LAYER="omp")
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["1", "omp", "1"], proc.stdout


def test_an_omp_thread_count_numba_refuses_is_not_passed_on():
    """``OMP_NUM_THREADS=0`` (OpenMP's own business) must not become numba's 0, which stops its import."""
    env = environment_without_thread_limits()
    probe = "import scmib, numba; print(numba.config.NUMBA_NUM_THREADS)"
    proc = subprocess.run(
        [sys.executable, "-c", probe], env={**env, "OMP_NUM_THREADS": "0"}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout) >= 1

"""The Nextflow side of the runner on real cells: ``scmib plan``, ``scmib job`` per task, ``scmib collect``.

No Nextflow runtime installs here, so :func:`emulate_workflow` does what
``workflows/scmib.nf`` does with the same commands: one folder per task, the
upstream job folders staged in by symlink, the data mirror staged as
``data_mirror`` for loaders, and a job started only when the jobs it reads
from recorded ``success`` in ``.job.status``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import add_method

from scmib.errors import ScmibError
from scmib.runner.workflow import read_job_entry

SCMIB = [sys.executable, "-m", "scmib.cli"]


def scmib(*args: str, cwd: Path, repo: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SCMIB_REPO": str(repo)} if repo else {**os.environ}
    proc = subprocess.run([*SCMIB, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"scmib {args[0]} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def emulate_workflow(
    plan: Path, repo: Path, data_dir: Path, root: Path, only: str | None = None, **job_args: str
) -> dict[str, Path]:
    """Run every job of ``plan`` in its own task folder as the workflow does; return the job folders.

    ``job_args`` (e.g. ``task_time_s``) are given to the jobs of component ``only`` if named, else
    to every job.

    As in ``workflows/modules/scmib_job.nf``: the entry written as ``job.json``,
    the job's own component folder staged as ``component``, its upstream job
    folders beside it, the record folder written under ``jobs/``.
    """
    folders: dict[str, Path] = {}
    for job in json.loads(plan.read_text())["jobs"]:
        sources = job["sources"]
        if not all(
            s in folders and (folders[s] / ".job.status").read_text().strip() == "success" for s in sources
        ):
            continue  # the workflow never starts a job whose sources did not succeed
        task = root / "work" / job["folder"]
        task.mkdir(parents=True)
        for source in sources:
            (task / folders[source].name).symlink_to(folders[source])
        if job["stage"] == "load":
            (task / "data_mirror").symlink_to(data_dir)
        (task / "component").symlink_to(repo / "components" / job["component"])
        (task / "job.json").write_text(job["entry_json"])
        given = job_args if only in (None, job["component"]) else {}
        options = [arg for name, value in given.items() for arg in (f"--{name.replace('_', '-')}", value)]
        scmib("job", "--job", "job.json", "--component", "component", "--record", "jobs", *options, cwd=task)
        folders[job["id"]] = task / job["folder"]
    return folders


def collect_records(plan: Path, folders: dict[str, Path], root: Path, repo: Path) -> Path:
    """``scmib collect`` on the record folders alone (what SCMIB_COLLECT stages), in ``root``."""
    (root / "jobs").mkdir(parents=True)
    for folder in folders.values():
        (root / "jobs" / folder.name).symlink_to(folder.parent / "jobs" / folder.name)
    scmib("collect", "--plan", str(plan), "--jobs", "jobs", "--outdir", ".", cwd=root, repo=repo)
    return root


WORKFLOW_PARAMS = {
    "scmib_profile": "test",
    "tasks": "predict_modality",
    "datasets": "neurips2021_starter_cite",
    "metrics": "error",
    "methods": "knn_regression,crashing_method,inapplicable_method",
    "data_mirror": "/anywhere/the/workflow/stages/it",
    "max_attempts": "3",  # a string, as Nextflow's command line gives it
}


@pytest.fixture(scope="module")
def workflow_run(repo, data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("nf")
    plan = root / "plan.json"
    params = [arg for name, value in WORKFLOW_PARAMS.items() for arg in ("--param", f"{name}={value}")]
    scmib("plan", *params, "--container-engine", "docker", "--output", str(plan), cwd=root, repo=repo)
    folders = emulate_workflow(plan, repo, data_dir, root)
    return plan, collect_records(plan, folders, root / "collect", repo)


def test_plan_lists_every_job_with_its_container_and_resources(workflow_run):
    plan, _ = workflow_run
    jobs = json.loads(plan.read_text())["jobs"]
    stages = {job["stage"] for job in jobs}
    assert stages == {"load", "process", "control_method", "method", "metric"}
    knn = next(j for j in jobs if j["id"].endswith("gex2adt/knn_regression"))
    assert knn["container"] == "ghcr.io/scmib/predict_modality/methods/knn_regression:0.1.0"
    assert knn["sources"] == ["predict_modality/neurips2021_starter_cite/gex2adt/data"]
    assert (knn["cpus"], knn["network"]) == (1, False)
    # Only loaders reach the network; nothing asks for a GPU unless the run does (--gpu).
    options = (knn["container_options"], knn["accelerator"], knn["cluster_options"])
    assert options == ("--network none", None, "")
    loader = next(j for j in jobs if j["stage"] == "load")
    assert loader["params"]["data_mirror"] == "data_mirror" and loader["network"]
    assert loader["container_options"] == ""
    # The entry travels to its task as JSON, unchanged.
    assert json.loads(knn["entry_json"]) == {k: v for k, v in knn.items() if k != "entry_json"}


def test_collected_results_equal_the_local_runner(workflow_run, first_run):
    _, collected = workflow_run
    outdir, _ = first_run
    workflow = pd.read_csv(collected / "results" / "results.tsv", sep="\t")
    local = pd.read_csv(outdir / "results" / "results.tsv", sep="\t")
    keys = ["dataset", "variant", "method", "metric"]
    merged = workflow.merge(local, on=keys, suffixes=("_nf", "_local"))
    assert len(merged) == len(workflow) > 0
    # The local run may have been repeated from its cache by another test: "cached" is a success.
    assert (merged["status_nf"] == merged["status_local"].replace("cached", "success")).all()
    both = merged.dropna(subset=["value_nf"])
    assert len(both) >= 12  # 4 controls + kNN, 2 directions, 2 metrics, at least
    assert (both["value_nf"] - both["value_local"]).abs().max() < 1e-9


def test_collected_run_records_failures_and_has_a_report(workflow_run):
    _, collected = workflow_run
    runs = pd.read_csv(collected / "results" / "runs.tsv", sep="\t").set_index("job")
    crash = runs.loc["predict_modality/neurips2021_starter_cite/gex2adt/crashing_method"]
    assert crash["status"] == "failed" and "deliberate crash" in crash["message"]
    # Its metric never started (the workflow does not route it) and is recorded as skipped.
    assert runs.loc["predict_modality/neurips2021_starter_cite/gex2adt/crashing_method/error", "status"] == (
        "upstream_failed"
    )
    assert runs.loc["predict_modality/neurips2021_starter_cite/gex2adt/inapplicable_method", "status"] == (
        "not_applicable"
    )
    assert (collected / "results" / "report.html").stat().st_size > 10_000
    # Log paths point into the collected job folders, so the report shows the crash's log.
    assert (collected / crash["log"]).is_file()
    assert "deliberate crash" in (collected / "results" / "report.html").read_text()


def _single_job_plan(tmp_path: Path, repo: Path, method: str) -> tuple[Path, str]:
    plan = tmp_path / "plan.json"
    scmib(
        "plan", "--profile", "test", "--datasets", "neurips2021_starter_cite", "--task", "predict_modality",
        "--methods", method, "--metrics", "error", "--data_mirror", "data_mirror",
        "--output", str(plan), cwd=tmp_path, repo=repo,
    )  # fmt: skip
    return plan, f"predict_modality/neurips2021_starter_cite/gex2adt/{method}"


def _copy_of_components(repo: Path, tmp_path: Path, method: str, body: str) -> Path:
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(repo / "components", copy / "components")
    add_method(copy, method, body)
    return copy


def _job_again(task: Path, *args: str) -> subprocess.CompletedProcess:
    return scmib("job", "--job", "job.json", "--component", "component", *args, cwd=task, check=False)


def test_a_memory_kill_is_retried_then_recorded(repo, data_dir, tmp_path):
    """Exit 137 while attempts remain, so Nextflow retries with more memory; on the last one, recorded."""
    killed_repo = _copy_of_components(
        repo, tmp_path, "killed_method", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    )
    plan, job_id = _single_job_plan(tmp_path, killed_repo, "killed_method")
    folders = emulate_workflow(plan, killed_repo, data_dir, tmp_path)  # attempt 1 of 1: recorded
    record = json.loads((folders[job_id] / ".job.json").read_text())
    assert record["status"] == "oom" and record["exit_code"] == -9
    assert "out of memory" in record["message"]
    task = folders[job_id].parent
    assert _job_again(task, "--attempt", "1", "--max-attempts", "3").returncode == 137
    # The task got its request (as Nextflow's task.memory says): more memory next time, so 137.
    request_mb = json.loads((task / "job.json").read_text())["memory_gb"] * 1024
    granted = ("--task-memory-mb", str(request_mb))
    assert _job_again(task, "--attempt", "1", "--max-attempts", "3", *granted).returncode == 137
    # resourceLimits held it below its request: every attempt would get the same, so it is recorded.
    capped = _job_again(task, "--attempt", "1", "--max-attempts", "3", "--task-memory-mb", "512")
    assert capped.returncode == 0 and (folders[job_id] / ".job.status").read_text().strip() == "oom"
    last = _job_again(task, "--attempt", "3", "--max-attempts", "3", "--record", "jobs")
    assert last.returncode == 0
    assert (folders[job_id] / ".job.status").read_text().strip() == "oom"
    assert (task / "jobs" / folders[job_id].name / ".job.status").read_text().strip() == "oom"


def test_a_timeout_is_recorded_once_not_retried_as_out_of_memory(repo, data_dir, tmp_path):
    """A component past the executor's time limit is stopped before it and recorded as a timeout."""
    slow_repo = _copy_of_components(repo, tmp_path, "slow_method", "import time; time.sleep(600)")
    plan, job_id = _single_job_plan(tmp_path, slow_repo, "slow_method")
    # A 4 s task: the component is stopped after 2 s (the margin is half of so short a limit). Only
    # this job has so short a limit: on a busy machine its loader and split may take longer.
    folders = emulate_workflow(
        plan,
        slow_repo,
        data_dir,
        tmp_path,
        only="predict_modality/methods/slow_method",
        task_time_s="4",
        max_attempts="3",
    )
    record = json.loads((folders[job_id] / ".job.json").read_text())
    assert record["status"] == "timeout" and record["wall_time_s"] < 30
    assert "time limit of 2 s" in record["message"]
    # Attempts remain, yet the task exits 0: a timeout would only time out again.
    assert _job_again(folders[job_id].parent, "--attempt", "1", "--max-attempts", "3",
                      "--task-time-s", "4").returncode == 0  # fmt: skip


def test_a_job_missing_its_upstream_files_is_a_clear_error(workflow_run, repo, tmp_path):
    plan, _ = workflow_run
    job_id = "predict_modality/neurips2021_starter_cite/gex2adt/knn_regression"
    entry = next(j for j in json.loads(plan.read_text())["jobs"] if j["id"] == job_id)
    (tmp_path / "job.json").write_text(entry["entry_json"])
    (tmp_path / "component").symlink_to(repo / "components" / entry["component"])
    proc = _job_again(tmp_path)
    assert proc.returncode == 2
    assert "upstream files are not staged" in proc.stderr and "train_mod1.h5ad" in proc.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", r"not an scmib plan entry \(a JSON int, not an object\)"),
        ('[{"id": 1}]', r"not an scmib plan entry \(a JSON list, not an object\)"),
        ('{"id": "x"}', r"not an scmib plan entry \(missing \['component', 'folder'"),
        ("{", "cannot read the job description"),
    ],
)
def test_a_job_description_that_is_not_a_plan_entry_is_named(tmp_path, text, message):
    (tmp_path / "job.json").write_text(text)
    with pytest.raises(ScmibError, match=rf"job\.json: {message}"):
        read_job_entry(tmp_path / "job.json")


def test_a_staged_component_that_is_not_the_jobs_is_a_clear_error(workflow_run, repo, tmp_path):
    plan, _ = workflow_run
    entry = next(j for j in json.loads(plan.read_text())["jobs"] if j["id"].endswith("/knn_regression"))
    (tmp_path / "job.json").write_text(entry["entry_json"])
    (tmp_path / "component").symlink_to(repo / "components/predict_modality/methods/crashing_method")
    proc = _job_again(tmp_path)
    assert proc.returncode == 2 and "the staged component is predict_modality/methods/crashing_method" in (
        proc.stderr
    )


def test_records_hold_no_datasets_and_collect_reads_only_them(workflow_run):
    _, collected = workflow_run
    records = list((collected / "jobs").iterdir())
    assert records
    files = {p.name for record in records for p in record.resolve().iterdir()}
    # Record, status, log, and the metrics' score files: no dataset, task file or prediction.
    assert files == {".job.json", ".job.status", ".job.log", "score.h5ad"}


def test_collect_runs_without_any_record_and_names_infrastructure_failures(workflow_run, repo, tmp_path):
    """Every job lost (image pull failed everywhere, say): results still written, nothing silent."""
    plan, _ = workflow_run
    (tmp_path / "jobs").mkdir()
    proc = scmib("collect", "--plan", str(plan), "--jobs", "jobs", "--outdir", ".", cwd=tmp_path, repo=repo)
    runs = pd.read_csv(tmp_path / "results" / "runs.tsv", sep="\t").set_index("job")
    loader = runs.loc["datasets/neurips2021_starter_cite"]
    assert loader["status"] == "infrastructure_failed" and "trace" in loader["message"]
    assert (runs.drop(index=loader.name)["status"] == "upstream_failed").all()
    assert "1 jobs failed for reasons of the infrastructure" in proc.stdout
    assert (tmp_path / "results" / "report.html").is_file()

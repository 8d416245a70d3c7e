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

SCMIB = [sys.executable, "-m", "scmib.cli"]


def scmib(*args: str, cwd: Path, repo: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SCMIB_REPO": str(repo)}
    proc = subprocess.run([*SCMIB, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"scmib {args[0]} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def emulate_workflow(plan: Path, repo: Path, data_dir: Path, root: Path) -> dict[str, Path]:
    """Run every job of ``plan`` in its own task folder as the workflow does; return the job folders."""
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
        (task / "plan.json").symlink_to(plan)
        scmib("job", "--plan", "plan.json", "--id", job["id"], cwd=task, repo=repo)
        folders[job["id"]] = task / job["folder"]
    return folders


@pytest.fixture(scope="module")
def workflow_run(repo, data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("nf")
    plan = root / "plan.json"
    scmib(
        "plan", "--profile", "test", "--datasets", "neurips2021_starter_cite", "--metrics", "error",
        "--methods", "knn_regression,crashing_method,inapplicable_method",
        "--data_mirror", "data_mirror", "--output", str(plan), cwd=root, repo=repo,
    )  # fmt: skip
    folders = emulate_workflow(plan, repo, data_dir, root)
    collected = root / "collect"
    (collected / "jobs").mkdir(parents=True)
    for folder in folders.values():
        (collected / "jobs" / folder.name).symlink_to(folder)
    scmib("collect", "--plan", str(plan), "--jobs", "jobs", "--outdir", ".", cwd=collected, repo=repo)
    return plan, collected


def test_plan_lists_every_job_with_its_container_and_resources(workflow_run):
    plan, _ = workflow_run
    jobs = json.loads(plan.read_text())["jobs"]
    stages = {job["stage"] for job in jobs}
    assert stages == {"load", "process", "control_method", "method", "metric"}
    knn = next(j for j in jobs if j["id"].endswith("gex2adt/knn_regression"))
    assert knn["container"] == "ghcr.io/scmib/predict_modality/methods/knn_regression:0.1.0"
    assert knn["sources"] == ["predict_modality/neurips2021_starter_cite/gex2adt/data"]
    assert (knn["cpus"], knn["network"]) == (1, False)
    loader = next(j for j in jobs if j["stage"] == "load")
    assert loader["params"]["data_mirror"] == "data_mirror" and loader["network"]


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


def test_a_killed_component_is_retried_then_recorded(repo, data_dir, tmp_path):
    """Exit 137 (out of memory) while attempts remain, so Nextflow retries with more memory; then recorded."""
    import shutil

    killed_repo = tmp_path / "repo"
    shutil.copytree(repo / "components", killed_repo / "components")
    add_method(killed_repo, "killed_method", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    plan = tmp_path / "plan.json"
    scmib(
        "plan", "--profile", "test", "--datasets", "neurips2021_starter_cite", "--task", "predict_modality",
        "--methods", "killed_method", "--metrics", "error", "--data_mirror", "data_mirror",
        "--output", str(plan), cwd=tmp_path, repo=killed_repo,
    )  # fmt: skip
    folders = emulate_workflow(plan, killed_repo, data_dir, tmp_path)  # attempt 1 of 1: recorded
    job_id = "predict_modality/neurips2021_starter_cite/gex2adt/killed_method"
    record = json.loads((folders[job_id] / ".job.json").read_text())
    assert record["status"] == "failed" and record["exit_code"] == -9
    task = folders[job_id].parent
    first = scmib(
        "job", "--plan", "plan.json", "--id", job_id, "--attempt", "1", "--max-attempts", "3",
        cwd=task, repo=killed_repo, check=False,
    )  # fmt: skip
    assert first.returncode == 137
    last = scmib(
        "job", "--plan", "plan.json", "--id", job_id, "--attempt", "3", "--max-attempts", "3",
        cwd=task, repo=killed_repo, check=False,
    )  # fmt: skip
    assert last.returncode == 0
    assert (folders[job_id] / ".job.status").read_text().strip() == "failed"


def test_a_job_missing_its_upstream_files_is_a_clear_error(workflow_run, repo, tmp_path):
    plan, _ = workflow_run
    job_id = "predict_modality/neurips2021_starter_cite/gex2adt/knn_regression"
    proc = scmib("job", "--plan", str(plan), "--id", job_id, cwd=tmp_path, repo=repo, check=False)
    assert proc.returncode == 2
    assert "upstream files are not staged" in proc.stderr and "train_mod1.h5ad" in proc.stderr

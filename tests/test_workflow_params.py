"""The workflow's decisions made in Python: parameters, task options, and checks of a finished run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO

from scmib.errors import ScmibError
from scmib.nextflow.execution import Execution, task_options
from scmib.nextflow.params import load_schema, validate_params
from scmib.nextflow.trace import check_run

SCHEMA = load_schema(REPO)


def test_parameters_as_the_command_line_gives_them_are_typed():
    typed = validate_params(
        {"max_attempts": "10", "gpu": "TRUE", "max_cpus": "8", "max_memory": "16.GB", "methods": 7}, SCHEMA
    )
    assert (typed["max_attempts"], typed["gpu"], typed["max_cpus"], typed["methods"]) == (10, True, 8, "7")
    assert typed["scmib_profile"] == "default" and typed["datasets"] is None  # defaults filled in
    assert validate_params({"max_attempts": 2}, SCHEMA)["max_attempts"] == 2


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"max_attempts": "0"}, "--max_attempts must be at least 1, not 0"),
        ({"max_attempts": "11"}, "--max_attempts must be at most 10"),
        ({"max_attempts": "3.5"}, "--max_attempts must be a whole number, not '3.5'"),
        (
            {"scmib_profile": "fast"},
            "--scmib_profile must be one of ['test', 'default', 'full', 'scale'], not 'fast'",
        ),
        ({"gpu": "yes"}, "--gpu must be true or false, not 'yes'"),
        ({"max_memory": "lots"}, "--max_memory must match"),
        ({"method": "knn"}, "unknown parameter --method (did you mean --methods?)"),
        ({"maxAttempts": "4"}, "unknown parameter --maxAttempts (did you mean --max_attempts?)"),
        ({"container_registry": "ghcr.io/x; rm -rf ~"}, "--container_registry must match"),
    ],
)
def test_wrong_parameters_stop_the_run_with_a_clear_message(given, message):
    with pytest.raises(ScmibError) as err:
        validate_params(given, SCHEMA)
    assert message in str(err.value) and "nextflow_schema.json" in str(err.value)


def test_only_loaders_get_network_and_only_asked_for_gpus_are_given():
    docker = Execution(engine="docker", executor="local", gpu=True)
    assert task_options(docker, network=False, wants_gpu=False)["container_options"] == "--network none"
    assert task_options(docker, network=True, wants_gpu=False)["container_options"] == ""
    assert task_options(docker, network=False, wants_gpu=True) == {
        "container_options": "--network none --gpus all",
        "accelerator": None,  # the local executor ignores it
        "cluster_options": "",
    }
    no_gpu = Execution(engine="docker", gpu=False)
    assert task_options(no_gpu, network=False, wants_gpu=True)["container_options"] == "--network none"
    slurm = task_options(Execution("apptainer", "slurm", gpu=True), network=False, wants_gpu=True)
    assert slurm == {
        "container_options": "--net --network none --nv",
        "accelerator": None,
        "cluster_options": "--gres=gpu:1",
    }
    google = Execution("docker", "google-batch", gpu=True, gpu_type="nvidia-tesla-t4")
    assert task_options(google, network=False, wants_gpu=True)["accelerator"] == {
        "limit": 1,
        "type": "nvidia-tesla-t4",
    }
    # No accelerator request at all for CPU jobs (not "accelerator 0", which asks for a GPU device).
    assert task_options(google, network=False, wants_gpu=False)["accelerator"] is None
    assert task_options(Execution("none"), network=False, wants_gpu=True)["container_options"] == ""
    # A cluster that forbids unprivileged network namespaces: --offline_jobs false.
    online = Execution("apptainer", "slurm", gpu=True, offline_jobs=False)
    assert task_options(online, network=False, wants_gpu=True)["container_options"] == "--nv"


JOBS = [
    {"id": "datasets/d", "stage": "load", "method": "", "deps": []},
    {"id": "t/d/v/data", "stage": "process", "method": "", "deps": ["datasets/d"]},
    {"id": "t/d/v/knn", "stage": "method", "method": "knn", "deps": ["t/d/v/data"]},
    {"id": "t/d/v/knn/error", "stage": "metric", "method": "knn", "deps": ["t/d/v/data", "t/d/v/knn"]},
    {"id": "t/d/v/mean", "stage": "control_method", "method": "mean", "deps": ["t/d/v/data"]},
    {"id": "t/d/v/mean/error", "stage": "metric", "method": "mean", "deps": ["t/d/v/data", "t/d/v/mean"]},
]
STEPS = {"load": "LOAD_DATASET", "process": "PROCESS_DATASET", "method": "RUN_METHOD", "metric": "RUN_METRIC"}


def write_run(
    outdir, statuses: dict[str, str], runs: dict[str, str] | None = None, untraced: tuple[str, ...] = ()
):
    """A finished run's plan, trace (task statuses per job; none for ``untraced`` jobs) and runs.tsv
    (outcomes)."""
    (outdir / "pipeline_info").mkdir(parents=True)
    (outdir / "results").mkdir()
    (outdir / "pipeline_info" / "plan.json").write_text(json.dumps({"jobs": JOBS}))
    rows = [
        {"task_id": i + 2, "process": f"SCMIB:{STEPS.get(job['stage'], 'RUN_METHOD')}", "tag": job["id"],
         "status": statuses.get(job["id"], "CACHED"), "exit": "0"}
        for i, job in enumerate(JOBS)
        if job["id"] not in untraced
    ]  # fmt: skip
    rows.insert(
        0, {"task_id": 1, "process": "SCMIB:SCMIB_PLAN", "tag": "test", "status": "COMPLETED", "exit": "0"}
    )
    pd.DataFrame(rows).to_csv(outdir / "pipeline_info" / "trace.txt", sep="\t", index=False)
    runs = runs or {}
    table = [{"job": j["id"], "status": runs.get(j["id"], "success"), "message": ""} for j in JOBS]
    pd.DataFrame(table).to_csv(outdir / "results" / "runs.tsv", sep="\t", index=False)


def test_a_resumed_run_with_nothing_changed_passes(tmp_path):
    write_run(tmp_path, {})
    assert check_run(tmp_path, all_cached=True) == []


def test_a_job_that_re_ran_on_resume_is_reported(tmp_path):
    write_run(tmp_path, {"t/d/v/data": "COMPLETED"})
    assert check_run(tmp_path) == []
    assert check_run(tmp_path, all_cached=True) == [
        "1 jobs re-ran on -resume, none should have: ['t/d/v/data']"
    ]


def test_only_the_changed_method_and_its_metrics_may_re_run(tmp_path):
    write_run(tmp_path, {"t/d/v/knn": "COMPLETED", "t/d/v/knn/error": "COMPLETED"})
    assert check_run(tmp_path, rerun_method="knn") == []
    assert check_run(tmp_path, rerun_method="mean")[0].startswith("after changing mean, re-ran ['t/d/v/knn'")


def test_infrastructure_failures_and_missing_jobs_are_reported(tmp_path):
    write_run(
        tmp_path,
        {"t/d/v/knn": "FAILED"},
        {"t/d/v/knn": "infrastructure_failed", "t/d/v/knn/error": "upstream_failed"},
    )
    problems = check_run(tmp_path)
    assert any(p.startswith("t/d/v/knn: failed for a reason of the infrastructure") for p in problems)
    assert "t/d/v/knn: its task ended FAILED (exit 0)" in problems
    runs = pd.read_csv(tmp_path / "results" / "runs.tsv", sep="\t")
    runs[runs["job"] != "t/d/v/mean"].to_csv(tmp_path / "results" / "runs.tsv", sep="\t", index=False)
    assert "t/d/v/mean: planned but not in results/runs.tsv" in check_run(tmp_path)


def test_jobs_below_one_that_does_not_apply_need_no_task(tmp_path):
    """A method that does not apply (exit 99): its metric never starts, and collect records it not
    applicable too; only a job recorded with no such reason and no task is a problem."""
    skipped = {"t/d/v/knn": "not_applicable", "t/d/v/knn/error": "not_applicable"}
    write_run(tmp_path, {}, skipped, untraced=("t/d/v/knn/error",))
    assert check_run(tmp_path) == []
    write_run(tmp_path / "lost", {}, untraced=("t/d/v/knn/error",))
    assert check_run(tmp_path / "lost") == ["t/d/v/knn/error: recorded but no task ran it"]


def test_a_stub_run_must_start_every_planned_job(tmp_path):
    write_run(tmp_path, dict.fromkeys([j["id"] for j in JOBS], "COMPLETED"))
    assert check_run(tmp_path, stub=True) == []
    write_run(tmp_path / "missing", {j["id"]: "COMPLETED" for j in JOBS[:-1]})
    assert check_run(tmp_path / "missing", stub=True) == [
        "t/d/v/mean/error: no completed task in the stub run"
    ]


def test_with_gpu_every_torch_method_is_lent_a_gpu_and_nothing_else_is():
    """--gpu reaches exactly the jobs whose component picks its device (``--device auto``)."""
    cmd = [sys.executable, "-m", "scmib.cli", "plan", "--profile", "test", "--param", "gpu=true",
           "--container-engine", "docker"]  # fmt: skip
    plan = json.loads(subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout)
    lent = {job["component"] for job in plan["jobs"] if "--gpus all" in job["container_options"]}
    picks_device = {job["component"] for job in plan["jobs"] if "device" in job["params"]}
    assert picks_device == lent
    assert {"joint_embedding/methods/multivi", "predict_modality/methods/novel_lsi_mlp"} <= lent
    assert all(job["gpu"] == (job["component"] in lent) for job in plan["jobs"])
    # --offline_jobs false (a cluster without user network namespaces): no job is cut off.
    cmd = [*cmd[:-2], "--container-engine", "apptainer", "--param", "offline_jobs=false"]
    plan = json.loads(subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout)
    assert not [job for job in plan["jobs"] if "--network" in job["container_options"]]
    assert {job["container_options"] for job in plan["jobs"] if job["gpu"]} == {"--nv"}


def test_a_relative_mirror_in_the_environment_is_resolved_where_it_was_given(tmp_path):
    """Jobs run in other folders: SCMIB_DATA_MIRROR=../data means the launching folder's ../data."""
    (tmp_path / "data").mkdir()
    (tmp_path / "here").mkdir()
    env = {**os.environ, "SCMIB_DATA_MIRROR": "../data", "SCMIB_REPO": str(REPO)}
    cmd = [sys.executable, "-m", "scmib.cli", "plan", "--profile", "test", "--task", "predict_modality"]
    plan = json.loads(
        subprocess.run(cmd, cwd=tmp_path / "here", env=env, capture_output=True, check=True).stdout
    )
    loaders = [job for job in plan["jobs"] if job["stage"] == "load"]
    assert loaders and all(job["params"]["data_mirror"] == str(tmp_path / "data") for job in loaders)


def test_the_users_own_options_follow_the_jobs_and_google_gpus_need_a_type():
    """A site's --account or bind mounts reach every job (the process sets both directives itself)."""
    site = Execution(
        "apptainer", "slurm", gpu=True, container_options="-B /data", cluster_options="--account=lab"
    )
    assert task_options(site, network=False, wants_gpu=True) == {
        "container_options": "--net --network none --nv -B /data",
        "accelerator": None,
        "cluster_options": "--gres=gpu:1 --account=lab",
    }
    assert task_options(site, network=True, wants_gpu=False)["cluster_options"] == "--account=lab"
    with pytest.raises(ScmibError, match="--gpu_type"):
        Execution("docker", "google-batch", gpu=True)


def test_the_last_attempt_of_a_job_is_read_in_task_order_not_text_order(tmp_path):
    write_run(tmp_path, {})
    trace_path = tmp_path / "pipeline_info" / "trace.txt"
    trace = pd.read_csv(trace_path, sep="\t")
    retry = trace[trace["tag"] == "t/d/v/knn"].assign(task_id=10, status="COMPLETED")
    trace.loc[trace["tag"] == "t/d/v/knn", ["task_id", "status", "exit"]] = [9, "FAILED", 137]
    pd.concat([trace, retry]).to_csv(trace_path, sep="\t", index=False)
    assert check_run(tmp_path) == []


def test_component_args_reach_their_jobs_in_the_workflows_plan_and_change_only_their_keys():
    """Nextflow's one string of settings (spaces or ';') sets the arguments of exactly those
    components; a stochastic component's set seed is where its seeds start."""
    cmd = [sys.executable, "-m", "scmib.cli", "plan", "--profile", "test", "--param", "seeds=2"]
    default = json.loads(subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout)
    settings = "component_args=knn_regression.n_neighbors=3; random_embedding.seed=7 multivi.max_epochs=2"
    plan = json.loads(
        subprocess.run(
            [*cmd, "--param", settings], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
    )
    embeddings = {job["id"] for job in plan["jobs"] if job["component"].endswith("/random_embedding")}
    # Seeds 7 and 8 in folders of their own: the spec's own first seed (0) keeps the plain one.
    assert embeddings and all(id_.endswith(("/seed7", "/seed8")) for id_ in embeddings)
    keys = {job["id"]: job["key"] for job in default["jobs"]}
    for job in plan["jobs"]:
        component = job["component"].rpartition("/")[2]
        expected = {"knn_regression": {"n_neighbors": 3}, "multivi": {"max_epochs": 2}}.get(component, {})
        if component == "random_embedding":
            assert job["settings"] == {"seed": 7} and job["params"]["seed"] in (7, 8)
            continue
        assert job["settings"] == expected
        assert all(job["params"][name] == value for name, value in expected.items())
        # Everything that neither is nor reads one of the set components keeps its content key.
        changed = job["method"] in ("knn_regression", "multivi", "random_embedding")
        assert (keys.get(job["id"]) != job["key"]) == changed, job["id"]

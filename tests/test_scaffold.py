"""``scmib new-component`` writes a folder that lints, matches its Dockerfile, is reachable and runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import COMPONENTS

from scmib.changes import changed_components, run_arguments
from scmib.containers import dockerfile_problems
from scmib.nextflow.checks import reachability_problems
from scmib.spec import discover, load_spec


def scmib(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SCMIB_REPO"}
    proc = subprocess.run(
        [sys.executable, "-m", "scmib.cli", *args], cwd=cwd, capture_output=True, text=True, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"scmib {args[0]} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture
def repo(tmp_path) -> Path:
    shutil.copytree(COMPONENTS, tmp_path / "components", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_a_scaffolded_method_and_metric_run_in_the_benchmark(repo, data_dir):
    scmib("new-component", "predict_modality", "method", "my_method", cwd=repo)
    scmib("new-component", "predict_modality", "metric", "max_error", "--label", "Max error", cwd=repo)
    scmib("lint", cwd=repo)
    for folder in ("methods/my_method", "metrics/max_error"):
        spec = load_spec(repo / "components/predict_modality" / folder / "config.yaml")
        assert dockerfile_problems(spec, (spec.folder / "Dockerfile").read_text()) == []
    assert reachability_problems(repo) == []

    out = repo / "out"
    scmib(
        "run", "--profile", "test", "--datasets", "neurips2021_starter_cite", "--methods", "my_method",
        "--metrics", "max_error", "--outdir", str(out), "--data_mirror", str(data_dir), "--no-progress",
        "--strict", cwd=repo,
    )  # fmt: skip
    results = pd.read_csv(out / "results" / "results.tsv", sep="\t")
    mine = results[results["method"] == "my_method"]
    assert len(mine) == 2 and (mine["status"] == "success").all() and (mine["metric"] == "max_error").all()
    solution = results[results["method"] == "solution"]
    assert (solution["value"] == 0).all() and (mine["value"] > 0).all()


def test_scaffolded_joint_embedding_components_run_in_the_benchmark(repo, data_dir):
    scmib("new-component", "joint_embedding", "method", "my_embedding", cwd=repo)
    scmib("new-component", "joint_embedding", "metric", "type_spread", cwd=repo)
    scmib("lint", cwd=repo)
    out = repo / "out_je"
    scmib(
        "run", "--task", "joint_embedding", "--profile", "test", "--datasets", "neurips2021_starter_cite",
        "--methods", "my_embedding", "--metrics", "type_spread", "--outdir", str(out),
        "--data_mirror", str(data_dir), "--no-progress", "--strict", cwd=repo,
    )  # fmt: skip
    results = pd.read_csv(out / "results" / "results.tsv", sep="\t")
    mine = results[(results["method"] == "my_embedding") & (results["metric"] == "type_spread")]
    assert len(mine) == 1 and mine["status"].iloc[0] == "success" and mine["value"].iloc[0] > 0


def test_scaffolding_refuses_bad_names_and_existing_folders(repo):
    proc = scmib("new-component", "predict_modality", "method", "My-Method", cwd=repo, check=False)
    assert proc.returncode == 2 and "lower_snake_case" in proc.stderr
    proc = scmib("new-component", "predict_modality", "method", "knn_regression", cwd=repo, check=False)
    assert proc.returncode == 2 and "already exists" in proc.stderr
    proc = scmib("new-component", "match_modalities", "control_method", "x", cwd=repo, check=False)
    assert proc.returncode == 2 and "no template" in proc.stderr


def test_changed_components_follow_git(repo):
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "base")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "components")
    assert changed_components(repo, "HEAD") == []
    script = repo / "components/predict_modality/methods/ridge_regression/script.py"
    script.write_text(script.read_text() + "\n")
    metric = repo / "components/predict_modality/metrics/error/config.yaml"
    metric.write_text(metric.read_text() + "\n")
    changed = changed_components(repo, "HEAD")
    assert [s.id for s in changed] == [
        "predict_modality/methods/ridge_regression",
        "predict_modality/metrics/error",
    ]
    assert run_arguments(changed) == ["--methods", "ridge_regression", "--metrics", "error"]
    # A changed prediction processor runs through the metrics that read what it makes.
    everything = discover(repo / "components")
    graph = [s for s in everything if s.name == "knn_graph"]
    assert run_arguments(graph, everything) == ["--metrics", "clustering,graph_conn,ti_cons"]
    (repo / "src").mkdir()
    (repo / "src" / "shared.py").write_text("")
    assert len(changed_components(repo, "HEAD")) == len(list((repo / "components").glob("*/*/*/config.yaml")))


def test_a_scaffolded_placeholder_without_randomness_runs_once_not_per_seed(repo):
    """The predict-modality placeholder uses no seed, so its spec declares none and the default
    profile plans it once per direction, not three identical seed runs; the joint-embedding one
    reduces with a seed and keeps it."""
    from scmib.runner.plan import Selection, plan

    scmib("new-component", "predict_modality", "method", "my_method", cwd=repo)
    scmib("new-component", "joint_embedding", "method", "my_embedding", cwd=repo)
    mine = load_spec(repo / "components/predict_modality/methods/my_method/config.yaml")
    assert "seed" not in mine.argument_map and not mine.stochastic
    assert load_spec(repo / "components/joint_embedding/methods/my_embedding/config.yaml").stochastic
    jobs = plan(repo, repo / "out", Selection(tasks=["predict_modality"], methods=["my_method"]))
    assert sum(job.method == "my_method" and job.stage == "method" for job in jobs) == len(
        {(job.dataset, job.variant) for job in jobs if job.stage == "process"}
    )

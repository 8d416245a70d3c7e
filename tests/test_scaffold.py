"""``scmib new-component``: a folder that runs, matches its Dockerfile, and lints once its TODOs are done."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import COMPONENTS
from scipy.stats import rankdata

from scmib.changes import changed_components, run_arguments
from scmib.containers import dockerfile_problems
from scmib.nextflow.checks import reachability_problems
from scmib.spec import KIND_FOLDERS, discover, load_spec


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


def finish(repo: Path, *folders: str) -> None:
    """Lint names every scaffold TODO left in ``folders``; this test's "edit" then marks them done."""
    proc = scmib("lint", cwd=repo, check=False)
    assert proc.returncode == 1, proc.stderr
    for folder in folders:
        config, script = (repo / "components" / folder / name for name in ("config.yaml", "script.py"))
        assert f"{config}: field 'summary' is still the scaffold's TODO" in proc.stderr
        assert f"{script}:" in proc.stderr and "a TODO is left in the script" in proc.stderr
        assert f"{script}: its docstring still has the scaffold's TODO" in proc.stderr
        for path in (config, script):
            path.write_text(path.read_text().replace("TODO", "Done"))
    scmib("lint", cwd=repo)


@pytest.fixture
def repo(tmp_path) -> Path:
    shutil.copytree(COMPONENTS, tmp_path / "components", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_a_scaffolded_method_and_metric_run_in_the_benchmark(repo, data_dir):
    scmib("new-component", "predict_modality", "method", "my_method", cwd=repo)
    scmib("new-component", "predict_modality", "metric", "max_error", "--label", "Max error", cwd=repo)
    finish(repo, "predict_modality/methods/my_method", "predict_modality/metrics/max_error")
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


def scaffold_and_run(repo: Path, data_dir: Path, task: str, components: dict[str, str], *selection: str):
    """Scaffold ``components`` (kind: name) of ``task``, finish their TODOs, and run them on the
    starter CITE cells under the test profile; the results table."""
    for kind, name in components.items():
        scmib("new-component", task, kind, name, cwd=repo)
    finish(repo, *(f"{task}/{KIND_FOLDERS[kind]}/{name}" for kind, name in components.items()))
    out = repo / f"out_{task}"
    scmib(
        "run", "--task", task, "--profile", "test", "--datasets", "neurips2021_starter_cite", *selection,
        "--outdir", str(out), "--data_mirror", str(data_dir), "--no-progress", "--strict", cwd=repo,
    )  # fmt: skip
    return pd.read_csv(out / "results" / "results.tsv", sep="\t"), out


def test_scaffolded_joint_embedding_components_run_in_the_benchmark(repo, data_dir):
    components = {"method": "my_embedding", "metric": "type_spread", "control_method": "batch_only"}
    selection = ("--methods", "my_embedding,batch_only", "--metrics", "type_spread,asw")
    results, _ = scaffold_and_run(repo, data_dir, "joint_embedding", components, *selection)
    mine = results[(results["method"] == "my_embedding") & (results["metric"] == "type_spread")]
    assert len(mine) == 1 and mine["status"].iloc[0] == "success" and mine["value"].iloc[0] > 0
    # The control placeholder keeps the batches and nothing else: the worst batch mixing of any
    # embedding that is not a single point (scored 0 as undefined).
    batch_mixing = results[results["metric"] == "asw_batch"].set_index("method")["value"]
    assert batch_mixing["batch_only"] < 0.1 < batch_mixing.drop(["batch_only", "constant_embedding"]).min()


def test_scaffolded_match_modalities_components_run_in_the_benchmark(repo, data_dir):
    components = {"method": "my_match", "control_method": "my_control", "metric": "true_pair_rank"}
    selection = ("--methods", "my_match,my_control", "--metrics", "true_pair_rank,match_probability")
    results, out = scaffold_and_run(repo, data_dir, "match_modalities", components, *selection)
    assert (results["status"] == "success").all()
    value = results.set_index(["variant", "method", "metric"])["value"]
    variants = out / "match_modalities" / "neurips2021_starter_cite"
    for variant in ("gex2adt", "adt2gex"):
        n_cells = ad.read_h5ad(variants / variant / "data" / "test_sol.h5ad", backed="r").n_obs
        # The control placeholder is the true pairing; the method's beats random weights fivefold.
        assert value[variant, "my_control", "match_probability"] == 1
        assert value[variant, "my_control", "true_pair_rank"] == 0
        chance = value[variant, "random_weights", "match_probability"]
        assert value[variant, "my_match", "match_probability"] > 5 * chance
        # Uniform weights tie the true pair with every cell: the chance rank, (N - 1) / 2.
        assert value[variant, "constant_weights", "true_pair_rank"] == pytest.approx((n_cells - 1) / 2)
    # The placeholder metric equals the true pair's average rank in each dense row (scipy).
    pairing = ad.read_h5ad(variants / "adt2gex" / "data" / "test_sol.h5ad").uns["pairing_ix"]
    weights = ad.read_h5ad(variants / "adt2gex" / "random_weights" / "prediction.h5ad").X.toarray()
    aligned = weights[:, np.argsort(np.asarray(pairing).astype(int))]
    expected = np.mean([rankdata(-row)[i] - 1 for i, row in enumerate(aligned)])
    assert value["adt2gex", "random_weights", "true_pair_rank"] == pytest.approx(expected, rel=1e-12)


def test_scaffolding_refuses_bad_names_and_existing_folders(repo):
    proc = scmib("new-component", "predict_modality", "method", "My-Method", cwd=repo, check=False)
    assert proc.returncode == 2 and "lower_snake_case" in proc.stderr
    proc = scmib("new-component", "predict_modality", "method", "knn_regression", cwd=repo, check=False)
    assert proc.returncode == 2 and "already exists" in proc.stderr
    proc = scmib("new-component", "match_modalities", "loader", "x", cwd=repo, check=False)
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

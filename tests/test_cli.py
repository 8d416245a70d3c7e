"""First contact with the command line: spellings, typos, filters, versions; runs that keep results."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import COMPONENTS, REPO, run_cli

from scmib import __version__
from scmib.errors import ScmibError
from scmib.lint import lint
from scmib.runner.plan import Selection, plan


def scmib(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scmib.cli", *args], cwd=cwd, capture_output=True, text=True)


def test_version_and_help_name_every_command():
    assert scmib("--version").stdout.strip() == f"scmib {__version__}"
    help_text = scmib("--help").stdout
    commands = "run plan job collect check-run report lint list nf-check docker-check new-component changed"
    for command in [*commands.split(), "dockerfile", "images", "validate"]:
        assert f"\n    {command}" in help_text, command
    assert "``" not in help_text


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["run", "--profle", "test"], "(did you mean --profile?)"),
        (["run", "--no_progres"], "(did you mean --no-progress?)"),
        (["lint", "--componentz", "x"], "(did you mean --components?)"),
    ],
)
def test_a_misspelt_option_gets_the_closest_one(args, hint):
    proc = scmib(*args)
    assert proc.returncode == 2 and hint in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory-scale", "0"], "argument --memory-scale: 0 is not above 0"),  # was: no limit at all
        (["--memory-scale", "-1"], "argument --memory-scale: -1 is not above 0"),
        (["--memory-scale", "nan"], "argument --memory-scale: nan is not above 0"),
        (["--jobs", "0"], "argument --jobs: 0 is not above 0"),
        (["--jobs", "two"], "argument --jobs: 'two' is not a number"),
    ],
)
def test_run_options_that_mean_nothing_are_refused(args, message):
    proc = scmib("run", "--profile", "test", *args)
    assert proc.returncode == 2 and message in proc.stderr


def test_options_take_underscores_and_hyphens_alike():
    for spelling in ("--data-mirror", "--data_mirror"):
        proc = scmib(
            "plan", "--profile", "test", "--task", "predict_modality", spelling, "/m", "--no-progress"
        )
        assert "unrecognized arguments: --no-progress" in proc.stderr  # plan has no --no-progress ...
    proc = scmib("plan", "--profile", "test", "--task", "predict_modality", "--data-mirror", "/m")
    assert proc.returncode == 0 and '"data_mirror": "/m"' in proc.stdout  # ... but --data-mirror works


def test_a_filter_that_matches_nothing_is_an_error_with_a_suggestion():
    with pytest.raises(
        ScmibError, match=r"no method is called 'knn_regresion' \(did you mean knn_regression"
    ):
        plan(REPO, REPO / "out", Selection(profile="test", methods=["knn_regresion"]))
    with pytest.raises(ScmibError, match="no metric is called 'rmse'"):  # a metric, not its component
        plan(REPO, REPO / "out", Selection(profile="test", metrics=["rmse"]))
    proc = scmib("run", "--profile", "test", "--datasets", "neurips2021_starter_cite,triana_typo")
    assert proc.returncode == 2 and "no dataset is called 'triana_typo'" in proc.stderr


def test_where_the_data_comes_from_is_not_part_of_a_loaders_cache_key():
    """Re-running without --data_mirror must not re-run (and so must not risk) a finished download."""
    keys = []
    for mirror in ("/one/mirror", None):
        jobs = plan(REPO, REPO / "out", Selection(profile="test", data_mirror=mirror, cache_dir="/c"))
        keys.append({job.id: job.key for job in jobs if job.stage == "load"})
    assert keys[0] == keys[1]


def test_other_scmib_code_is_part_of_every_cache_key(monkeypatch):
    """Components run on scmib's shared code (LSI, SVD, metrics): a run made with other code must
    not be resumed as this one (the package's files are hashed into every key)."""
    import scmib.runner.plan

    jobs = plan(REPO, REPO / "out", Selection(profile="test"))
    before = {job.id: job.key for job in jobs}
    assert scmib.runner.plan.package_digest() == scmib.runner.plan.package_digest.__wrapped__()
    monkeypatch.setattr(scmib.runner.plan, "package_digest", lambda: "other code")
    after = {job.id: job.key for job in jobs}
    assert before.keys() == after.keys() and all(before[j] != after[j] for j in before)


def _spec_with(tmp_path, **argument):
    folder = tmp_path / "components/predict_modality/methods/knn_regression"
    shutil.copytree(COMPONENTS / "predict_modality/methods/knn_regression", folder)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["arguments"] = [{"name": "n_neighbors", "type": "integer", "min": 1, **argument}]
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return "\n".join(lint(tmp_path / "components"))


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ({"default": "many"}, "default of 'n_neighbors': 'many' is not an integer"),
        ({"default": -5}, "default of 'n_neighbors': -5 is below its minimum 1"),
        ({"default": 5, "test_default": 2.5}, "test_default of 'n_neighbors': 2.5 is not an integer"),
        ({"default": True}, "True is not an integer"),
    ],
)
def test_lint_checks_defaults_against_types_and_ranges(tmp_path, argument, message):
    assert message in _spec_with(tmp_path, **argument)


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ({"min": None, "default": 5}, "argument 'n_neighbors': a number needs a 'min'"),
        ({"exclusive_min": True, "default": 1}, "default of 'n_neighbors': 1 is not above 1"),
        ({"min": None, "exclusive_min": True, "default": 5}, "exclusive_min needs a min"),
    ],
)
def test_lint_asks_every_number_for_a_min_and_exclusive_min_refuses_the_min_itself(
    tmp_path, argument, message
):
    assert message in _spec_with(tmp_path, **argument)
    assert "a number needs a 'min'" not in _spec_with(tmp_path / "with_min", default=5)


def test_a_value_out_of_range_on_the_command_line_is_refused(tmp_path, data_dir):
    proc = run_cli(
        "predict_modality/methods/knn_regression", check=False, n_neighbors=-3, output=tmp_path / "p"
    )
    assert proc.returncode == 2 and "-3 is below its minimum 1" in proc.stderr
    proc = run_cli("predict_modality/methods/ridge_regression", check=False, alpha=-1, output=tmp_path / "p")
    assert proc.returncode == 2 and "-1.0 is below its minimum 0" in proc.stderr
    assert not (tmp_path / "p").exists()


def test_a_method_outside_the_profile_runs_when_named_and_its_results_stay(data_dir, tmp_path):
    """A method whose spec keeps it out of a profile (``info.profiles``) is left out of a plain run
    with a word, runs when ``--methods`` names it, and a later run keeps its results."""
    copy = tmp_path / "repo"
    shutil.copytree(COMPONENTS, copy / "components")
    config = copy / "components" / "predict_modality" / "methods" / "ridge_regression" / "config.yaml"
    text = config.read_text()
    config.write_text(text.replace("info:\n", "info:\n  profiles: [default]\n", 1))
    out = tmp_path / "out"

    def run(*methods: str) -> subprocess.CompletedProcess:
        proc = scmib(
            "run", "--task", "predict_modality", "--profile", "test",
            "--datasets", "neurips2021_starter_cite", *methods, "--metrics", "error",
            "--outdir", str(out), "--data_mirror", str(data_dir), "--no-progress", cwd=copy,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc

    def methods() -> set[str]:
        return set(pd.read_csv(out / "results" / "results.tsv", sep="\t")["method"])

    proc = run("--methods", "ridge_regression")
    assert "ridge_regression" in methods() and "is not in profile" not in proc.stderr
    proc = run("--methods", "knn_regression,ridge*")
    assert {"ridge_regression", "knn_regression"} <= methods()
    proc = run("--methods", "knn_regression")
    assert "method 'ridge_regression' is not in profile 'test'" not in proc.stderr  # not asked for
    assert "ridge_regression" in methods()  # the earlier results stay
    proc = run("--exclude_methods", "guanlab*,novel*,cajal*,dance*,lslab*")  # no method named
    assert "method 'ridge_regression' is not in profile 'test' (its profiles: default)" in proc.stderr
    assert "ridge_regression" in methods()


def test_a_filtered_run_keeps_the_results_of_everything_else(repo, first_run, data_dir, tmp_path):
    """`scmib run --methods one` in a finished output folder: the results still hold every method."""
    copy = tmp_path / "repo"
    shutil.copytree(repo / "components", copy / "components")
    out = tmp_path / "out"
    shutil.copytree(first_run[0], out, symlinks=True)
    before = pd.read_csv(out / "results" / "results.tsv", sep="\t")
    proc = scmib(
        "run", "--task", "predict_modality", "--profile", "test", "--datasets", "neurips2021_starter_cite",
        "--methods", "knn_regression", "--metrics", "error", "--outdir", str(out),
        "--data_mirror", str(data_dir), "--no-progress", cwd=copy,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = pd.read_csv(out / "results" / "results.tsv", sep="\t")
    assert set(after["method"]) == set(before["method"])
    assert len(after) == len(before)
    runs = pd.read_csv(out / "results" / "runs.tsv", sep="\t")
    assert (runs.loc[runs["method"] == "crashing_method", "status"] != "success").all()


def test_check_run_of_a_folder_that_is_not_a_nextflow_run_says_so(tmp_path):
    """A local run's folder (no pipeline_info/) or a mistyped path: one line naming what is missing."""
    (tmp_path / "results").mkdir()
    proc = scmib("check-run", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{tmp_path} is not the --outdir of a finished Nextflow run" in proc.stderr
    assert str(tmp_path / "pipeline_info" / "plan.json") in proc.stderr

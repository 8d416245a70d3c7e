"""The local runner end to end: failures recorded, not-applicable runs, resume, scaling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import METHODS, scmib_run

from scmib.errors import ScmibError
from scmib.runner import execute as runner
from scmib.runner.execute import JobResult, outcome_summary
from scmib.runner.finish import STAMP
from scmib.runner.plan import Selection, idle_filters, plan, start_order
from scmib.runner.results import scale

REPO = Path(__file__).resolve().parents[1]


def test_failures_are_recorded_while_the_rest_finishes(first_run):
    outdir, proc = first_run
    table = pd.read_csv(outdir / "results" / "results.tsv", sep="\t")
    assert set(table["variant"]) == {"gex2adt", "adt2gex"}
    crashed = table[table["method"] == "crashing_method"]
    assert len(crashed) == 4  # rmse and mae, two directions
    assert (crashed["status"] == "failed").all() and crashed["value"].isna().all()
    assert (crashed["metric_status"] == "upstream_failed").all()
    assert "deliberate crash" in Path(crashed["log"].iloc[0]).read_text()
    inapplicable = table[table["method"] == "inapplicable_method"]
    assert (inapplicable["status"] == "not_applicable").all()
    # In scores.tsv a method that does not apply has no score (NaN), one that failed scores 0.
    scores = pd.read_csv(outdir / "results" / "scores.tsv", sep="\t").set_index("method")
    assert scores.loc["inapplicable_method", ["mean_score", "ci_low", "ci_high"]].isna().all().all()
    assert (scores.loc["crashing_method", "mean_score"] == 0).all()
    knn = table[(table["method"] == "knn_regression") & (table["metric"] == "rmse")]
    assert (knn["status"] == "success").all() and knn["value"].notna().all()
    assert (table[table["method"] == "solution"]["scaled"] == 1.0).all()
    assert "failed: predict_modality/neurips2021_starter_cite/gex2adt/crashing_method: " in proc.stderr
    assert "deliberate crash" in proc.stderr  # what it said, on the terminal
    assert "jobs skipped (upstream_failed)" in proc.stderr and "()" not in proc.stderr
    assert (outdir / "results" / "results.parquet").is_file()
    runs = pd.read_csv(outdir / "results" / "runs.tsv", sep="\t")
    done = runs[runs["status"] == "success"]
    assert (done["wall_time_s"] > 0).all() and (done["peak_memory_mb"] > 50).all()
    assert (done["cpu_time_s"] > 0).all()


def test_second_run_reuses_results_and_redoes_only_changes_and_failures(first_run, repo, data_dir):
    outdir, _ = first_run
    script = repo / METHODS / "knn_regression" / "script.py"
    script.write_text(script.read_text() + "\n# a change that must invalidate this method\n")
    scmib_run(repo, data_dir, outdir)
    runs = pd.read_csv(outdir / "results" / "runs.tsv", sep="\t").set_index("job")
    changed = runs[runs["method"] == "knn_regression"]
    assert (changed["status"] == "success").all()  # the method and its metrics ran again
    crashed = runs[(runs["method"] == "crashing_method") & (runs["stage"] == "method")]
    assert (crashed["status"] == "failed").all()  # failures are retried, and fail again
    others = runs[
        ~runs["method"].isin(["knn_regression", "crashing_method"]) & (runs["status"] != "not_applicable")
    ]
    assert (others["status"] == "cached").all(), others["status"].value_counts()


def test_a_resumed_run_leaves_its_results_folder_as_it_was(first_run, repo, data_dir):
    """The same jobs with the same records make the same tables and report: a resume does not
    write them again (most of its time, before), and prints the same summary. A results folder
    missing a file, or written for other records (an interrupted write), is written again."""
    outdir, _ = first_run
    folder = outdir / "results"
    # Not the crashing method: a failure is retried by every run, so its record is new every time.
    working = ("--methods", "knn_regression")
    updated = scmib_run(repo, data_dir, outdir, *working)  # whatever earlier tests changed is up to date
    written = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    resumed = scmib_run(repo, data_dir, outdir, *working)
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == written
    assert resumed.stdout == updated.stdout and "from cache" in resumed.stderr
    (folder / "report.html").unlink()
    (folder / STAMP).write_text("the digest of other records")
    scmib_run(repo, data_dir, outdir, *working)
    assert (folder / "report.html").is_file() and (
        folder / STAMP
    ).read_text() != "the digest of other records"


def test_scaling_uses_controls_and_metric_direction():
    table = pd.DataFrame(
        {
            "task": "t",
            "dataset": "d",
            "variant": "v",
            "metric": "rmse",
            "maximize": False,
            "method": ["good", "bad", "method"],
            "method_kind": ["control_method", "control_method", "method"],
            "value": [0.0, 1.0, 0.25],
        }
    )
    np.testing.assert_allclose(scale(table), [1.0, 0.0, 0.75])
    table["maximize"] = True
    np.testing.assert_allclose(scale(table), [0.0, 1.0, 0.25])


def test_launcher_reports_the_jobs_own_peak_memory_not_the_runners(tmp_path):
    import json
    import subprocess
    import sys

    import numpy as np

    held = np.ones(60_000_000)  # the runner holds ~480 MB, as a benchmark script with data in memory does
    usage = tmp_path / "usage.json"
    cmd = [sys.executable, "-m", "scmib.runner.launch", str(usage), "--", sys.executable, "-c", "pass"]
    subprocess.run(cmd, check=True)
    assert held.sum() > 0
    assert json.loads(usage.read_text())["maxrss_kb"] < 100_000
    killed = subprocess.run([*cmd[:5], sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"])
    assert killed.returncode == -9  # a memory kill still reads as one


def test_terminal_and_report_count_outcomes_in_the_same_words(first_run):
    """One vocabulary: success and cached are successes, not applicable is not counted as either."""
    outdir, proc = first_run
    runs = pd.read_csv(outdir / "results" / "runs.tsv", sep="\t")
    line = outcome_summary(list(runs["status"]))
    assert line in (outdir / "results" / "report.html").read_text()
    assert "not applicable" in line and "did not succeed" in line and "failed" in line
    assert f"{len(runs)} jobs: " in proc.stderr
    statuses = ["success", "cached", "not_applicable", "failed", "upstream_failed"]
    assert outcome_summary(statuses) == (
        "5 jobs: 2 succeeded (1 from cache), 1 not applicable, "
        "2 did not succeed (1 failed, 1 upstream_failed)"
    )


def test_one_graph_per_embedding_read_only_by_the_metrics_that_declare_it():
    jobs = plan(REPO, REPO / "out", Selection(tasks=["joint_embedding"], profile="test"))
    predictions = [j for j in jobs if j.stage in ("method", "control_method")]
    graphs = [j for j in jobs if j.stage == "prepare"]
    assert len(graphs) == len(predictions) and {g.spec.name for g in graphs} == {"knn_graph"}
    for metric in (j for j in jobs if j.stage == "metric"):
        graph_deps = [d for d in metric.deps if d.stage == "prepare"]
        reads_graph = "input_graph" in metric.inputs
        assert reads_graph == (metric.spec.name in ("clustering", "graph_conn", "ti_cons")), metric.id
        assert len(graph_deps) == int(reads_graph) and all(d.method == metric.method for d in graph_deps)
    # With no graph metric selected, no graph is computed.
    jobs = plan(REPO, REPO / "out", Selection(tasks=["joint_embedding"], profile="test", metrics=["asw"]))
    assert not [j for j in jobs if j.stage == "prepare"]


def test_the_scale_profile_is_the_synthetic_competition_data_only():
    synthetic = {j.dataset for j in plan(REPO, REPO / "out", Selection(profile="scale")) if j.stage == "load"}
    assert synthetic == {"synthetic_competition_cite", "synthetic_competition_multiome"}
    for profile in ("test", "default", "full"):
        loads = [j for j in plan(REPO, REPO / "out", Selection(profile=profile)) if j.stage == "load"]
        assert not [j for j in loads if j.dataset.startswith("synthetic")], profile


def test_a_filter_that_selects_nothing_in_this_run_says_so():
    """Known names that select no job here (a dataset of another profile, a method for other
    modalities, an excluded control) are said, not dropped silently; used filters are not."""

    def said(**filters):
        selection = Selection(profile="test", **filters)
        return idle_filters(selection, plan(REPO, REPO / "out", selection))

    assert said(datasets=["neurips2021_starter_cite", "triana2021_bm_abseq"]) == [
        "--datasets 'triana2021_bm_abseq' selects no dataset: none of profile 'test' matches it"
    ]
    assert said(
        tasks=["joint_embedding"], datasets=["neurips2021_starter_cite"], methods=["multivi", "pca*"]
    ) == [
        "--methods 'multivi' selects no method: none that matches it applies to a task variant of the "
        "selected datasets"
    ]
    assert said(methods=["!mean_per_feature", "!guanlab*"]) == [
        "--exclude_methods 'mean_per_feature': controls always run (they scale the scores)"
    ]
    assert said(methods=["mean_per_feature"]) == [
        "--methods 'mean_per_feature' selects no method: it names a control, and controls always run"
    ]
    assert said(datasets=["neurips*"], methods=["knn*"], metrics=["error", "!correlation"]) == []


def test_the_way_to_the_longest_jobs_starts_first(tmp_path, monkeypatch):
    """MultiVI (``hightime``) and every job it needs start before the short jobs planned ahead of
    them, so the longest training does not end the run on one core; among equals the plan's order
    holds, and every job still starts after its dependencies, once."""
    jobs = plan(REPO, tmp_path, Selection(seeds=1))
    multivi = next(j for j in jobs if j.id == "joint_embedding/snareseq2_mop2021/gex_atac/multivi")
    way, stack = set(), [multivi]
    while stack:
        job = stack.pop()
        way.add(job.id)
        stack += job.deps
    first_metric = next(i for i, j in enumerate(jobs) if j.stage == "metric")
    assert [j.id for j in jobs].index(multivi.id) > first_metric  # the plan alone starts it late

    started: list[str] = []

    def run_job(job, key, threads, **_):
        started.append(job.id)
        return JobResult(job.id, "success", 0, 0.0, 0.0, 0.0, key, "")

    monkeypatch.setattr(runner, "run_job", run_job)
    runner.execute(jobs, n_jobs=1, progress=False)
    assert sorted(started) == sorted(j.id for j in jobs)
    position = {job_id: i for i, job_id in enumerate(started)}
    metrics = [position[j.id] for j in jobs if j.stage == "metric"]
    assert max(position[job_id] for job_id in way) < min(metrics)
    assert all(position[d.id] < position[j.id] for j in jobs for d in j.deps)
    short = [j.id for j in start_order(jobs) if j.spec.name in ("error", "correlation")]
    assert short == [j.id for j in jobs if j.spec.name in ("error", "correlation")]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "knn_regresion.n_neighbors=3",
            "no component is named 'knn_regresion' (did you mean 'knn_regression'?)",
        ),
        ("solution.seed=1", "'solution' names 2 components"),
        ("knn_regression.k=3", "has no argument 'k'; it takes n_components, n_neighbors, seed"),
        ("knn_regression.n_neighbors=0", "0 is below its minimum 1"),
        ("knn_regression.n_neighbors=2.5", "'2.5' is not an integer"),
        ("clip_contrastive.assignment=greedy", "'greedy' is not one of"),
        ("knn_regression.input_train_mod1=x.h5ad", "is a file"),
        ("neurips2021_starter.data_mirror=/data", "use the run's --data_mirror option"),
        ("train_test_split.direction=gex2adt", "the plan sets 'direction' to 'adt2gex'"),
        ("n_neighbors=3", "expected COMPONENT.ARGUMENT=VALUE"),
        ("knn_regression.n_neighbors=3 knn_regression.n_neighbors=4", "twice: 3 and 4"),
    ],
)
def test_a_wrong_component_argument_stops_the_plan_naming_it(setting, message):
    with pytest.raises(ScmibError) as err:
        plan(REPO, Path("out"), Selection(profile="test", component_args=[setting]))
    assert message in str(err.value)


def test_component_args_reach_the_component_and_rerun_only_what_they_change(repo, data_dir, tmp_path):
    """``--component_args knn_regression.n_neighbors=1`` (through the command line, on the starter
    cells): kNN's predictions become single training cells' profiles, only kNN and its metrics run
    again, and the results and report say what was set."""
    narrow = ("--methods", "knn_regression", "--task", "predict_modality")
    scmib_run(repo, data_dir, tmp_path, *narrow)
    folder = tmp_path / "predict_modality" / "neurips2021_starter_cite" / "gex2adt"

    def train_profiles_predicted() -> bool:
        train = ad.read_h5ad(folder / "data" / "train_mod2.h5ad").layers["normalized"].toarray()
        predicted = ad.read_h5ad(folder / "knn_regression" / "prediction.h5ad").layers["normalized"]
        predicted = np.asarray(predicted.todense() if sp.issparse(predicted) else predicted)
        distances = ((predicted[:, None, :] - train[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        return bool(np.all(distances < 1e-10))

    assert not train_profiles_predicted()  # the default averages 25 neighbours
    proc = scmib_run(repo, data_dir, tmp_path, *narrow, "--component_args", "knn_regression.n_neighbors=1")
    assert train_profiles_predicted()
    runs = pd.read_csv(tmp_path / "results" / "runs.tsv", sep="\t")
    again = runs[runs["status"] == "success"]
    assert set(again["method"]) == {"knn_regression"} and len(again) == 4  # 2 predictions, 2 scorings
    assert (runs[runs["method"] != "knn_regression"]["status"].isin(["cached", "not_applicable"])).all()
    info = json.loads((tmp_path / "results" / "run_info.json").read_text())
    assert info["component_args"] == {"predict_modality/methods/knn_regression": {"n_neighbors": 1}}
    assert info["methods"]["predict_modality/knn_regression"]["arguments"] == {"n_neighbors": 1}
    assert "n_neighbors=1" in (tmp_path / "results" / "report.html").read_text()
    assert "no job of this run runs" not in proc.stderr  # every setting was used
    unused = ("--component_args", "knn_regression.n_neighbors=1 multivi.max_epochs=2")
    proc = scmib_run(repo, data_dir, tmp_path, *narrow, *unused)
    assert "no job of this run runs 'multivi' (--component_args multivi.max_epochs=2)" in proc.stderr


def test_a_metric_not_run_on_one_method_counts_0_instead_of_crashing_the_results(repo, data_dir, tmp_path):
    """kNN and ridge scored by ``error``, then kNN alone by ``error`` and ``correlation``: ridge's
    correlation never ran, so its rows say ``not_run`` and count 0 in its score, rather than ridge
    being scored on fewer metrics than kNN (or the bootstrap failing on the missing rows)."""
    scmib_run(repo, data_dir, tmp_path, "--methods", "knn_regression,ridge_regression")
    proc = scmib_run(
        repo, data_dir, tmp_path, "--methods", "knn_regression", "--metrics", "error,correlation"
    )
    table = pd.read_csv(tmp_path / "results" / "results.tsv", sep="\t")
    ridge = table[(table["method"] == "ridge_regression") & (table["metric"] == "pearson_per_cell")]
    assert len(ridge) == 2 and (ridge["metric_status"] == "not_run").all() and ridge["value"].isna().all()
    scores = pd.read_csv(tmp_path / "results" / "scores.tsv", sep="\t").set_index(["variant", "method"])
    for variant in ("gex2adt", "adt2gex"):
        rows = table[(table["variant"] == variant) & table["scaled"].notna() & table["scored"]]
        ridge_rows = table[(table["variant"] == variant) & (table["method"] == "ridge_regression")]
        scalable = ridge_rows[ridge_rows["metric"].isin(rows["metric"])]
        expected = scalable["scaled"].clip(0, 1).fillna(0).sum() / rows["metric"].nunique()
        assert scores.loc[(variant, "ridge_regression"), "mean_score"] == pytest.approx(expected)
    # Ridge's correlation job per direction (one job, six metrics): counted on the terminal and in the report.
    assert "2 metric jobs of methods in the results have not run as they are now" in proc.stderr
    assert "2 not run as they are now (scored 0)" in (tmp_path / "results" / "report.html").read_text()


def test_a_method_run_on_fewer_datasets_counts_0_on_the_others(repo, data_dir, tmp_path):
    """kNN on the CITE and Multiome starter cells, then ridge on CITE alone: ridge's Multiome rows
    say ``not_run`` and count 0, so ridge is ranked over the four directions as kNN is, not over
    CITE's alone (where it would come first)."""
    both = ("--datasets", "neurips2021_starter_cite,neurips2021_starter_multiome")
    scmib_run(repo, data_dir, tmp_path, *both, "--methods", "knn_regression")
    proc = scmib_run(repo, data_dir, tmp_path, "--methods", "ridge_regression")
    table = pd.read_csv(tmp_path / "results" / "results.tsv", sep="\t")
    ridge = table[table["method"] == "ridge_regression"].set_index("dataset")
    multiome = ridge.loc["neurips2021_starter_multiome"]
    assert set(multiome["variant"]) == {"gex2atac", "atac2gex"}
    assert (multiome["status"] == "not_run").all() and multiome["value"].isna().all()
    assert ridge.loc["neurips2021_starter_cite", "value"].notna().all()
    scores = pd.read_csv(tmp_path / "results" / "scores.tsv", sep="\t")
    ridge_scores = scores[scores["method"] == "ridge_regression"].set_index("variant")["mean_score"]
    assert ridge_scores[["gex2atac", "atac2gex"]].tolist() == [0.0, 0.0]
    summary = pd.read_csv(tmp_path / "results" / "summary.tsv", sep="\t").set_index("method")
    assert summary.loc["ridge_regression", "datasets"] == 4
    assert summary.loc["ridge_regression", "mean_score"] == pytest.approx(ridge_scores.mean())
    assert "and 2 method jobs of methods in the results have not run as they are now" in proc.stderr
    runs = pd.read_csv(tmp_path / "results" / "runs.tsv", sep="\t").fillna("")
    not_run = runs[(runs["method"] == "ridge_regression") & (runs["stage"] == "method")]
    assert (not_run.set_index("dataset").loc["neurips2021_starter_multiome", "status"] == "not_run").all()
    assert "not run here as it is now" in (tmp_path / "results" / "report.html").read_text()
    flags = json.loads((tmp_path / "results" / "results.json").read_text())["quality_control"]
    message = "ridge_regression has not run on neurips2021_starter_multiome/gex2atac as it is now (scored 0)"
    assert any(flag["message"].startswith(message) for flag in flags)


def test_a_metric_writing_other_ids_than_its_spec_fails_alone(repo, data_dir, tmp_path):
    """A metric whose score file names a metric its spec does not declare fails at its write,
    naming the slot; its rows say ``failed`` and every other metric's results stand."""
    metric = repo / "components/predict_modality/metrics/error/script.py"
    original = metric.read_text()
    metric.write_text(original.replace('scores = {"rmse"', 'scores = {"RMSE": 0.0, "rmse"'))
    try:
        proc = scmib_run(
            repo, data_dir, tmp_path, "--methods", "knn_regression", "--metrics", "error,correlation"
        )
    finally:
        metric.write_text(original)
    assert "uns['metric_ids']: expected the component's metrics ['mae', 'rmse'], found" in proc.stderr
    table = pd.read_csv(tmp_path / "results" / "results.tsv", sep="\t")
    error = table[table["metric"].isin(["rmse", "mae"])]
    assert (error["metric_status"] == "failed").all() and error["value"].isna().all()
    assert "RMSE" not in set(table["metric"])
    correlation = table[table["metric"] == "pearson_per_cell"]
    assert (correlation["metric_status"] == "success").all() and correlation["value"].notna().all()
    # A success recorded earlier whose score file is damaged since (cut short): when the results
    # are written again, its rows fail, naming the file, and the others stand.
    damaged = tmp_path / "predict_modality/neurips2021_starter_cite/gex2adt/knn_regression/scores/correlation"
    (damaged / "score.h5ad").write_bytes((damaged / "score.h5ad").read_bytes()[:2000])
    (tmp_path / "results" / "results.tsv").unlink()
    proc = scmib_run(repo, data_dir, tmp_path, "--methods", "knn_regression", "--metrics", "correlation")
    assert f"{damaged / 'score.h5ad'}': is a damaged HDF5 file" in proc.stderr
    table = pd.read_csv(tmp_path / "results" / "results.tsv", sep="\t")
    rows = table[(table["metric"] == "pearson_per_cell") & (table["method"] == "knn_regression")]
    assert rows.set_index("variant")["metric_status"].to_dict() == {"gex2adt": "failed", "adt2gex": "cached"}


def test_a_run_in_which_no_job_succeeds_exits_1_saying_why(repo, tmp_path):
    """A mirror whose starter files are damaged: the loader fails its checksum, everything after it
    is skipped; the terminal says what the loader said, and the run exits 1 without --strict."""
    mirror = tmp_path / "mirror" / "neurips2021_starter" / "cite" / "common"
    mirror.mkdir(parents=True)
    for part in ("rna", "mod2"):
        (mirror / f"output_{part}.h5ad").write_text("not the starter cells")
    cmd = [sys.executable, "-m", "scmib.cli", "run", "--task", "predict_modality", "--profile", "test",
           "--datasets", "neurips2021_starter_cite", "--methods", "knn_regression", "--metrics", "error",
           "--outdir", str(tmp_path / "out"), "--data_mirror", str(tmp_path / "mirror"),
           "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "failed: datasets/neurips2021_starter_cite: " in proc.stderr and "sha256" in proc.stderr
    assert "scmib: no job succeeded" in proc.stderr

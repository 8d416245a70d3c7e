"""Seeds, bootstrap intervals over test cells, and how sure a ranking is, on real cells."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, predict, read, score

from scmib.metrics import contributions
from scmib.metrics.contributions import Contributions
from scmib.metrics.inputs import score_file
from scmib.runner.plan import Selection, plan
from scmib.uncertainty.bootstrap import N_RESAMPLES, interval, resample_counts
from scmib.uncertainty.ranks import rank_table


def rmse_contributions(prediction: Path, solution: Path, out: Path) -> tuple[float, Contributions]:
    """The error metric's RMSE of ``prediction`` and its per-cell contributions, through its CLI."""
    value = score(prediction, solution, out)["rmse"]
    return value, contributions.read(read(out))["rmse"]


def replicates(part: Contributions, cells: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """RMSE over ``N_RESAMPLES`` resamples of ``cells`` (default: all), the same for the same seed."""
    if cells is not None:
        part = Contributions(part.values[cells], transform=part.transform)
    blocks = resample_counts(len(part.values), N_RESAMPLES, seed)
    return np.concatenate([part.resampled(block) for block in blocks])


@pytest.fixture(scope="module")
def triana_knn(tmp_path_factory, triana_gex2adt):
    folder = tmp_path_factory.mktemp("uncertainty")
    knn = predict("methods/knn_regression", triana_gex2adt, folder / "knn.h5ad")
    return folder, knn, rmse_contributions(knn, triana_gex2adt["test_mod2"], folder / "knn_score.h5ad")


def test_knn_rmse_interval_contains_its_value_and_narrows_with_more_test_cells(triana_knn):
    _, _, (value, part) = triana_knn
    assert part.value == pytest.approx(value, rel=1e-12)  # the per-cell form adds up to the metric
    n_cells = len(part.values)
    assert n_cells >= 1000
    order = np.random.default_rng(0).permutation(n_cells)
    widths = []
    for n in (100, 400, n_cells):
        cells = order[:n]
        subset_value = Contributions(part.values[cells], transform="sqrt").value
        low, high = interval(replicates(part, cells))
        assert low < subset_value < high, n
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2] > 0
    # About 1 / sqrt(n): four times the cells, about half the width.
    assert 0.3 < widths[1] / widths[0] < 0.75


def test_solution_interval_is_a_point(tmp_path, triana_gex2adt):
    solution = predict("control_methods/solution", triana_gex2adt, tmp_path / "solution.h5ad")
    value, part = rmse_contributions(solution, triana_gex2adt["test_mod2"], tmp_path / "score.h5ad")
    assert value == 0.0
    assert interval(replicates(part)) == (0.0, 0.0)


def test_methods_closer_than_the_noise_are_tied_and_a_clear_gap_is_significant(triana_knn, triana_gex2adt):
    folder, knn, (knn_rmse, knn_part) = triana_knn
    # A second method as good as kNN on average: kNN's prediction moved 10 % towards the truth on
    # a random half of the cells and 10 % away on the other; an RMSE a fraction of the interval away.
    noisy, truth = read(knn), read(triana_gex2adt["test_mod2"])
    sign = np.random.default_rng(1).choice([-1.0, 1.0], size=(noisy.n_obs, 1))
    dense = lambda matrix: matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)  # noqa: E731
    predicted, expected = dense(noisy.layers["normalized"]), dense(truth.layers["normalized"])
    noisy.layers["normalized"] = predicted + 0.1 * sign * (expected - predicted)
    noisy.write_h5ad(folder / "noisy.h5ad")
    noisy_rmse, noisy_part = rmse_contributions(
        folder / "noisy.h5ad", triana_gex2adt["test_mod2"], folder / "noisy_score.h5ad"
    )
    mean = predict("control_methods/mean_per_feature", triana_gex2adt, folder / "mean.h5ad")
    mean_rmse, mean_part = rmse_contributions(mean, triana_gex2adt["test_mod2"], folder / "mean_score.h5ad")
    low, high = interval(replicates(knn_part))
    assert 0 < abs(noisy_rmse - knn_rmse) < (high - low) / 2
    # Scores where higher is better; the same resamples (seed) for all three: paired differences.
    points = {"knn": -knn_rmse, "noisy_knn": -noisy_rmse, "mean_per_feature": -mean_rmse}
    parts = {"knn": knn_part, "noisy_knn": noisy_part, "mean_per_feature": mean_part}
    table = rank_table(points, {name: -replicates(part) for name, part in parts.items()}).set_index("method")
    first, second = table.index[:2]
    assert {first, second} == {"knn", "noisy_knn"}
    assert table.loc[first, "tied_group"] == table.loc[second, "tied_group"] == 1
    assert not table.loc[first, "significant"]
    assert table.loc[second, "significant"]  # well ahead of the mean per feature
    assert table.loc["mean_per_feature", "tied_group"] == 2
    assert table.loc["mean_per_feature", "p_best"] == 0.0
    assert table["p_best"].sum() == pytest.approx(1.0)


def test_contributions_that_do_not_add_up_are_refused():
    prediction = ad.AnnData(uns={"dataset_id": "d", "method_id": "m"})
    part = Contributions(np.array([1.0, 4.0]), transform="sqrt")
    score_file(prediction, {"rmse": np.sqrt(2.5)}, contributions={"rmse": part}, cells=["a", "b"])
    with pytest.raises(ValueError, match="per-cell contributions give"):
        score_file(prediction, {"rmse": 2.5}, contributions={"rmse": part}, cells=["a", "b"])


def test_grouped_contributions_are_the_mean_over_groups():
    part = Contributions(np.array([1.0, 0.0, 0.0, np.nan]), groups=np.array(["a", "a", "b", "c"]))
    assert part.value == pytest.approx(0.25)  # a: 0.5, b: 0.0, c: skipped
    # A resample drawing only the first cell: a alone, 1.0.
    assert part.resampled(np.array([[4.0, 0.0, 0.0, 0.0]]))[0] == pytest.approx(1.0)


def test_stochastic_methods_get_a_job_per_seed_and_deterministic_ones_one(tmp_path):
    selection = Selection(
        tasks=["predict_modality"], profile="test", datasets=["neurips2021_starter_cite"], seeds=3
    )
    jobs = plan(REPO, tmp_path, selection)
    knn = [j for j in jobs if j.method == "knn_regression" and j.stage == "method" and j.variant == "gex2adt"]
    assert [j.seed for j in knn] == [0, 1, 2]
    assert [j.params["seed"] for j in knn] == [0, 1, 2]
    assert len({j.key for j in knn}) == 3
    mean = [j for j in jobs if j.method == "mean_per_feature" and j.stage == "control_method"]
    assert [j.seed for j in mean] == [None, None]  # one per variant
    one_seed = plan(REPO, tmp_path, Selection(tasks=["predict_modality"], profile="test", seeds=1))
    assert knn[0].key in {j.key for j in one_seed}  # the first seed is the run without --seeds


def test_a_run_with_seeds_reports_spread_intervals_and_ranks(repo, data_dir, tmp_path):
    cmd = [sys.executable, "-m", "scmib.cli", "run", "--task", "predict_modality", "--profile", "test"]
    cmd += ["--datasets", "neurips2021_starter_cite", "--methods", "knn_regression,ridge_regression"]
    cmd += ["--metrics", "error,correlation", "--seeds", "2", "--outdir", str(tmp_path)]
    cmd += ["--data_mirror", str(data_dir), "--no-progress"]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    read_tsv = lambda name: pd.read_csv(tmp_path / "results" / name, sep="\t")  # noqa: E731
    results, scores, ranks = read_tsv("results.tsv"), read_tsv("scores.tsv"), read_tsv("ranks.tsv")

    rmse = results[(results["metric"] == "rmse") & (results["variant"] == "gex2adt")].set_index("method")
    assert sorted(rmse.loc["knn_regression", "seed"]) == [0, 1]
    assert (rmse.loc["knn_regression", "seed_mean"] == rmse.loc["knn_regression", "value"].mean()).all()
    mean = rmse.loc["mean_per_feature"]
    assert pd.isna(mean["seed"]) and mean["n_seeds"] == 1 and mean["seed_sd"] == 0.0
    assert mean["ci_low"] < mean["value"] < mean["ci_high"]
    solution = scores[scores["method"] == "solution"]
    assert (solution["ci_low"] == 1.0).all() and (solution["ci_high"] == 1.0).all()
    assert (scores.loc[scores["method"] == "mean_per_feature", "score_sd"] == 0.0).all()
    assert (scores["ci_low"] <= scores["mean_score"] + 1e-9).all()
    assert (scores["mean_score"] <= scores["ci_high"] + 1e-9).all()

    for (dataset, variant), board in ranks.groupby(["dataset", "variant"]):
        assert set(board["method"]) == {"knn_regression", "ridge_regression"}, (dataset, variant)
        assert board["p_best"].sum() == pytest.approx(1.0)
        assert list(board["rank"]) == [1, 2]
        top = board.iloc[0]
        assert top["tied_group"] == 1
        assert board.iloc[1]["tied_group"] == (2 if top["significant"] else 1)
    report = (tmp_path / "results" / "report.html").read_text()
    assert "How sure is this ranking?" in report and 'class="ci"' in report


def test_the_workflow_plan_fans_out_seeds_from_its_parameter(tmp_path):
    """Nextflow's `--seeds` reaches the plan its tasks run: one entry per seed, each with its own."""
    output = tmp_path / "plan.json"
    cmd = [sys.executable, "-m", "scmib.cli", "plan", "--output", str(output)]
    params = ["scmib_profile=test", "seeds=2", "tasks=predict_modality", "datasets=neurips2021_starter_cite"]
    for value in params:
        cmd += ["--param", value]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(output.read_text())["jobs"]
    knn = [e for e in entries if e["method"] == "knn_regression" and e["stage"] == "method"]
    assert sorted((e["variant"], e["seed"], e["params"]["seed"]) for e in knn) == [
        ("adt2gex", 0, 0), ("adt2gex", 1, 1), ("gex2adt", 0, 0), ("gex2adt", 1, 1)
    ]  # fmt: skip
    scored = {e["deps"][0] for e in entries if e["stage"] == "metric" and e["method"] == "knn_regression"}
    assert scored == {e["id"] for e in knn}  # every seed is scored


def test_a_tied_group_holds_no_two_methods_that_differ_significantly():
    """A ~ B and B ~ C but A > C (paired replicates): A and B share a group, C starts the next."""
    rng = np.random.default_rng(0)
    common, noise = rng.normal(0, 1, 1000), rng.normal(0, 1, 1000)
    replicates = {"a": common + 0.02, "b": common + 0.01 + 0.008 * noise, "c": common}
    point = {name: float(values.mean()) for name, values in replicates.items()}
    table = rank_table(point, replicates).set_index("method")
    assert list(table.index) == ["a", "b", "c"]
    assert not table.loc["a", "significant"] and not table.loc["b", "significant"]  # neighbours tie
    assert table.loc[["a", "b", "c"], "tied_group"].tolist() == [1, 1, 2]
    from scmib.report.leaderboard import _group_note

    assert _group_note(table, "a") == "tied within noise with b"
    assert _group_note(table, "c").startswith("a group of its own; not separated from b either")


def _row(dataset, method, metric, value, seed=None, kind="method", status="success"):
    return {
        "task": "predict_modality", "dataset": dataset, "variant": "gex2adt", "method": method,
        "method_kind": kind, "seed": seed, "metric": metric, "value": value, "maximize": True,
        "scored": True, "status": status, "metric_status": status if np.isfinite(value) else "failed",
        "wall_time_s": 1.0, "cpu_time_s": 1.0, "peak_memory_mb": 100.0, "log": "",
        "ci_low": np.nan, "ci_high": np.nan, "seed_sd": 0.0, "n_seeds": 1,
    }  # fmt: skip


def test_scores_metric_columns_and_summary_agree_on_seeds_unscaled_datasets_and_missing_rows():
    """Each seed is clipped before seeds are averaged, in the metric columns as in the scores; a
    dataset whose controls span no range stays in the tables as unscaled instead of vanishing; a
    metric row a method lacks for one seed neither crashes the replicates nor goes unscored."""
    from scmib.report.leaderboard import leaderboards
    from scmib.runner.results import method_scores, metric_scores, scale, summary
    from scmib.uncertainty.scores import column_replicates

    rows = []
    for dataset, bad in (("d1", 0.0), ("d2", np.nan)):  # on d2 a control failed: nothing to scale by
        rows += [_row(dataset, "good", m, 1.0, kind="control_method") for m in ("m1", "m2")]
        rows += [_row(dataset, "bad", m, bad, kind="control_method") for m in ("m1", "m2")]
        rows += [_row(dataset, "x", "m1", value, seed) for seed, value in ((0, -0.4), (1, 0.6))]
        rows += [_row(dataset, "x", "m2", 0.5, 0)]  # seed 1 has no m2 row
    table = pd.DataFrame(rows).astype({"seed": "Int64"})
    table["scaled"] = scale(table)
    parts = metric_scores(table).set_index(["dataset", "method", "metric"])["score"]
    assert parts[("d1", "x", "m1")] == pytest.approx(0.3)  # (0 + 0.6) / 2, not clip(0.1)
    assert ("d2", "x", "m1") not in parts.index
    scores = method_scores(table).set_index(["dataset", "method"])
    # Seed 0: (0 + 0.5) / 2; seed 1: m1 0.6 and its missing m2 counted 0: 0.3.
    assert scores.loc[("d1", "x"), "mean_score"] == pytest.approx((0.25 + 0.3) / 2)
    assert np.isnan(scores.loc[("d2", "x"), "mean_score"])  # kept, not dropped
    totals = summary(table).set_index("method")
    assert totals.loc["x", ["datasets", "unscaled"]].tolist() == [2, 1]
    assert totals.loc["x", "mean_score"] == pytest.approx(0.275)
    replicates = column_replicates(table, {})
    assert set(replicates[("predict_modality", "d1", "gex2adt")]) == {"good", "bad", "x"}
    runs = table[["task", "dataset", "variant", "method", "status"]].drop_duplicates()
    runs = runs.assign(stage="method", message="")
    board = leaderboards(table, runs, {})[0]
    assert board.values.loc["x", "m1"] == pytest.approx(0.3)
    assert (
        np.isnan(board.values.loc["x", "d2 gex2adt"]) and "not scaled" in board.notes.loc["x", "d2 gex2adt"]
    )


def test_a_stochastic_controls_seeds_scale_replicates_as_they_scale_the_score():
    """A control run with seeds counts with its mean over them in the score (here 0.2); so it
    must in every replicate, or a score can fall outside its own interval."""
    from scmib.runner.results import method_scores, scale
    from scmib.uncertainty.scores import column_replicates, score_intervals

    rows = [_row("d1", "good", "m1", 1.0, kind="control_method")]
    rows += [_row("d1", "noise", "m1", v, seed, kind="control_method") for seed, v in ((0, 0.0), (1, 0.4))]
    rows += [_row("d1", "x", "m1", 0.3)]
    table = pd.DataFrame(rows).astype({"seed": "Int64"})
    table["scaled"] = scale(table)
    scores = method_scores(table)
    assert scores.set_index("method").loc["x", "mean_score"] == pytest.approx((0.3 - 0.2) / 0.8)
    with_intervals = score_intervals(scores, column_replicates(table, {})).set_index("method")
    assert with_intervals.loc["x", ["ci_low", "ci_high"]].tolist() == pytest.approx([0.125, 0.125])


def test_a_method_that_failed_on_one_seed_shows_its_score_with_the_failure_counted():
    """Seed 0 fails (counted 0), seed 1 scores 0.8: the board shows 0.4, as summary.tsv counts it,
    and its note says which seeds failed and why, not "success"."""
    from scmib.report.leaderboard import leaderboards
    from scmib.runner.results import scale

    rows = [
        _row("d1", "good", "m1", 1.0, kind="control_method"),
        _row("d1", "bad", "m1", 0.0, kind="control_method"),
    ]
    rows += [_row("d1", "x", "m1", np.nan, 0, status="failed"), _row("d1", "x", "m1", 0.8, 1)]
    table = pd.DataFrame(rows).astype({"seed": "Int64"})
    table["scaled"] = scale(table)
    runs = pd.DataFrame([
        {"task": "predict_modality", "dataset": "d1", "variant": "gex2adt", "method": "x", "status": status,
         "stage": "method", "message": message}
        for status, message in (("failed", "deliberate crash"), ("success", ""))
    ])  # fmt: skip
    board = leaderboards(table, runs, {})[0]
    assert board.values.loc["x", "d1 gex2adt"] == pytest.approx(0.4)
    assert board.values.loc["x", "overall"] == pytest.approx(0.4)
    note = board.notes.loc["x", "d1 gex2adt"]
    assert "1 of 2 seeds did not succeed, each counted 0" in note and "deliberate crash" in note


def test_a_method_not_planned_on_a_dataset_says_why_instead_of_nan():
    """A method whose modality pairs leave d2 out has no rows there: its blank cell says so."""
    from scmib.report.leaderboard import NOT_PLANNED, leaderboards
    from scmib.runner.results import scale

    rows = []
    for dataset in ("d1", "d2"):
        rows += [_row(dataset, "good", "m1", 1.0, kind="control_method")]
        rows += [_row(dataset, "bad", "m1", 0.0, kind="control_method")]
    rows += [_row("d1", "x", "m1", 0.5)]
    table = pd.DataFrame(rows).astype({"seed": "Int64"})
    table["scaled"] = scale(table)
    runs = table[["task", "dataset", "variant", "method", "status"]].drop_duplicates()
    board = leaderboards(table, runs.assign(stage="method", message=""), {})[0]
    assert np.isnan(board.values.loc["x", "d2 gex2adt"])
    assert board.notes.loc["x", "d2 gex2adt"] == NOT_PLANNED
    assert board.notes.loc["x", "d1 gex2adt"] != NOT_PLANNED

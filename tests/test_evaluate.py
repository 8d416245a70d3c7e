"""``scmib.evaluate``: the metrics on objects in Python equal the components' on a real run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import COMPONENTS, REPO, run_cli

import scmib.evaluate
from scmib.io import read_h5ad
from scmib.spec import discover

DATASETS = ("neurips2021_starter_cite", "neurips2021_starter_multiome")


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir) -> tuple[Path, pd.DataFrame]:
    """One method per task and every control, on both starter datasets, through ``scmib run``."""
    outdir = tmp_path_factory.mktemp("evaluate")
    cmd = [
        sys.executable, "-m", "scmib.cli", "run", "--profile", "test", "--datasets", ",".join(DATASETS),
        "--methods", "pca_concat,knn_regression,linear_knn", "--outdir", str(outdir),
        "--data_mirror", str(data_dir), "--no-progress",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = pd.read_csv(outdir / "results" / "results.tsv", sep="\t")
    assert (results["status"] == "success").all()
    return outdir, results


def run_values(results: pd.DataFrame, task: str, dataset: str, variant: str, method: str) -> pd.Series:
    rows = results[
        (results["task"] == task)
        & (results["dataset"] == dataset)
        & (results["variant"] == variant)
        & (results["method"] == method)
    ]
    # A metric that does not apply is NaN here, as scmib.evaluate gives it.
    values = rows["value"].where(rows["metric_status"] != "not_applicable")
    return pd.Series(values.to_numpy(), index=rows["metric"].to_numpy())


def assert_same(got: pd.Series, expected: pd.Series) -> None:
    assert sorted(got.index) == sorted(expected.index)
    np.testing.assert_allclose(got[expected.index], expected, rtol=1e-12, atol=1e-15)


def test_joint_embedding_metrics_equal_the_components(run):
    outdir, results = run
    checked = set()
    for dataset, variant in {
        ("neurips2021_starter_cite", "gex_adt"),
        ("neurips2021_starter_multiome", "gex_atac"),
    }:
        folder = outdir / "joint_embedding" / dataset / variant
        solution = ad.read_h5ad(folder / "data" / "solution.h5ad")
        # A learnt embedding, a random one and one with every cell at one point (scored 0).
        for method in ("pca_concat", "random_embedding", "constant_embedding"):
            adata = solution.copy()
            adata.obsm["X_emb"] = ad.read_h5ad(folder / method / "prediction.h5ad")[solution.obs_names].X
            expected = run_values(results, "joint_embedding", dataset, variant, method)
            assert_same(scmib.evaluate.joint_embedding(adata), expected)
            checked |= set(expected.dropna().index)
    assert {"ti_cons_batch_mean", "nmi", "asw_batch", "graph_conn", "clisi", "mean_of_six"} <= checked
    # A selection computes only what it names, with the same values.
    adata = solution.copy()
    adata.obsm["X_emb"] = ad.read_h5ad(folder / "pca_concat" / "prediction.h5ad")[solution.obs_names].X
    some = scmib.evaluate.joint_embedding(adata, metrics=["graph_conn", "ilisi"])
    assert_same(some, run_values(results, "joint_embedding", dataset, variant, "pca_concat")[some.index])


def test_cell_cycle_conservation_equals_the_component(tmp_path, data_dir):
    """The starter cells have no cell-cycle scores: Triana's bone marrow has (its GEX panel holds
    enough of the cell-cycle genes), scored here on that metric alone."""
    cmd = [
        sys.executable, "-m", "scmib.cli", "run", "--seeds", "1", "--task", "joint_embedding",
        "--datasets", "triana2021_bm_abseq", "--methods", "pca_concat", "--metrics", "cc_cons",
        "--outdir", str(tmp_path), "--data_mirror", str(data_dir), "--no-progress",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = pd.read_csv(tmp_path / "results" / "results.tsv", sep="\t")
    folder = tmp_path / "joint_embedding" / "triana2021_bm_abseq" / "gex_adt"
    solution = ad.read_h5ad(folder / "data" / "solution.h5ad")
    for method in ("pca_concat", "random_embedding", "label_embedding"):
        adata = solution.copy()
        adata.obsm["X_emb"] = ad.read_h5ad(folder / method / "prediction.h5ad")[solution.obs_names].X
        expected = run_values(results, "joint_embedding", "triana2021_bm_abseq", "gex_adt", method)
        got = scmib.evaluate.joint_embedding(adata, metrics=["cc_cons"])
        assert list(got.index) == ["cc_cons"] and np.isfinite(expected["cc_cons"])
        assert got["cc_cons"] == pytest.approx(expected["cc_cons"], rel=1e-12)
        # One batch of it still carries the stored variance of all: recomputed for that batch.
        first = adata[adata.obs["batch"] == adata.obs["batch"].iloc[0]].copy()
        assert np.isfinite(scmib.evaluate.joint_embedding(first, metrics=["cc_cons"])["cc_cons"])
        # Without the variance the solution stores, it is computed from adata.X: equal to rounding.
        del adata.uns["cc_variance_before"]
        again = scmib.evaluate.joint_embedding(adata, metrics=["cc_cons"])["cc_cons"]
        assert again == pytest.approx(expected["cc_cons"], rel=1e-6)


def test_prediction_and_matching_metrics_equal_the_components(run):
    outdir, results = run
    for dataset, variant in [(DATASETS[0], "gex2adt"), (DATASETS[0], "adt2gex"), (DATASETS[1], "gex2atac")]:
        folder = outdir / "predict_modality" / dataset / variant
        truth = ad.read_h5ad(folder / "data" / "test_mod2.h5ad")
        for method in ("knn_regression", "mean_per_feature"):
            prediction = ad.read_h5ad(folder / method / "prediction.h5ad")
            expected = run_values(results, "predict_modality", dataset, variant, method)
            assert_same(scmib.evaluate.predict_modality(truth, prediction), expected)
    for variant in ("gex2adt", "adt2gex"):
        folder = outdir / "match_modalities" / DATASETS[0] / variant
        solution = ad.read_h5ad(folder / "data" / "test_sol.h5ad")
        for method in ("linear_knn", "random_weights", "constant_weights"):
            weights = ad.read_h5ad(folder / method / "prediction.h5ad").X
            got = scmib.evaluate.match_modalities(
                weights, solution.uns["pairing_ix"], solution.obs["cell_type"]
            )
            assert_same(got, run_values(results, "match_modalities", DATASETS[0], variant, method))


def test_bad_inputs_say_what_was_expected(run):
    outdir, _ = run
    solution = ad.read_h5ad(outdir / "joint_embedding" / DATASETS[0] / "gex_adt" / "data" / "solution.h5ad")
    solution.obsm["X_emb"] = np.full((solution.n_obs, 2), np.nan)
    with pytest.raises(ValueError, match=r"obsm\['X_emb'\] holds NaN or infinite values"):
        scmib.evaluate.joint_embedding(solution)
    with pytest.raises(ValueError, match=r"metrics: unknown \['nmj'\]; known: asw_label"):
        scmib.evaluate.joint_embedding(solution, metrics=["nmj"])
    with pytest.raises(ValueError, match=r"prediction has shape \(3, 2\), the truth \(2, 3\)"):
        scmib.evaluate.predict_modality(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"expected \(3, 3\) from pairing_ix"):
        scmib.evaluate.match_modalities(np.eye(2), [0, 1, 2])
    # Silently truncated or scored before: fractional pairings, NaN predictions, missing slots.
    with pytest.raises(ValueError, match=r"pairing_ix: expected whole row numbers"):
        scmib.evaluate.match_modalities(np.eye(3), [0.2, 1.9, 2.5])
    prediction = np.ones((2, 3))
    prediction[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"prediction: 1 values are NaN or infinite"):
        scmib.evaluate.predict_modality(np.zeros((2, 3)), prediction)
    with pytest.raises(ValueError, match=r"obsm\['X_pca'\] is missing: expected the embedding"):
        scmib.evaluate.joint_embedding(solution, "X_pca")
    with pytest.raises(ValueError, match=r"obs\['donor'\] is missing: expected the cells' batches"):
        scmib.evaluate.joint_embedding(solution, batch_key="donor")


def component_values(tmp_path: Path, prediction: ad.AnnData, solution: ad.AnnData) -> pd.Series:
    """The asw and lisi components' values for these files, NaN where not applicable."""
    prediction.write_h5ad(tmp_path / "prediction.h5ad")
    solution.write_h5ad(tmp_path / "solution.h5ad")
    values = {}
    for metric in ("asw", "lisi"):
        run_cli(
            f"joint_embedding/metrics/{metric}",
            input_prediction=tmp_path / "prediction.h5ad",
            input_solution=tmp_path / "solution.h5ad",
            output=tmp_path / f"{metric}.h5ad",
        )
        score = read_h5ad(tmp_path / f"{metric}.h5ad")
        values.update(zip(score.uns["metric_ids"], map(float, score.uns["metric_values"]), strict=True))
    return pd.Series(values)


@pytest.mark.parametrize("case", ["sites", "one_batch", "types_in_one_batch"])
def test_sites_one_batch_and_a_nan_part_as_the_components_score_them(data_dir, tmp_path, case):
    """The organisers' starter embedding with a site column, one batch only, or each cell type in
    one batch (batch ASW is NaN, not inapplicable, and so is the competition's mean of six)."""
    folder = data_dir / "neurips2021_starter" / "cite" / "joint_embedding"
    prediction, solution = ad.read_h5ad(folder / "prediction.h5ad"), ad.read_h5ad(folder / "solution.h5ad")
    batch = solution.obs["batch"].astype(str)
    if case == "sites":
        solution.obs["site"] = batch.map({"s1d1": "site1", "s1d2": "site2"})
    elif case == "one_batch":
        solution = solution[batch == "s1d1"].copy()
        prediction = prediction[solution.obs_names].copy()
    else:
        solution.obs["cell_type"] = solution.obs["cell_type"].astype(str) + "_" + batch
    expected = component_values(tmp_path, prediction, solution)
    adata = solution.copy()
    adata.obsm["X_emb"] = prediction[solution.obs_names].X
    got = scmib.evaluate.joint_embedding(
        adata, metrics=["asw_label", "asw_batch", "clisi", "ilisi", "ilisi_site"]
    )
    assert_same(got[expected.index], expected)
    if case == "sites":
        assert np.isfinite(got["ilisi_site"])
    if case == "one_batch":
        assert got[["asw_batch", "ilisi", "ilisi_site"]].isna().all()
    if case == "types_in_one_batch":
        assert np.isnan(got["asw_batch"])
        assert np.isnan(scmib.evaluate.joint_embedding(adata, metrics=["mean_of_six"])["mean_of_six"])


def test_a_prediction_with_its_names_reordered_scores_the_same(data_dir):
    folder = data_dir / "neurips2021_starter" / "cite" / "match_modality"
    prediction, solution = ad.read_h5ad(folder / "prediction.h5ad"), ad.read_h5ad(folder / "test_sol.h5ad")
    prediction.obs_names, prediction.var_names = solution.obs_names, solution.var_names
    as_given = scmib.evaluate.match_modalities(prediction, solution)
    rows, cols = (
        np.random.default_rng(0).permutation(prediction.n_obs),
        np.random.default_rng(1).permutation(prediction.n_vars),
    )
    shuffled = prediction[rows][:, cols].copy()
    assert_same(scmib.evaluate.match_modalities(shuffled, solution), as_given)
    # As arrays, positions are the pairing: the same weights in shuffled positions score less.
    assert (
        scmib.evaluate.match_modalities(shuffled.X, solution.uns["pairing_ix"])["match_probability"]
        < (as_given["match_probability"])
    )


def test_the_metric_ids_are_the_components_own():
    specs = [s for s in discover(COMPONENTS) if s.kind == "metric"]

    def ids(task: str) -> set[str]:
        return {m.name for s in specs if s.task == task for m in s.info.metrics}

    assert set(scmib.evaluate.PREDICTION_METRICS) == ids("predict_modality")
    assert set(scmib.evaluate.MATCHING_METRICS) == ids("match_modalities")
    assert set(scmib.evaluate.EMBEDDING_METRICS) == ids("joint_embedding") | {"mean_of_six"}

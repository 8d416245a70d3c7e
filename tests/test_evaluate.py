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
from conftest import REPO

import scmib.evaluate

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
    with pytest.raises(ValueError, match=r"obsm\['X_emb'\]: expected finite values of 1 to 100 dimensions"):
        scmib.evaluate.joint_embedding(solution)
    with pytest.raises(ValueError, match=r"metrics: unknown \['nmj'\]; known: asw_label"):
        scmib.evaluate.joint_embedding(solution, metrics=["nmj"])
    with pytest.raises(ValueError, match=r"prediction has shape \(3, 2\), the truth \(2, 3\)"):
        scmib.evaluate.predict_modality(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"expected \(3, 3\) from pairing_ix"):
        scmib.evaluate.match_modalities(np.eye(2), [0, 1, 2])

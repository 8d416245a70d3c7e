"""Controls, methods and metrics of predict modality, through their command lines on real cells."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest
from conftest import organisers_files, predict, read, run_cli, score, spec_of

CONTROLS = ["zeros", "mean_per_feature", "random_train_profiles", "solution"]
METHODS = ["knn_regression", "ridge_regression"]


@pytest.fixture(scope="module")
def triana_predictions(tmp_path_factory, triana_gex2adt) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("triana_predictions")
    components = [f"control_methods/{c}" for c in CONTROLS] + [f"methods/{m}" for m in METHODS]
    return {
        component.partition("/")[2]: predict(
            component, triana_gex2adt, folder / f"{component.partition('/')[2]}.h5ad"
        )
        for component in components
    }


@pytest.fixture(scope="module")
def triana_rmse(tmp_path_factory, triana_predictions, triana_gex2adt) -> dict[str, float]:
    folder = tmp_path_factory.mktemp("triana_scores")
    return {
        name: score(path, triana_gex2adt["test_mod2"], folder / f"{name}.h5ad")["rmse"]
        for name, path in triana_predictions.items()
    }


def test_solution_scores_perfectly(triana_rmse, triana_predictions, triana_gex2adt, tmp_path):
    assert triana_rmse["solution"] == 0.0
    correlations = score(
        triana_predictions["solution"], triana_gex2adt["test_mod2"], tmp_path / "s.h5ad", metric="correlation"
    )
    assert correlations["pearson_overall"] == pytest.approx(1.0)
    assert correlations["spearman_per_cell"] == pytest.approx(1.0)


@pytest.mark.parametrize("method", METHODS)
def test_methods_beat_mean_per_feature_on_held_out_triana_batches(triana_rmse, method):
    # kNN regression reaches ~0.42 against ~0.67 for the per-feature mean (the
    # competition's full-data numbers were 0.427 and 0.657).
    assert triana_rmse[method] < 0.8 * triana_rmse["mean_per_feature"]


def test_negative_controls_are_worse_than_the_mean(triana_rmse):
    assert triana_rmse["zeros"] > triana_rmse["mean_per_feature"]
    assert triana_rmse["random_train_profiles"] > triana_rmse["mean_per_feature"]


def test_control_outputs_are_what_they_claim(triana_predictions, triana_gex2adt):
    zeros = read(triana_predictions["zeros"]).layers["normalized"]
    assert not np.any(zeros)
    mean = read(triana_predictions["mean_per_feature"]).layers["normalized"]
    np.testing.assert_allclose(
        mean[0], read(triana_gex2adt["train_mod2"]).layers["normalized"].toarray().mean(axis=0), rtol=1e-5
    )
    random_rows = read(triana_predictions["random_train_profiles"]).layers["normalized"]
    train = read(triana_gex2adt["train_mod2"]).layers["normalized"].toarray()
    assert all(np.any(np.all(np.isclose(train, row), axis=1)) for row in random_rows[:20])


def test_adt2gex_direction(tmp_path, triana_adt2gex):
    knn = predict("methods/knn_regression", triana_adt2gex, tmp_path / "knn.h5ad")
    mean = predict("control_methods/mean_per_feature", triana_adt2gex, tmp_path / "mean.h5ad")
    solution = triana_adt2gex["test_mod2"]
    assert (
        score(knn, solution, tmp_path / "a.h5ad")["rmse"] < score(mean, solution, tmp_path / "b.h5ad")["rmse"]
    )


def test_more_neighbours_than_training_cells_use_every_cell_and_say_so(tmp_path, triana_adt2gex):
    """kNN with more neighbours than training cells: each test cell gets the training mean, and the
    job's log says the setting was capped."""
    n_train = read(triana_adt2gex["train_mod1"]).n_obs
    inputs = {f"input_{n}": triana_adt2gex[n] for n in ("train_mod1", "train_mod2", "test_mod1")}
    out = tmp_path / "knn.h5ad"
    proc = run_cli("predict_modality/methods/knn_regression", output=out, n_neighbors=10**6, **inputs)
    capped = f"n_neighbors: 1,000,000 asked, but there are only {n_train:,} training cells: {n_train:,} used"
    assert capped in proc.stdout
    first = read(out).layers["normalized"][0]
    first = first.toarray() if hasattr(first, "toarray") else first
    mean = read(triana_adt2gex["train_mod2"]).layers["normalized"].mean(axis=0)
    np.testing.assert_allclose(np.ravel(first), np.ravel(mean), rtol=1e-4)


@pytest.mark.parametrize("modality", ["cite", "multiome"])
def test_organisers_files_work_unchanged_and_rmse_matches_numpy(tmp_path, data_dir, modality):
    files = organisers_files(data_dir, modality)
    for method in METHODS:
        out = predict(f"methods/{method}", files, tmp_path / f"{method}.h5ad", n_components=20)
        assert read(out).shape == read(files["test_mod2"]).shape
    for control in CONTROLS:
        predict(f"control_methods/{control}", files, tmp_path / f"{control}.h5ad")
    # The organisers' own example prediction, scored by our metric component ...
    ours = score(files["prediction"], files["test_mod2"], tmp_path / "score.h5ad")
    # ... equals RMSE computed directly from their .X matrices.
    truth = read(files["test_mod2"]).X.toarray().astype(np.float64)
    pred = read(files["prediction"]).X.toarray().astype(np.float64)
    assert ours["rmse"] == pytest.approx(np.sqrt(np.mean((truth - pred) ** 2)), abs=1e-12)
    assert ours["mae"] == pytest.approx(np.mean(np.abs(truth - pred)), abs=1e-12)


def test_metric_rejects_nan_and_wrong_shape_without_partial_output(
    tmp_path, triana_predictions, triana_gex2adt
):
    bad = read(triana_predictions["knn_regression"])
    bad.layers["normalized"][0, 0] = np.nan
    bad.write_h5ad(tmp_path / "nan.h5ad")
    out = tmp_path / "score.h5ad"
    proc = run_cli(
        "predict_modality/metrics/error",
        check=False,
        input_prediction=tmp_path / "nan.h5ad",
        input_test_mod2=triana_gex2adt["test_mod2"],
        output=out,
    )
    assert proc.returncode == 2
    assert "nan.h5ad" in proc.stderr and "layers['normalized']" in proc.stderr
    assert "1 NaN" in proc.stderr and not out.exists()
    read(triana_predictions["knn_regression"])[:10].write_h5ad(tmp_path / "short.h5ad")
    proc = run_cli(
        "predict_modality/metrics/error",
        check=False,
        input_prediction=tmp_path / "short.h5ad",
        input_test_mod2=triana_gex2adt["test_mod2"],
        output=out,
    )
    assert proc.returncode == 2 and "shape (10, 97)" in proc.stderr and not out.exists()


def test_prediction_rows_in_another_order_are_aligned(tmp_path, triana_predictions, triana_gex2adt):
    prediction = read(triana_predictions["knn_regression"])
    shuffled = prediction[np.random.default_rng(0).permutation(prediction.n_obs)].copy()
    shuffled.write_h5ad(tmp_path / "shuffled.h5ad")
    a = score(triana_predictions["knn_regression"], triana_gex2adt["test_mod2"], tmp_path / "a.h5ad")
    b = score(tmp_path / "shuffled.h5ad", triana_gex2adt["test_mod2"], tmp_path / "b.h5ad")
    assert a == pytest.approx(b)


def test_ridge_regression_equals_scikit_learn_on_sparse_targets(triana_adt2gex, tmp_path):
    """The closed form on sparse targets (no dense copy: 3.9 GB of GEX at competition size) gives
    scikit-learn's Ridge predictions, through the component's command line."""
    from sklearn.linear_model import Ridge

    from scmib.methods.linear import ridge_predict
    from scmib.methods.reduction import as_dense, joint_svd

    out = predict("methods/ridge_regression", triana_adt2gex, tmp_path / "ridge.h5ad")
    train_mod1, train_mod2 = read(triana_adt2gex["train_mod1"]), read(triana_adt2gex["train_mod2"])
    test_mod1 = read(triana_adt2gex["test_mod1"])
    train_emb, test_emb = joint_svd(train_mod1.layers["normalized"], test_mod1.layers["normalized"], 50, 0)
    # In float64: scikit-learn keeps float32 inputs in float32 arithmetic, the closed form does not.
    train_emb, test_emb = train_emb.astype(np.float64), test_emb.astype(np.float64)
    targets = as_dense(train_mod2.layers["normalized"]).astype(np.float64)
    fitted = Ridge(alpha=1.0).fit(train_emb, targets).predict(test_emb)
    ours = ridge_predict(train_emb, train_mod2.layers["normalized"], test_emb, 1.0)
    np.testing.assert_allclose(ours, fitted, rtol=1e-9, atol=1e-9)
    # Through the command line: the same, up to the float32 SVD (its rounding depends on BLAS threads).
    expected = np.clip(fitted, targets.min(0), targets.max(0))
    np.testing.assert_allclose(read(out).layers["normalized"], expected, atol=1e-4)


def test_a_method_writing_other_cells_than_its_test_cells_fails_itself(triana_gex2adt, tmp_path):
    """A prediction of fewer (or reordered) test cells is the method's failure, named at its own
    write, not a success whose metrics then fail."""
    from scmib.component import ComponentRun
    from scmib.errors import ContractError

    values = {
        f"input_{name}": str(triana_gex2adt[name]) for name in ("train_mod1", "train_mod2", "test_mod1")
    }
    run = ComponentRun(
        spec_of("predict_modality/methods/knn_regression"), {**values, "output": tmp_path / "p.h5ad"}
    )
    test_mod1, train_mod2 = run.read("input_test_mod1"), run.read("input_train_mod2")
    prediction = ad.AnnData(
        X=np.zeros((test_mod1.n_obs, train_mod2.n_vars)), obs=test_mod1.obs[[]], var=train_mod2.var[[]]
    )
    prediction.uns["dataset_id"] = "triana"
    with pytest.raises(ContractError, match="must have the same cells"):
        run.write("output", prediction[::-1][:-10].copy())
    assert not (tmp_path / "p.h5ad").exists()
    run.write("output", prediction)  # the test cells in their order: fine

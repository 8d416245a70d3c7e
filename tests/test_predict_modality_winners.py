"""The competition winners' predict-modality methods, on real held-out batches."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import organisers_files, read, run_cli
from sklearn.kernel_ridge import KernelRidge
from test_predict_modality_components import predict, score

from scmib.errors import EXIT_NOT_APPLICABLE
from scmib.methods.features import zscore_rows
from scmib.methods.kernel_ridge import ScalableKernelRidge, rbf_gamma
from scmib.methods.reduction import joint_svd
from scmib.processing.split import half_batch_splits

WINNERS = ["guanlab_kernel_ridge", "lslab_fold_knn", "novel_lsi_mlp", "cajal_marker_mlp"]
#: Small settings for the torch models so the suite stays fast on 2 cores.
QUICK = {
    "novel_lsi_mlp": {"epochs": 40},
    "dance_gnn": {"epochs": 20, "select_after": 10},
}


@pytest.fixture(scope="module")
def triana_rmse(tmp_path_factory, triana_gex2adt) -> dict[str, float]:
    folder = tmp_path_factory.mktemp("winners")
    rmse = {}
    for name in [*WINNERS, "knn_regression", "control_methods/mean_per_feature"]:
        component = name if "/" in name else f"methods/{name}"
        name = name.rpartition("/")[2]
        out = predict(component, triana_gex2adt, folder / f"{name}.h5ad", **QUICK.get(name, {}))
        rmse[name] = score(out, triana_gex2adt["test_mod2"], folder / f"s_{name}.h5ad")["rmse"]
    return rmse


def test_guanlab_beats_knn_on_triana_gex2adt_by_a_margin(triana_rmse):
    # Competition (full data): Guanlab 0.385 vs kNN 0.427. Here: about 0.390 vs 0.418.
    assert triana_rmse["guanlab_kernel_ridge"] < triana_rmse["knn_regression"] - 0.015


@pytest.mark.parametrize("method", WINNERS)
def test_every_winner_beats_the_mean_per_feature(triana_rmse, method):
    # By a clear margin: the mean per feature scores about 0.674, kNN 0.418, the winners 0.39-0.45.
    assert triana_rmse[method] < 0.8 * triana_rmse["mean_per_feature"]


def test_nystroem_kernel_ridge_agrees_with_the_exact_kernel(triana_gex2adt):
    train = read(triana_gex2adt["train_mod1"])
    target = read(triana_gex2adt["train_mod2"]).layers["normalized"].toarray()
    x, _ = joint_svd(train.layers["normalized"], train.layers["normalized"][:10], 50, 0)
    x = zscore_rows(x)
    fit, held = slice(0, 2000), slice(2000, 2500)
    exact = KernelRidge(alpha=0.1, kernel="rbf", gamma=rbf_gamma(10.0)).fit(x[fit], target[fit])
    approx = ScalableKernelRidge(10.0, 0.1, n_landmarks=1000, max_exact=500, seed=0)
    approx.fit(x[fit], target[fit])
    assert approx._exact is None  # the Nystroem path ran
    reference = exact.predict(x[held])
    error = np.sqrt(np.mean((approx.predict(x[held]) - reference) ** 2))
    assert error < 0.05 * np.sqrt(np.mean(reference**2))
    # At or below max_exact cells the exact solver is used and agrees to rounding.
    small = ScalableKernelRidge(10.0, 0.1, max_exact=5000).fit(x[fit], target[fit])
    np.testing.assert_allclose(small.predict(x[held]), reference, rtol=1e-6, atol=1e-8)


def test_guanlab_halves_are_complementary_halves_of_shuffled_batches():
    # Guanlab's code: 5 rounds, each the first n // 2 shuffled batches and the rest.
    batches = pd.Series(np.repeat(["a", "b", "c"], [4, 5, 6]))
    splits = half_batch_splits(batches, 10, seed=0)
    assert len(splits) == 10
    for first, second in zip(splits[::2], splits[1::2], strict=True):
        assert len(set(batches[first])) == 1 and len(set(batches[second])) == 2
        np.testing.assert_array_equal(np.sort(np.concatenate([first, second])), np.arange(15))
    assert len({tuple(split) for split in splits}) > 2  # the rounds reshuffle
    # One batch: both models of a round train on every cell (the first half would be empty).
    for split in half_batch_splits(pd.Series(["a"] * 7), 3, seed=0):
        np.testing.assert_array_equal(split, np.arange(7))


def _starter_cite(data_dir):
    files = organisers_files(data_dir, "cite")
    return files, *(read(files[n]) for n in ("train_mod1", "train_mod2", "test_mod1"))


def test_guanlab_computes_what_its_code_computes_for_gex2adt(tmp_path, data_dir):
    """Guanlab's GEX->ADT settings (300 input and 70 target components, alpha 0.2, length scale
    10) with scikit-learn's kernel ridge and Gaussian-process RBF kernel, as Guanlab's code calls
    them; the starter cells are one batch, so all ten models train on every cell."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.gaussian_process.kernels import RBF

    files, train_mod1, train_mod2, test_mod1 = _starter_cite(data_dir)
    x_train, x_test = (zscore_rows(x) for x in joint_svd(train_mod1.X, test_mod1.X, 300, 0))
    target = TruncatedSVD(70, random_state=0).fit(train_mod2.X)
    model = KernelRidge(alpha=0.2, kernel=RBF(length_scale=10)).fit(x_train, target.transform(train_mod2.X))
    expected = np.clip(model.predict(x_test) @ target.components_, 0, None)
    out = predict("methods/guanlab_kernel_ridge", files, tmp_path / "guanlab.h5ad")
    np.testing.assert_allclose(read(out).layers["normalized"], expected, rtol=1e-4, atol=1e-4)


def test_lslab_computes_what_its_code_computes(tmp_path, data_dir):
    """LS lab's code: 50 input components of train and test cells, 10 folds stratified by batch,
    on each a 50-component SVD of the targets and scikit-learn's 25-neighbour regressor, the
    predictions projected back and averaged."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsRegressor

    files, train_mod1, train_mod2, test_mod1 = _starter_cite(data_dir)
    x_train, x_test = joint_svd(train_mod1.X, test_mod1.X, 50, 0)
    batches = train_mod1.obs["batch"].astype(str)
    expected = 0
    for kept, _ in StratifiedKFold(10, shuffle=True, random_state=0).split(x_train, batches):
        target = TruncatedSVD(50, random_state=0).fit(train_mod2.X[kept])
        model = KNeighborsRegressor(n_neighbors=25).fit(x_train[kept], target.transform(train_mod2.X[kept]))
        expected = expected + model.predict(x_test) @ target.components_
    out = predict("methods/lslab_fold_knn", files, tmp_path / "lslab.h5ad")
    np.testing.assert_allclose(read(out).layers["normalized"], expected / 10, rtol=1e-4, atol=1e-5)


def test_cajal_without_cell_types_is_not_applicable(tmp_path, data_dir):
    files = organisers_files(data_dir, "cite")  # the organisers' files carry no cell types
    out = tmp_path / "prediction.h5ad"
    proc = run_cli(
        "predict_modality/methods/cajal_marker_mlp",
        check=False,
        output=out,
        **{f"input_{n}": files[n] for n in ("train_mod1", "train_mod2", "test_mod1")},
    )
    assert proc.returncode == EXIT_NOT_APPLICABLE and "cell-type labels" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("method", ["guanlab_kernel_ridge", "lslab_fold_knn", "novel_lsi_mlp", "dance_gnn"])
def test_winners_accept_the_organisers_files(tmp_path, data_dir, method):
    for modality in ("cite", "multiome"):
        files = organisers_files(data_dir, modality)
        out = predict(f"methods/{method}", files, tmp_path / f"{modality}.h5ad", **QUICK.get(method, {}))
        assert read(out).shape == read(files["test_mod2"]).shape


def test_torch_methods_are_seeded(tmp_path, starter_cite_common):
    from conftest import make_task

    task = make_task(tmp_path, starter_cite_common, "gex2adt")
    runs = [
        predict("methods/novel_lsi_mlp", task, tmp_path / f"{i}.h5ad", epochs=3, device="auto", seed=seed)
        for i, seed in enumerate((0, 0, 1))
    ]
    first, again, other = (read(run).layers["normalized"] for run in runs)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3  # the seed is used: another one trains another model


@pytest.mark.parametrize("decoupled", [False, True])
def test_the_fused_adam_takes_torchs_default_steps(decoupled):
    """``adam`` (torch's fused kernel) updates parameters as torch's default per-tensor loop does.

    Fed the same gradients: gradients of a trained network would let noise-level
    differences grow (a bias before BatchNorm has a gradient of rounding noise only,
    which Adam's normalisation turns into full-size steps), hiding what is compared.
    """
    import torch

    from scmib.methods.torch_models import adam

    generator = torch.Generator().manual_seed(0)
    shapes = [(512, 134), (512,), (13953, 512)]
    start = [torch.randn(shape, generator=generator) * 0.05 for shape in shapes]
    gradients = [[torch.randn(shape, generator=generator) * 1e-2 for shape in shapes] for _ in range(20)]
    weights = []
    for fused in (True, False):
        parameters = [torch.nn.Parameter(w.clone()) for w in start]
        if fused:
            optimiser = adam(parameters, 1e-3, 0.01, decoupled=decoupled)
            assert optimiser.defaults["fused"]
        else:
            kind = torch.optim.AdamW if decoupled else torch.optim.Adam
            optimiser = kind(parameters, lr=1e-3, weight_decay=0.01, foreach=False)
        for step in gradients:
            for parameter, gradient in zip(parameters, step, strict=True):
                parameter.grad = gradient.clone()
            optimiser.step()
        weights.append(torch.cat([p.detach().ravel() for p in parameters]))
    assert not torch.equal(weights[1], torch.cat([w.ravel() for w in start]))
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-5, atol=1e-7)


def test_a_torch_method_logs_every_epoch_it_trains(tmp_path, starter_cite_common):
    """The job log says how far training got and what an epoch costs (early stopping may end it
    before the last epoch; patience 15 cannot, with 3)."""
    from conftest import make_task

    task = make_task(tmp_path, starter_cite_common, "gex2adt")
    inputs = {f"input_{n}": task[n] for n in ("train_mod1", "train_mod2", "test_mod1")}
    proc = run_cli("predict_modality/methods/novel_lsi_mlp", output=tmp_path / "out.h5ad", epochs=3, **inputs)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("regressor epoch")]
    assert [line.split(":")[0] for line in lines] == [f"regressor epoch {e}/3" for e in (1, 2, 3)]
    assert all(re.search(r"validation_loss [0-9.e+-]+ \([0-9.]+ s\)$", line) for line in lines)


def test_novel_trains_its_own_network_for_adt2gex(tmp_path, starter_cite_common):
    """ADT->GEX, the direction Novel won, runs Novel's own network (134 -> 4 x 512 -> genes) for all
    100 epochs at batch 64, keeping the best (``epochs`` can shorten it); ``novel_networks=none``
    gives the encoder-decoder of the other directions."""
    from conftest import make_task

    task = make_task(tmp_path, starter_cite_common, "adt2gex")
    inputs = {f"input_{n}": task[n] for n in ("train_mod1", "train_mod2", "test_mod1")}
    n_genes = read(task["train_mod2"]).n_vars
    own = run_cli("predict_modality/methods/novel_lsi_mlp", output=tmp_path / "own.h5ad", **inputs)
    assert f"network 134 -> 512 -> 512 -> 512 -> 512 -> {n_genes}, batch 64" in own.stderr
    assert "regressor epoch 100/100:" in own.stderr
    other = run_cli(
        "predict_modality/methods/novel_lsi_mlp",
        output=tmp_path / "other.h5ad",
        novel_networks="none",
        epochs=3,
        **inputs,
    )
    assert f"network 134 -> 512 -> 128 -> 512 -> {n_genes}, batch 256" in other.stderr
    assert "regressor epoch 3/3:" in other.stderr
    fewer = run_cli("predict_modality/methods/novel_lsi_mlp", output=tmp_path / "2.h5ad", epochs=2, **inputs)
    assert "regressor epoch 2/2:" in fewer.stderr and "batch 64" in fewer.stderr  # a shorter check run


def test_novel_networks_all_trains_novels_own_network_in_every_direction(tmp_path, starter_cite_common):
    """``novel_networks=all``: GEX->ADT gets Novel's own network too (LSI 256 -> 512 -> 512 -> 2048 ->
    proteins, batch 32, its 100 epochs) instead of the encoder-decoder it gets by default, and it
    learns: RMSE about 0.57 against the mean per feature's 0.78 on the starter cells."""
    from conftest import make_task, predict, score

    task = make_task(tmp_path, starter_cite_common, "gex2adt")
    inputs = {f"input_{n}": task[n] for n in ("train_mod1", "train_mod2", "test_mod1")}
    method = "predict_modality/methods/novel_lsi_mlp"
    own = run_cli(method, output=tmp_path / "own.h5ad", novel_networks="all", **inputs)
    assert "network 256 -> 512 -> 512 -> 2048 -> 134, batch 32" in own.stderr
    assert "regressor epoch 100/100:" in own.stderr
    mean = predict("control_methods/mean_per_feature", task, tmp_path / "mean.h5ad")
    rmse = {
        name: score(path, task["test_mod2"], tmp_path / f"score_{name}.h5ad")["rmse"]
        for name, path in (("own", tmp_path / "own.h5ad"), ("mean", mean))
    }
    assert rmse["own"] < 0.8 * rmse["mean"], rmse
    default = run_cli(method, output=tmp_path / "default.h5ad", epochs=2, **inputs)
    assert "network 256 -> 512 -> 128 -> 512 -> 134, batch 256" in default.stderr


def test_mlp_without_batch_norm_and_with_an_output_activation():
    """Novel's layers: linear and GELU throughout, the output too; the default keeps batch norm and
    a linear output."""
    from torch import nn

    from scmib.methods.torch_models import mlp

    novel = [type(layer) for layer in mlp([4, 8, 8, 3], batch_norm=False, output_activation=True)]
    assert novel == [nn.Linear, nn.GELU, nn.Linear, nn.GELU, nn.Linear, nn.GELU]
    default = [type(layer) for layer in mlp([4, 8, 3], dropout=0.1)]
    assert default == [nn.Linear, nn.BatchNorm1d, nn.GELU, nn.Dropout, nn.Linear]
    layers = mlp([4, 8, 8, 8, 3], dropout=[0.3, 0.0, 0.1])
    assert [layer.p for layer in layers if isinstance(layer, nn.Dropout)] == [0.3, 0.1]  # none at 0
    with pytest.raises(ValueError, match="2 dropout rates for 1 hidden layers"):
        mlp([4, 8, 3], dropout=[0.1, 0.2])


def test_the_validation_floor_scores_clipped_predictions():
    """With ``validation_floor`` the kept epoch's validation loss is that of predictions clipped at the
    floor (Novel sets negatives to 0 before scoring an epoch)."""
    import torch

    from scmib.methods.torch_models import TrainConfig, predict, rmse_loss, train_regressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = np.maximum(x @ rng.normal(size=(5, 3)), 0).astype(np.float32)  # many zeros, as expression has
    config = TrainConfig(epochs=5, patience=5, batch_size=32, loss="rmse", validation_floor=0.0)
    model, best = train_regressor(
        lambda: torch.nn.Linear(5, 3), x[:150], y[:150], x[150:], y[150:], config, torch.device("cpu"), 0
    )
    prediction = torch.as_tensor(predict(model, x[150:], torch.device("cpu")))
    clipped = float(rmse_loss(prediction.clamp_min(0), torch.as_tensor(y[150:])))
    unclipped = float(rmse_loss(prediction, torch.as_tensor(y[150:])))
    assert best["best_val_loss"] == pytest.approx(clipped, rel=1e-5)
    assert clipped < unclipped  # the linear model does predict negatives here


def test_early_stopping_keeps_the_best_epochs_weights():
    """``BestEpoch`` keeps the weights of the lowest loss (better by more than ``min_delta``) and
    stops ``patience`` epochs after it; restoring gives those weights back, in eval mode."""
    import torch

    from scmib.methods.torch_models import BestEpoch

    model = torch.nn.Linear(2, 1)
    best = BestEpoch(model, patience=2, min_delta=0.1)
    stops = []
    for epoch, loss in enumerate([3.0, 2.0, 1.95, 2.5]):  # 1.95 is not better than 2.0 by 0.1
        with torch.no_grad():
            model.bias.fill_(epoch)  # marks the weights with their epoch
        stops.append(best.stop_after(epoch, loss))
    assert stops == [False, False, False, True]
    assert (best.epoch, best.loss) == (1, 2.0)
    assert float(best.restore().bias) == 1.0 and not model.training


def test_winner_predictions_are_clipped_to_valid_ranges(tmp_path, snare_gex2atac):
    out = predict(
        "methods/guanlab_kernel_ridge",
        snare_gex2atac,
        tmp_path / "atac.h5ad",
        n_models=2,
        n_components_input=50,
    )
    values = read(out).layers["normalized"]
    assert values.min() >= 0.0 and values.max() <= 1.0


@pytest.mark.slow
def test_the_test_profile_shows_the_winners_beating_the_mean_per_feature(data_dir, tmp_path):
    """What a first-time user sees: the test profile's run on the CITE starter cells ranks each
    winner above the mean-per-feature control in both directions."""
    cmd = [
        sys.executable, "-m", "scmib.cli", "run", "--task", "predict_modality", "--profile", "test",
        "--datasets", "neurips2021_starter_cite",
        "--methods", "guanlab*,lslab*,novel*,cajal*,dance*,mean_per_feature",
        "--metrics", "error", "--outdir", str(tmp_path / "run"), "--data_mirror", str(data_dir),
        "--jobs", "2", "--no-progress",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(tmp_path / "run" / "results" / "results.tsv", sep="\t")
    rmse = table[table["metric"] == "rmse"].pivot_table(index="method", columns="variant", values="value")
    assert set(rmse.columns) == {"gex2adt", "adt2gex"}
    for method in [*WINNERS, "dance_gnn"]:
        assert (rmse.loc[method] < rmse.loc["mean_per_feature"]).all(), rmse.round(3).to_string()

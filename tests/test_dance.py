"""DANCE, the predict-modality overall winner: its graph network and its other two directions
through the component's command line on real cells, and the network's pieces against direct
computations written as DANCE's code computes them."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import load_common, make_task, predict, read, run_cli, score
from sklearn.decomposition import TruncatedSVD
from sklearn.linear_model import LinearRegression

from scmib.runner.plan import Selection, outside_profile, plan
from scmib.spec import find_repo_root

torch = pytest.importorskip("torch")
graph = pytest.importorskip("scmib.methods.graph_regression")


@pytest.fixture(scope="module")
def cite_gex2adt(tmp_path_factory, starter_cite_common):
    return make_task(tmp_path_factory.mktemp("dance_gex2adt"), starter_cite_common, "gex2adt")


def test_the_network_beats_the_mean_per_feature_on_the_starter_cells(tmp_path, cite_gex2adt):
    rmse = {}
    for name, component, params in [
        ("dance", "methods/dance_gnn", {"epochs": 300, "select_after": 100}),
        ("mean", "control_methods/mean_per_feature", {}),
    ]:
        out = predict(component, cite_gex2adt, tmp_path / f"{name}.h5ad", **params)
        rmse[name] = score(out, cite_gex2adt["test_mod2"], tmp_path / f"s_{name}.h5ad")["rmse"]
    # About 0.53 against 0.78 (on Triana's cells, 1,000 epochs: 0.409 against 0.674).
    assert rmse["dance"] < 0.8 * rmse["mean"]


def test_the_network_is_seeded_and_logs_its_training(tmp_path, cite_gex2adt):
    inputs = {f"input_{n}": cite_gex2adt[n] for n in ("train_mod1", "train_mod2", "test_mod1")}
    values, logs = [], []
    for i, seed in enumerate((0, 0, 1)):
        out = tmp_path / f"{i}.h5ad"
        proc = run_cli(
            "predict_modality/methods/dance_gnn",
            output=out,
            **inputs,
            epochs=20,
            select_after=10,
            n_models=2,
            seed=seed,
        )
        values.append(read(out).layers["normalized"])
        logs.append(proc.stderr)
    np.testing.assert_array_equal(values[0], values[1])
    assert np.abs(values[0] - values[2]).max() > 1e-3
    assert "genes are in a hallmark gene set" in logs[0]
    assert "dance model 2 epoch 20/20:" in logs[0] and "validation_rmse" in logs[0]
    assert "model 2/2 kept epoch" in logs[0]


def test_a_selection_start_at_or_after_the_last_epoch_is_refused(tmp_path, cite_gex2adt):
    out = tmp_path / "prediction.h5ad"
    proc = run_cli(
        "predict_modality/methods/dance_gnn",
        check=False,
        output=out,
        epochs=10,
        select_after=10,
        **{f"input_{n}": cite_gex2adt[n] for n in ("train_mod1", "train_mod2", "test_mod1")},
    )
    assert proc.returncode == 2 and "select_after (10) must be below epochs (10)" in proc.stderr
    assert not out.exists()


def _dance_baseline_linear(train_x, train_y, test_x, seed):
    """The organisers' DANCE ``baseline_linear`` (resources/baseline.py), seeded."""
    inputs, outputs = TruncatedSVD(50, random_state=seed), TruncatedSVD(50, random_state=seed)
    x = inputs.fit_transform(train_x)
    y = outputs.fit_transform(train_y)
    return LinearRegression().fit(x, y).predict(inputs.transform(test_x)) @ outputs.components_


@pytest.mark.parametrize("leave_out", [False, True])
def test_adt_to_gex_is_dances_linear_model(tmp_path, triana_adt2gex, leave_out):
    task = triana_adt2gex
    train_x, train_y = read(task["train_mod1"]), read(task["train_mod2"])
    # DANCE's s3d1 is a competition batch: absent here, it leaves out nothing.
    excluded = train_x.obs["batch"].astype(str).iloc[0] if leave_out else "s3d1"
    out = tmp_path / "prediction.h5ad"
    inputs = {f"input_{n}": task[n] for n in ("train_mod1", "train_mod2", "test_mod1")}
    proc = run_cli("predict_modality/methods/dance_gnn", output=out, exclude_batches=excluded, **inputs)
    keep = (train_x.obs["batch"] != excluded).to_numpy()
    assert (0 < keep.sum() < len(keep)) if leave_out else keep.all()
    assert f"leaves out {int((~keep).sum())} training cells" in proc.stderr
    expected = _dance_baseline_linear(
        train_x.layers["normalized"][keep],
        train_y.layers["normalized"][keep],
        read(task["test_mod1"]).layers["normalized"],
        seed=0,
    )
    np.testing.assert_allclose(read(out).layers["normalized"], expected, rtol=1e-4, atol=1e-4)


def test_leaving_out_every_training_batch_is_refused(tmp_path, starter_cite_common):
    task = make_task(tmp_path, starter_cite_common, "adt2gex")
    batches = ",".join(read(task["train_mod1"]).obs["batch"].astype(str).unique())
    out = tmp_path / "prediction.h5ad"
    proc = run_cli(
        "predict_modality/methods/dance_gnn",
        check=False,
        output=out,
        exclude_batches=batches,
        **{f"input_{n}": task[n] for n in ("train_mod1", "train_mod2", "test_mod1")},
    )
    assert proc.returncode == 2 and "exclude_batches" in proc.stderr and "every training cell" in proc.stderr
    assert not out.exists()


def test_atac_to_gex_is_the_training_mean(tmp_path, data_dir):
    common = load_common(tmp_path, "neurips2021_starter", data_dir, modality="multiome")
    task = make_task(tmp_path, common, "atac2gex")
    out = predict("methods/dance_gnn", task, tmp_path / "prediction.h5ad")
    train = read(task["train_mod2"]).layers["normalized"]
    expected = np.asarray(train.mean(axis=0)).ravel()
    np.testing.assert_allclose(
        read(out).layers["normalized"], np.tile(expected, (read(out).n_obs, 1)), rtol=1e-6
    )


@pytest.mark.parametrize("rate", [0.0, 0.4])
def test_mean_aggregation_and_its_gradient_equal_the_dense_products(rate):
    """A relation with repeated edges (a gene pair in two hallmark sets) against DGL's semantics:
    the mean over a target's incoming edges of weight x source state, zero without edges; with
    edge dropout, the dense matrix of the same mask (the backward rebuilds it from the mask)."""
    rng = np.random.default_rng(0)
    n_target, n_source, n_edges = 7, 5, 30
    target = rng.integers(0, n_target - 1, n_edges)  # the last target has no edge
    source = rng.integers(0, n_source, n_edges)
    weight = rng.random(n_edges)
    relation = graph.Relation.from_edges(target, source, weight, (n_target, n_source))
    assert relation.slot is not None  # 30 edges over 30 pairs at most: repeats
    torch.manual_seed(0)
    keep = (torch.rand(n_edges) >= rate).numpy() if rate else np.ones(n_edges, dtype=bool)
    assert rate == 0 or 0 < keep.sum() < n_edges
    dense = np.zeros((n_target, n_source))
    np.add.at(dense, (target, source), weight * keep / (1 - rate))
    dense /= np.maximum(np.bincount(target, minlength=n_target), 1)[:, None]
    h = torch.randn(n_source, 3, dtype=torch.float32, requires_grad=True)
    torch.manual_seed(0)  # the same mask
    out = relation.aggregate(h, edge_dropout=rate, training=True)
    expected = torch.as_tensor(dense, dtype=torch.float32) @ h
    torch.testing.assert_close(out, expected)
    assert torch.all(out[-1] == 0)
    upstream = torch.randn(n_target, 3)
    (gradient,) = torch.autograd.grad((out * upstream).sum(), h)
    torch.testing.assert_close(gradient, torch.as_tensor(dense.T, dtype=torch.float32) @ upstream)


def test_cell_gene_relations_are_the_expression_both_ways(starter_gex):
    """``entail`` (cells x genes) and ``occur`` (genes x cells) hold the expression over the
    target's number of edges, and share one pattern's index arrays."""
    x, _, batches = starter_gex
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
    g = graph.build_graph(x, graph.batch_statistics(x, batches), empty)
    dense = x.toarray()
    entail = g.entail.matrix(None, 0.0).to_dense().numpy()
    occur = g.occur.matrix(None, 0.0).to_dense().numpy()
    np.testing.assert_allclose(entail * (dense != 0).sum(axis=1, keepdims=True), dense, rtol=1e-5)
    np.testing.assert_allclose((occur * (dense != 0).sum(axis=0)[:, None]).T, dense, rtol=1e-5)
    assert g.occur.pattern.col is g.entail.pattern.col_t


def test_graphsage_layers_start_as_dgls():
    """Xavier uniform with ReLU's gain on both weights and a zero bias (DGL's reset_parameters)."""
    torch.manual_seed(0)
    layer = graph.SageConv(96, 48)
    bound = np.sqrt(2) * np.sqrt(6 / (96 + 48))
    for weight in (layer.self_linear.weight, layer.neighbour_linear.weight):
        assert 0.95 * bound < float(weight.detach().abs().max()) <= bound
    assert torch.all(layer.self_linear.bias == 0)


def test_without_hallmark_genes_genes_take_the_cell_messages_alone(starter_gex):
    """DGL's HeteroGraphConv skips a relation without edges: no pathway term, no pathway weights."""
    x, _, batches = starter_gex
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
    g = graph.build_graph(x, graph.batch_statistics(x, batches), empty)
    model = graph.DanceGNN(x.shape[1], 3, graph.DanceConfig())
    model(g).sum().backward()
    assert all(p.grad is None for p in model.pathway.parameters())
    # (the last layer's gene states reach no cell, as in DANCE: its occur weights get no gradient)
    assert all(p.grad is not None for p in model.occur[0].parameters())


def test_dropout_zeroes_at_its_rate_and_rescales_the_rest():
    torch.manual_seed(0)
    dropped = graph.dropout(torch.ones(200_000), 0.4, training=True)
    assert abs(float((dropped == 0).float().mean()) - 0.4) < 0.005
    torch.testing.assert_close(dropped[dropped != 0], torch.full_like(dropped[dropped != 0], 1 / 0.6))
    assert torch.equal(graph.dropout(torch.ones(5), 0.4, training=False), torch.ones(5))


@pytest.fixture(scope="module")
def starter_gex(starter_cite_common):
    gex = read(starter_cite_common[0])
    return gex.layers["normalized"].tocsr(), gex.var_names, gex.obs["batch"].astype(str).to_numpy()


def test_batch_statistics_are_dances(starter_gex):
    """As DANCE's ``graph_util.py`` loops over cells (its column order, divided by 1,000)."""
    x, _, batches = starter_gex
    rows = []
    for i in range(x.shape[0]):
        cell = x[i].toarray()
        nz = cell[np.nonzero(cell)]
        rows.append(
            [
                cell.mean(),
                cell.std(),
                *np.percentile(nz, [25, 50, 75]),
                cell.max(),
                len(nz) / 1000,
                nz.mean(),
                nz.std(),
            ]
        )
    per_batch = pd.DataFrame(rows).groupby(batches).transform("mean").to_numpy()
    np.testing.assert_allclose(graph.batch_statistics(x, batches), per_batch, rtol=1e-5)


def test_pathway_edges_are_dances_cosine_pairs(starter_gex):
    """As DANCE's loop: every ordered pair of distinct genes of each set, its cosine over cells."""
    x, genes, _ = starter_gex
    source, target, weight, n_matched = graph.pathway_edges(genes, x)
    dense = x.toarray().astype(np.float64)
    position = {gene: i for i, gene in enumerate(genes)}
    expected = defaultdict(list)
    matched = set()
    for members in graph.hallmark_gene_sets().values():
        index = [position[g] for g in members if g in position]
        matched.update(index if len(index) > 1 else [])
        for j in index:
            for k in index:
                if j != k:
                    cos = (
                        dense[:, j]
                        @ dense[:, k]
                        / np.sqrt((dense[:, j] @ dense[:, j]) * (dense[:, k] @ dense[:, k]))
                    )
                    expected[(j, k)].append(cos)
    assert len(source) == sum(map(len, expected.values())) > 100 and n_matched == len(matched)
    got = defaultdict(list)
    for j, k, w in zip(source, target, weight, strict=True):
        got[(j, k)].append(w)
    assert got.keys() == expected.keys()
    for pair, values in expected.items():
        np.testing.assert_allclose(sorted(got[pair]), sorted(values), rtol=1e-6)


def test_mouse_genes_match_hallmark_sets_by_upper_case_symbol():
    x = sp.csr_matrix(np.random.default_rng(0).random((20, 3)))
    source, target, _, n_matched = graph.pathway_edges(pd.Index(["Junb", "Cxcl2", "Gm12345"]), x)
    # JUNB and CXCL2 share two sets (TNF-alpha via NF-kB, UV response up): each ordered pair twice,
    # as in DANCE's multigraph.
    assert n_matched == 2 and sorted(zip(source, target, strict=True)) == [(0, 1), (0, 1), (1, 0), (1, 0)]


def test_the_default_profile_runs_dance_only_when_named():
    repo = find_repo_root()
    default = Selection(tasks=["predict_modality"], profile="default")
    assert not any(job.method == "dance_gnn" for job in plan(repo, repo / "out", default))
    assert "'--methods dance_gnn' runs it" in outside_profile(repo, default)[0]
    named = Selection(tasks=["predict_modality"], profile="default", methods=["dance_gnn"])
    assert any(job.method == "dance_gnn" for job in plan(repo, repo / "out", named))
    assert outside_profile(repo, named) == []
    test = Selection(tasks=["predict_modality"], profile="test")
    assert any(job.method == "dance_gnn" for job in plan(repo, repo / "out", test))

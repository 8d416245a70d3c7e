"""Cajal (the ATAC->GEX winner) against what its TensorFlow code computes."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp
import torch
from conftest import load_common, made_once, make_task, organisers_files, read, run_cli
from test_predict_modality_components import predict, score

from scmib.data.filters import FilterLog
from scmib.errors import ScmibError
from scmib.methods.cajal import (
    SETTINGS,
    CajalMlp,
    _top_per_type,
    atac_markers,
    cajal_inputs,
    gex_markers,
    input_features,
    log_cpm,
    protein_genes,
)
from scmib.methods.reduction import as_dense


@pytest.fixture(scope="module")
def starter_multiome_gex2atac(tmp_path_factory, data_dir):
    def make(folder):
        common = load_common(folder, "neurips2021_starter", data_dir, modality="multiome")
        return make_task(folder, common, "gex2atac")

    return made_once(tmp_path_factory, "starter_multiome_gex2atac", make)


def cajal_top(adata, method: str) -> set[str]:
    """Cajal's loop: ``rank_genes_groups`` by cell type, then each type's 100 best scores. Types
    of one cell are left out (scanpy stops Cajal's call on them; the others' scores are the same
    with or without them)."""
    sizes = adata.obs["cell_type"].value_counts()
    sc.tl.rank_genes_groups(
        adata, "cell_type", groups=list(sizes.index[sizes > 1]), method=method, use_raw=False
    )
    names = set()
    for cell_type in sizes.index[sizes > 1]:
        table = sc.get.rank_genes_groups_df(adata, group=cell_type)
        names |= set(table.sort_values("scores", ascending=False).iloc[:100]["names"])
    return names


@pytest.mark.parametrize("task", ["triana_gex2adt", "snare_gex2atac"])
def test_gex_markers_are_cajals_wilcoxon_markers(request, task):
    """``gex_de_analysis``: counts per million and log1p, ``filter_cells`` (Cajal's 200 of the
    competition's 13,953 CITE or 13,431 Multiome genes, here scaled to the genes measured: at least
    7 of Triana's 422, 25 of SNARE-seq2's 1,677), ``filter_genes(min_cells=3)``, fewer than 4,000
    detected genes, counts per 10,000 and log1p, ``highly_variable_genes`` (annotation only),
    ``scale(max_value=10)``, Wilcoxon test."""
    train = read(request.getfixturevalue(task)["train_mod1"])
    filters = FilterLog()
    competition = 13_953 if task == "triana_gex2adt" else 13_431
    found = gex_markers(train, train.obs["cell_type"], 100, filters, competition)
    expected = sc.AnnData(
        sp.csr_matrix(train.layers["counts"], dtype=np.float32), obs=train.obs[["cell_type"]].astype(str)
    )
    expected.var_names = train.var_names
    sc.pp.normalize_per_cell(expected, counts_per_cell_after=1e6)
    sc.pp.log1p(expected)
    sc.pp.filter_cells(expected, min_genes=200 * train.n_vars / competition)
    sc.pp.filter_genes(expected, min_cells=3)
    sc.pp.calculate_qc_metrics(expected, percent_top=None, log1p=False, inplace=True)
    expected = expected[expected.obs["n_genes_by_counts"] < 4000, :].copy()
    sc.pp.normalize_total(expected, target_sum=1e4)
    sc.pp.log1p(expected)
    sc.pp.highly_variable_genes(expected, min_mean=0.0125, max_mean=3, min_disp=0.5)
    sc.pp.scale(expected, max_value=10)
    assert set(found) == cajal_top(expected, "wilcoxon")
    removed = sum(step["removed"] for step in filters.steps if step["what"] == "cells for GEX markers")
    assert removed == train.n_obs - expected.n_obs
    if task == "triana_gex2adt":
        assert {"CD14", "MS4A1", "CD79A"} <= set(found)  # monocyte and B-cell markers of the panel
    else:
        assert removed == 5  # cells of SNARE-seq2 with fewer than 25 of its genes
    # A chunk of 40 genes at a time ranks the same markers (the competition's size needs chunks).
    chunked = gex_markers(train, train.obs["cell_type"], 100, FilterLog(), competition, train.n_obs * 40)
    assert chunked == found


def test_atac_markers_are_cajals_t_test_of_binarised_counts(starter_multiome_gex2atac):
    """``atac_de_analysis``: ``binarize`` the counts, t-test per cell type, 100 best each."""
    atac = read(starter_multiome_gex2atac["train_mod2"])
    found = atac_markers(atac, atac.obs["cell_type"], 100, FilterLog())
    binary = (sp.csr_matrix(atac.layers["counts"]) > 0).astype(np.float32)
    expected = sc.AnnData(binary, obs=atac.obs[["cell_type"]].astype(str))
    expected.var_names = atac.var_names
    assert set(found) == cajal_top(expected, "t-test")
    assert 100 < len(found) < atac.n_vars
    chunked = _top_per_type(
        binary,
        atac.var_names,
        atac.obs["cell_type"],
        "t-test",
        100,
        FilterLog(),
        chunk_values=atac.n_obs * 50,
    )
    assert chunked == found


def test_log_cpm_is_scanpys_counts_per_million_and_log1p(triana_gex2adt):
    """``normalize_per_cell(counts_per_cell_after=1e6)`` then ``log1p``; a stored zero is not a
    detected gene (scanpy's ``filter_cells`` counts values above 0)."""
    counts = sp.csr_matrix(read(triana_gex2adt["train_mod1"]).layers["counts"][:300], dtype=np.float32)
    counts.data[:5] = 0  # stored zeros
    expected = sc.AnnData(counts.copy())
    sc.pp.normalize_per_cell(expected, counts_per_cell_after=1e6)
    sc.pp.log1p(expected)
    values = log_cpm(counts)
    np.testing.assert_allclose(values.toarray(), as_dense(expected.X), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.diff(values.indptr), (counts > 0).sum(axis=1).A1)


def test_gex2adt_reads_the_genes_of_the_measured_proteins(triana_gex2adt):
    """Cajal added the genes of the panel's proteins to the GEX markers (its table for the
    competition's panel; scmib's covers both panels of its data)."""
    train, proteins = read(triana_gex2adt["train_mod1"]), read(triana_gex2adt["train_mod2"])
    filters = FilterLog()
    genes = protein_genes(proteins.var_names, filters)
    assert filters.steps[0]["removed"] == 0  # every protein of Triana's panel has its genes
    assert {"MS4A1", "CD3E", "PTPRC", "HLA-A", "VTCN1", "GYPA", "IL21R", "HAVCR2"} <= set(genes)
    assert protein_genes(pd.Index(["CD20", "HLA-A-B-C", "TCRVa7.2"]), FilterLog()) == [
        "HLA-A", "HLA-B", "HLA-C", "MS4A1", "TRAV1-2",
    ]  # fmt: skip
    features = input_features(train, proteins, ("GEX", "ADT"), 100, FilterLog())
    assert set(genes) & set(train.var_names) <= set(features)
    assert features == [name for name in train.var_names if name in set(features)]  # file order


def test_inputs_are_cajals_features_counts_and_zscore(triana_gex2adt):
    """Cajal's ``np.column_stack`` of the features and 50 copies each of the total counts and the
    batch's median and SD (``np.std``) of totals, z-scored with the training cells' statistics."""
    train, test = read(triana_gex2adt["train_mod1"]), read(triana_gex2adt["test_mod1"])
    features = list(train.var_names[:30])
    x_train, x_test = cajal_inputs(train, test, features, gex=True)

    def cajal_columns(adata):
        counts = as_dense(adata.layers["counts"], np.float64)
        values = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e6)[:, :30]
        total = counts.sum(axis=1)
        batches = adata.obs["batch"].astype(str).to_numpy()
        median, sd = np.zeros_like(total), np.zeros_like(total)
        for batch in set(batches):
            median[batches == batch] = np.median(total[batches == batch])
            sd[batches == batch] = np.std(total[batches == batch])
        for column in (total, median, sd):
            for _ in range(50):
                values = np.column_stack((values, column))
        return values

    raw_train, raw_test = cajal_columns(train), cajal_columns(test)
    means, sds = raw_train.mean(axis=0), raw_train.std(axis=0)
    assert x_train.shape == (train.n_obs, 180) and np.all(sds > 0)  # five training donors
    np.testing.assert_allclose(x_train, (raw_train - means) / sds, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(x_test, (raw_test - means) / sds, rtol=1e-4, atol=1e-4)
    # One training batch: its median and SD are constants, 0 for every cell (Cajal's code: 0 / 0).
    one = train[train.obs["batch"] == train.obs["batch"].iloc[0]]
    x_one, x_test = cajal_inputs(one, test, features, gex=True)
    assert not x_one[:, 80:].any() and not x_test[:, 80:].any() and np.isfinite(x_test).all()


def test_adt_and_atac_inputs_are_their_normalised_values(triana_adt2gex):
    """ADT (and ATAC) enter as the task's normalised values, not log counts per million."""
    train, test = read(triana_adt2gex["train_mod1"]), read(triana_adt2gex["test_mod1"])
    features = list(train.var_names)
    x_train, x_test = cajal_inputs(train, test, features, gex=False)
    values = as_dense(train.layers["normalized"], np.float64)
    expected = (values - values.mean(axis=0)) / values.std(axis=0)
    np.testing.assert_allclose(x_train[:, : train.n_vars], expected, rtol=1e-4, atol=1e-4)
    renamed = test[:, ::-1].copy()  # the test file's own order is read by name
    np.testing.assert_array_equal(cajal_inputs(train, renamed, features, gex=False)[1], x_test)
    with pytest.raises(ScmibError, match="missing from the test cells"):
        cajal_inputs(train, test[:, 1:], features, gex=False)


def test_the_network_is_cajals_keras_model():
    """``Dropout(hp.dropout)``, ``Dense(width, "relu")`` per layer, ``Dense(n_out)`` and
    ``tf.clip_by_value(x, min_val, max_val)``, Keras' Glorot-uniform initialisation; the clip
    passes no gradient outside the range, as TensorFlow's."""
    settings = SETTINGS[("ATAC", "GEX")]
    assert (settings.input_dropout, settings.widths, settings.epochs) == (0.8, (320, 360, 620, 440), 38)
    torch.manual_seed(0)
    model = CajalMlp(200, 30, settings, 0.0, 0.3).eval()
    layers = [*model.hidden, model.output]
    assert [layer.out_features for layer in layers] == [320, 360, 620, 440, 30]
    assert model.dropout.p == 0.8
    for layer in layers:
        bound = np.sqrt(6 / (layer.in_features + layer.out_features))
        assert 0.9 * bound < layer.weight.abs().max() <= bound and not layer.bias.any()
    x = np.random.default_rng(0).normal(0, 1, (40, 200))
    expected = x
    for layer in model.hidden:
        expected = np.maximum(expected @ layer.weight.detach().numpy().T.astype(np.float64), 0)
    expected = np.clip(expected @ model.output.weight.detach().numpy().T, 0.0, 0.3)
    out = model(torch.as_tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    out.sum().backward()
    inside = ((out > 0) & (out < 0.3)).float().sum(0)
    assert inside.sum() > 0 and (out == 0).any() and (out == 0.3).any()  # clipped at both ends
    np.testing.assert_array_equal(model.output.bias.grad.numpy(), inside.numpy())


@pytest.mark.parametrize("direction", ["gex2adt", "adt2gex"])
def test_cajal_trains_its_epochs_and_beats_the_mean_per_feature_on_the_starter_cells(
    tmp_path, starter_cite_common, direction
):
    """Through the command line on the starter CITE cells (one training batch): Cajal's network
    and epochs for the direction (35 GEX->ADT, 78 ADT->GEX) beat the mean per feature."""
    task = make_task(tmp_path, starter_cite_common, direction)
    out = tmp_path / "cajal.h5ad"
    proc = run_cli(
        "predict_modality/methods/cajal_marker_mlp",
        output=out,
        **{f"input_{n}": task[n] for n in ("train_mod1", "train_mod2", "test_mod1")},
    )
    epochs = re.findall(r"Cajal epoch (\d+)/(\d+)", proc.stderr)
    expected = 35 if direction == "gex2adt" else 78
    assert epochs[-1] == (str(expected), str(expected)) and len(epochs) == expected
    if direction == "gex2adt":
        assert re.search(r"filter: removed \d+ of [\d,]+ cells for GEX markers", proc.stderr)
    control = predict("control_methods/mean_per_feature", task, tmp_path / "mean.h5ad")
    rmse = {
        name: score(path, task["test_mod2"], tmp_path / f"s_{name}.h5ad")["rmse"]
        for name, path in (("cajal", out), ("mean", control))
    }
    assert rmse["cajal"] < 0.95 * rmse["mean"], rmse


def test_adt2gex_needs_no_cell_types(tmp_path, data_dir):
    """ADT->GEX reads every protein: the organisers' CITE files, which carry no cell types, run in
    that direction (GEX->ADT exits 'not applicable': tests/test_predict_modality_winners.py)."""
    files = organisers_files(data_dir, "cite")
    out = tmp_path / "prediction.h5ad"
    run_cli(
        "predict_modality/methods/cajal_marker_mlp",
        output=out,
        input_train_mod1=files["train_mod2"],
        input_train_mod2=files["train_mod1"],
        input_test_mod1=files["test_mod2"],
        epochs=2,
    )
    assert read(out).shape == (read(files["test_mod2"]).n_obs, read(files["train_mod1"]).n_vars)

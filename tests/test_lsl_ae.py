"""LSL_AE (the Multiome online joint-embedding winner) against what its TensorFlow code computes."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scanpy as sc
import torch
from conftest import read, run_cli

from scmib.contracts import check_file, load_contract
from scmib.data.filters import FilterLog
from scmib.methods.lsl_ae import LslAutoencoder, lsl_inputs, lsl_loss
from scmib.methods.reduction import as_dense


def organisers_files(data_dir, modality: str):
    """The two files as a component reads them (``layers["normalized"]`` from their ``X``)."""
    folder = data_dir / "neurips2021_starter" / modality / "joint_embedding"
    contract = lambda name: load_contract(f"joint_embedding/{name}")  # noqa: E731
    files = [check_file(read(folder / f"{n}.h5ad"), contract(n), n) for n in ("mod1", "mod2")]
    return folder, *files


@pytest.mark.parametrize("modality", ["cite", "multiome"])
def test_lsl_inputs_are_its_variable_genes_and_frequent_features(data_dir, modality):
    """LSL_AE's own lines on the organisers' files (their ``X`` is the normalised values):
    ``highly_variable_genes(ad_mod1, batch_key='batch', subset=True)`` and
    ``filter_genes(ad_mod2, min_cells=int(n * 0.03))``, then ``X.toarray()``."""
    _, mod1, mod2 = organisers_files(data_dir, modality)
    filters = FilterLog()
    gex, second = lsl_inputs(mod1, mod2, mod1.obs["batch"].astype(str), 0.03, filters)
    expected1, expected2 = mod1.copy(), mod2.copy()
    sc.pp.highly_variable_genes(expected1, batch_key="batch", subset=True)
    sc.pp.filter_genes(expected2, min_cells=int(mod2.n_obs * 0.03))
    np.testing.assert_array_equal(gex.toarray(), as_dense(expected1.X, np.float32))
    np.testing.assert_array_equal(second.toarray(), as_dense(expected2.X, np.float32))
    assert 0 < gex.shape[1] < mod1.n_vars and 0 < second.shape[1] <= mod2.n_vars
    removed = [(step["what"], step["before"], step["removed"]) for step in filters.steps]
    assert removed[0] == ("genes", mod1.n_vars, mod1.n_vars - gex.shape[1])
    assert removed[1][1:] == (mod2.n_vars, mod2.n_vars - second.shape[1])


def test_lsl_model_and_loss_are_its_keras_model_and_loss():
    """Dense(64, relu) per modality, concatenated into a linear Dense(64) bottleneck ('uniform'
    initialiser), Dense(128, relu), a Dense(relu) decoder per modality; the loss is the sum of the
    two MSEs and each encoder's ``sqrt(sum((W^T W - I)^2))`` (``WeightsOrthogonalityConstraint``)."""
    torch.manual_seed(0)
    model = LslAutoencoder((300, 40)).eval()
    assert model.bottleneck.weight.abs().max() <= 0.05 and not model.bottleneck.bias.any()
    for layer in [*model.encoders, model.inverse, *model.decoders]:  # Glorot-uniform, zero biases
        bound = np.sqrt(6 / (layer.in_features + layer.out_features))
        assert 0.9 * bound < layer.weight.abs().max() <= bound and not layer.bias.any()
    rng = np.random.default_rng(1)
    x1, x2 = rng.uniform(0, 3, (50, 300)), rng.normal(0, 1, (50, 40))
    kernel = lambda layer: layer.weight.detach().numpy().T.astype(np.float64)  # noqa: E731
    dense = lambda layer, v: v @ kernel(layer) + layer.bias.detach().numpy()  # noqa: E731
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    merged = np.hstack([relu(dense(enc, x)) for enc, x in zip(model.encoders, (x1, x2), strict=True)])
    bottleneck = dense(model.bottleneck, merged)
    inverse = relu(dense(model.inverse, bottleneck))
    decoded = [relu(dense(dec, inverse)) for dec in model.decoders]
    penalty = sum(np.sqrt(((kernel(enc).T @ kernel(enc) - np.eye(64)) ** 2).sum()) for enc in model.encoders)
    expected = ((decoded[0] - x1) ** 2).mean() + ((decoded[1] - x2) ** 2).mean() + penalty
    t1, t2 = (torch.as_tensor(x, dtype=torch.float32) for x in (x1, x2))
    with torch.no_grad():
        np.testing.assert_allclose(model.encode(t1, t2).numpy(), bottleneck, rtol=1e-4, atol=1e-5)
        assert float(lsl_loss(model, t1, t2)) == pytest.approx(expected, rel=1e-5)


def test_lsl_stops_patience_epochs_after_its_best_validation_loss(data_dir, tmp_path):
    """Through the command line: Keras' ``EarlyStopping(patience=20)`` stops ``patience`` epochs
    after the lowest validation loss (of the last fifth of the cells); the embedding is the
    64-unit bottleneck; the log says what the feature selections left out."""
    folder, mod1, _ = organisers_files(data_dir, "cite")
    out = tmp_path / "lsl.h5ad"
    proc = run_cli(
        "joint_embedding/methods/lsl_autoencoder",
        input_mod1=folder / "mod1.h5ad",
        input_mod2=folder / "mod2.h5ad",
        output=out,
        patience=4,
    )
    valid = [float(v) for v in re.findall(r"LSL_AE epoch \d+/600: .*val_loss (\S+)", proc.stderr)]
    assert 4 < len(valid) < 600 and int(np.argmin(valid)) == len(valid) - 1 - 4
    assert re.search(r"filter: removed [\d,]+ of 1,000 genes \(not variable", proc.stderr)
    assert read(out).X.shape == (mod1.n_obs, 64)

"""JAE (the joint-embedding winner) against what its TensorFlow code computes, on the organisers' files."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import read, run_cli
from scipy.special import log_softmax
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize

from scmib.methods.jae import LOSS_WEIGHTS, JaeModel, LatentLayout, jae_inputs, jae_loss


def organisers_task(data_dir, modality: str):
    folder = data_dir / "neurips2021_starter" / modality / "joint_embedding"
    return read(folder / "mod1.h5ad"), read(folder / "mod2.h5ad")


@pytest.mark.parametrize("modality", ["cite", "multiome"])
def test_jae_inputs_are_its_svd_of_log10_counts(data_dir, modality):
    """JAE's ``preprocess``: ``log1p(1e4 * normalize(counts, 'l1')) / log(10)``; GEX and ATAC by
    ``TruncatedSVD(100).fit`` then ``transform``, ADT as it is."""
    mod1, mod2 = organisers_task(data_dir, modality)
    atac = modality == "multiome"
    ours = jae_inputs((mod1.layers["counts"], mod2.layers["counts"]), (True, atac), 100, seed=3)
    expected = []
    for adata, reduced in ((mod1, True), (mod2, atac)):
        values = 1e4 * normalize(adata.layers["counts"].astype(np.float64), norm="l1", axis=1)
        values = values.log1p() / np.log(10)
        if reduced:
            svd = TruncatedSVD(n_components=100, random_state=3).fit(values)
            expected.append(svd.transform(values))
        else:
            expected.append(values.toarray())
    expected = np.hstack(expected)
    assert ours.shape == (mod1.n_obs, 100 + (100 if atac else mod2.n_vars)) == expected.shape
    np.testing.assert_allclose(ours, expected, atol=2e-4 * np.abs(expected).max())


def keras_forward(model: JaeModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """JAE's ``create_encoder`` (``use_resnet``) and ``create_decoder`` at inference, in numpy,
    from the model's weights: Dense(relu), Dropout, BatchNormalization, Dense, Add, relu per block;
    a Dense(relu) latent; Dense(relu) layers back to the input."""
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    dense = lambda layer, v: v @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()  # noqa: E731
    h = x
    for block in model.blocks:
        start = relu(dense(block.first, h))
        norm = block.inner[1]
        scaled = (start - norm.running_mean.numpy()) / np.sqrt(norm.running_var.numpy() + 1e-3)
        scaled = scaled * norm.weight.detach().numpy() + norm.bias.detach().numpy()
        h = relu(dense(block.inner[2], scaled) + start)
    latent = relu(dense(model.latent, h))
    out = latent
    for layer in model.decoder[::2]:
        out = relu(dense(layer, out))
    return latent, out


def test_jae_model_and_loss_are_its_keras_model_and_loss():
    """The architecture (widths 150/120/100, the latent of cell types + batches + 2 phases + 5 free
    units), Keras' initialisation, and the loss ``0.7 MSE + 0.2 CE(type) + 0.05 CE(uniform, batch)
    + 0.05 MSE(phase)`` of ``model.compile``, each term a mean over cells."""
    torch.manual_seed(0)
    layout = LatentLayout(n_types=7, n_batches=3, n_phases=2)
    model = JaeModel(234, layout)
    widths = [block.first.out_features for block in model.blocks]
    assert widths == [150, 120, 100] and model.latent.out_features == 7 + 3 + 2 + 5
    assert [layer.out_features for layer in model.decoder[::2]] == [100, 120, 150, 234]
    dense = [layer for block in model.blocks for layer in (block.first, block.inner[2])]
    for layer in [*dense, model.latent, *model.decoder[::2]]:  # Glorot-uniform weights, zero biases
        bound = np.sqrt(6 / (layer.in_features + layer.out_features))
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
        assert not layer.bias.any()
    for block in model.blocks:  # Keras' BatchNormalization: epsilon 1e-3, momentum 0.99
        assert block.inner[1].eps == 1e-3 and block.inner[1].momentum == pytest.approx(0.01)
        assert isinstance(block.inner[0], torch.nn.Dropout) and block.inner[0].p == 0.1
    rng = np.random.default_rng(0)
    for block in model.blocks:  # moving statistics other than the initial ones
        block.inner[1].running_mean.copy_(torch.as_tensor(rng.normal(size=block.inner[1].num_features)))
        block.inner[1].running_var.copy_(torch.as_tensor(rng.uniform(0.5, 2, block.inner[1].num_features)))
    x = rng.uniform(0, 2, size=(64, 234)).astype(np.float32)
    types, phases = rng.integers(0, 7, 64), rng.normal(0, 0.2, size=(64, 2)).astype(np.float32)
    model.eval()
    latent, reconstruction = keras_forward(model, x.astype(np.float64))
    with torch.no_grad():
        ours_latent, ours_reconstruction = model(torch.as_tensor(x))
        tensors = (torch.as_tensor(a) for a in (x, types, phases))
        ours_loss = float(jae_loss(model, *tensors))
    np.testing.assert_allclose(ours_latent.numpy(), latent, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours_reconstruction.numpy(), reconstruction, rtol=1e-4, atol=1e-5)
    type_units, batch_units, phase_units = latent[:, :7], latent[:, 7:10], latent[:, 10:12]
    terms = [
        ((reconstruction - x) ** 2).mean(),
        -log_softmax(type_units, axis=1)[np.arange(64), types].mean(),
        # tf.keras.metrics.categorical_crossentropy(ones / nb_batches, logits, from_logits=True)
        -(np.full(3, 1 / 3) * log_softmax(batch_units, axis=1)).sum(axis=1).mean(),
        ((phase_units - phases) ** 2).mean(),
    ]
    assert ours_loss == pytest.approx(float(np.dot(LOSS_WEIGHTS, terms)), rel=1e-5)
    assert LOSS_WEIGHTS == (0.7, 0.2, 0.05, 0.05)


@pytest.mark.parametrize(("modality", "fine_tune_epochs"), [("cite", 1), ("multiome", 2)])
def test_jae_stops_pre_training_after_patience_then_fine_tunes(
    data_dir, tmp_path, modality, fine_tune_epochs
):
    """Through the command line on the organisers' files: pre-training stops ``patience`` epochs
    after its lowest validation loss (JAE's ``EarlyStoppingAtMinLoss``), then fine-tunes for 1
    epoch (CITE) or 2 (Multiome); the embedding is the whole latent space, ReLU and so >= 0."""
    folder = data_dir / "neurips2021_starter" / modality / "joint_embedding"
    out = tmp_path / "jae.h5ad"
    proc = run_cli(
        "joint_embedding/methods/jae_autoencoder",
        input_mod1=folder / "mod1.h5ad",
        input_mod2=folder / "mod2.h5ad",
        output=out,
        patience=3,
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("JAE ")]
    pre = [float(re.search(r"val_loss (\S+)", line)[1]) for line in lines if "pre-training" in line]
    assert 3 < len(pre) < 500
    assert int(np.argmin(pre)) == len(pre) - 1 - 3
    assert sum("fine-tuning" in line for line in lines) == fine_tune_epochs
    embedding = read(out).X
    n_batches = read(folder / "mod1.h5ad").obs["batch"].nunique()
    # Beside the batch units and the 5 free ones: the pseudo cell types' units (and two cell-cycle
    # units where enough Tirosh genes are measured), at least two.
    assert embedding.min() >= 0 and embedding.shape[1] - n_batches - 5 >= 2

"""CLUE (``clue_cross_vae``) against its own code: preprocessing, network, schedule, units and the
shared-nearest-neighbour matching (scglue 0.1.1's ``scclue.py`` and CLUE's ``utils.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import stats
from sklearn.utils.extmath import svd_flip

from scmib.methods import clue
from scmib.methods.matching import shared_nearest_neighbours


def test_shared_nearest_neighbours_is_the_jaccard_index_of_neighbour_sets_counted_cell_by_cell():
    """CLUE's ``snn_matching``: for x_i and y_j, how many y cells are among x_i's k nearest y and
    y_j's k nearest y (itself included), plus how many x cells are among y_j's k nearest x and
    x_i's k nearest x; that over 2 k_x + 2 k_y minus itself; rows scaled to sum 1."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(25, 5))
    for k in (1, 3):
        xn, yn = (a / np.linalg.norm(a, axis=1, keepdims=True) for a in (x, y))

        def nearest(query, reference, k=k):
            distances = ((query[:, None, :] - reference[None, :, :]) ** 2).sum(axis=2)
            return [set(np.argsort(row, kind="stable")[:k]) for row in distances]

        x_y, y_y, y_x, x_x = nearest(xn, yn), nearest(yn, yn), nearest(yn, xn), nearest(xn, xn)
        expected = np.zeros((30, 25))
        for i in range(30):
            for j in range(25):
                shared = len(x_y[i] & y_y[j]) + len(y_x[j] & x_x[i])
                expected[i, j] = shared / (4 * k - shared) if shared else 0.0
        expected /= expected.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(shared_nearest_neighbours(x, y, k).toarray(), expected, atol=1e-12)


def test_scaled_pca_projects_on_the_leading_eigenvectors_of_the_scaled_training_values():
    rng = np.random.default_rng(1)
    train = sp.csr_matrix(rng.poisson(1.0, size=(200, 12)) * rng.gamma(1.0, 1.0, size=12))
    test = rng.poisson(1.0, size=(50, 12)).astype(float)
    train = train.tolil()
    train[:, 3] = 0.0  # no spread in training: centred only, not divided by 0
    train = train.tocsr()
    first, second = clue.scaled_pca(train, test, 4)
    dense = train.toarray()
    mean, sd = dense.mean(axis=0), dense.std(axis=0)
    sd[sd == 0] = 1
    scaled = np.clip((dense - mean) / sd, -10, 10)
    values, vectors = np.linalg.eigh(scaled.T @ scaled)
    top = vectors[:, np.argsort(values)[::-1][:4]]
    signs = np.sign(np.sum(first * (scaled @ top), axis=0))
    np.testing.assert_allclose(first, scaled @ top * signs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        second, np.clip((test - mean) / sd, -10, 10) @ top * signs, rtol=1e-4, atol=1e-4
    )
    assert np.isfinite(second).all()


def test_lsi_is_clues_tfidf_and_svd_of_the_training_cells():
    """``ATACPreprocessing``: tf = counts / cell total, times idf = cells / peak total, each cell
    scaled to 1e4, log1p, ``X V / s`` of the training SVD, each cell z-scored (ddof 1)."""
    rng = np.random.default_rng(2)
    train = sp.csr_matrix(
        rng.binomial(1, 0.2, size=(120, 40)) * rng.integers(1, 4, size=(120, 40)), dtype=float
    )
    test = sp.csr_matrix(rng.binomial(1, 0.2, size=(30, 40)), dtype=float)
    train, test = train.tolil(), test.tolil()
    train[:, 7] = 0.0  # a peak without training counts: idf 0, not infinite
    test[0, 7] = 1.0
    train, test = train.tocsr(), test.tocsr()
    first, second = clue.clue_lsi(train, test, 5)
    idf = np.divide(120, train.toarray().sum(axis=0), out=np.zeros(40), where=train.toarray().sum(axis=0) > 0)

    def tfidf(counts):
        x = counts / counts.sum(axis=1, keepdims=True) * idf
        return np.log1p(x * 1e4 / x.sum(axis=1, keepdims=True))

    u, s, vh = np.linalg.svd(tfidf(train.toarray()), full_matrices=False)
    u, vh = svd_flip(u, vh)  # randomized_svd's sign convention for a matrix taller than wide
    for mine, values in ((first, train.toarray()), (second, test.toarray())):
        lsi = tfidf(values) @ vh[:5].T / s[:5]
        lsi = (lsi - lsi.mean(axis=1, keepdims=True)) / lsi.std(axis=1, ddof=1, keepdims=True)
        # randomized_svd approximates the SVD of this random matrix's flat spectrum to about 1%
        np.testing.assert_allclose(mine, lsi, rtol=0.02, atol=0.02)
    assert np.isfinite(second).all()


def test_top_peaks_are_those_with_the_largest_sums():
    values = sp.csr_matrix(np.array([[1, 0, 1, 1], [1, 0, 0, 1], [0, 1, 0, 1]], dtype=float))
    np.testing.assert_array_equal(clue.top_peaks(values, 2), [True, False, False, True])


def test_variable_genes_add_the_proteins_genes_with_adt():
    rng = np.random.default_rng(3)
    counts = sp.csr_matrix(rng.negative_binomial(2, 0.3, size=(300, 60)).astype(np.float32))
    genes = np.array([f"G{i}" for i in range(58)] + ["CD4", "PTPRC"])
    settings = clue.CITE.__class__(**{**clue.CITE.__dict__, "n_genes": 10})
    batches = np.repeat(["a", "b"], 150)
    plain = clue.variable_genes(counts, batches, genes, settings, with_adt=False)
    with_adt = clue.variable_genes(counts, batches, genes, settings, with_adt=True)
    assert plain.sum() == 10
    assert with_adt[-2:].all() and (with_adt & ~plain).sum() == 2 - plain[-2:].sum()
    assert clue.variable_genes(counts[:, :8], batches, genes[:8], settings, with_adt=False).all()


def test_the_decoder_is_negative_binomial_with_the_decoded_mean_and_per_batch_dispersion():
    torch.manual_seed(0)
    decoder = clue.NBDecoder(4, 6, n_batches=2, settings=clue.CITE).eval()
    with torch.no_grad():
        decoder.log_theta.copy_(torch.tensor([[0.5, -1.0]] * 6))
        decoder.scale_lin.normal_()
        decoder.bias.normal_()
    u, batch, library = torch.randn(3, 4), torch.tensor([0, 1, 1]), torch.tensor([100.0, 50.0, 10.0])
    dist = decoder(u, batch, library)
    np.testing.assert_allclose(dist.mean.sum(dim=1).detach().numpy(), library.numpy(), rtol=1e-4)
    theta = np.exp(decoder.log_theta.detach().numpy().T[batch.numpy()])
    mu = dist.mean.detach().numpy()
    x = torch.tensor(np.arange(18).reshape(3, 6) % 5, dtype=torch.float32)
    expected = stats.nbinom.logpmf(x.numpy(), theta, theta / (theta + mu))
    np.testing.assert_allclose(dist.log_prob(x).detach().numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("settings", [clue.CITE, clue.MULTIOME])
def test_the_network_has_clues_widths(settings):
    model = clue.Clue((100, 100), (5000, 134), n_batches=3, settings=settings)
    d = settings.latent_dim
    for encoder in model.x2u:
        assert len(encoder.encoders) == 2  # one per subspace
        linears = [m for m in encoder.encoders[0].hidden if isinstance(m, torch.nn.Linear)]
        assert [(m.in_features, m.out_features) for m in linears] == [(100, 512), (512, 512)]
        assert encoder.encoders[0].loc.out_features == d
    assert model.x2u[0].est_l.in_features == 5000 and model.x2u[0].est_l.out_features == 2
    first = model.u2x[0].layers[0][0]
    assert (first.in_features, first.out_features) == (d + 3, settings.u2x_h_dim)
    assert model.u2x[1].loc.out_features == 134
    du = [m for m in model.du.net if isinstance(m, torch.nn.Linear)]
    assert du[0].in_features == 2 * d + 3 and du[-1].out_features == 2
    assert len(du) == settings.du_h_depth + 1


@pytest.mark.parametrize("n_units", [300, 6363, 70000])
def test_the_schedule_is_scglues_auto_rule(n_units):
    per_epoch = n_units * 0.9 / 128
    schedule = clue.auto_schedule(n_units, clue.CITE)
    assert schedule.max_epochs == max(math.ceil(72 / 2e-3 / per_epoch), 72)
    assert schedule.align_burnin == max(math.ceil(12 / 2e-3 / per_epoch), 12)
    assert schedule.patience == max(math.ceil(9 / 2e-3 / per_epoch), 9)
    assert schedule.reduce_lr_patience == max(math.ceil(3 / 2e-3 / per_epoch), 3)
    assert clue.auto_schedule(n_units, clue.CITE, max_epochs=5).max_epochs == 5


def test_units_without_a_modality_get_a_random_present_cell_masked_out():
    data = tuple(
        clue.ModalityData(
            sp.csr_matrix(np.arange(10, dtype=np.float32)[:, None] + k),
            np.zeros((10, 2), np.float32),
            np.zeros(10, np.int64),
        )
        for k in range(2)
    )
    rows = np.array([[0, 0], [1, 1], [2, -1], [3, -1], [-1, 8], [-1, 9]])
    units = clue.Units(data, rows)
    (batch,) = list(
        units.minibatches(6, np.random.default_rng(0), drop_last=True, device=torch.device("cpu"))
    )
    paired = batch.paired.numpy()
    first, second = batch.counts[0].numpy().ravel(), batch.counts[1].numpy().ravel() - 1
    assert sorted(first[paired[:, 0]]) == [0, 1, 2, 3] and sorted(second[paired[:, 1]]) == [0, 1, 8, 9]
    assert set(first[~paired[:, 0]]) <= {0, 1, 2, 3} and set(second[~paired[:, 1]]) <= {0, 1, 8, 9}
    both = paired.all(axis=1)
    np.testing.assert_array_equal(first[both], second[both])  # paired rows stay paired


def test_the_generator_loss_works_against_the_discriminator():
    """``gen_loss`` holds ``- lam_align * dsc_loss``: its gradient on the discriminator's output
    layer is the negative of the discriminator step's (which is scaled by ``lam_align``)."""
    torch.manual_seed(0)
    settings = clue.CITE.__class__(
        **{
            **clue.CITE.__dict__,
            "lam_kl": 0.0,
            "lam_cross": 0.0,
            "lam_cos": 0.0,
            "lam_data": 0.0,
            "dropout": 0.0,
        }
    )
    model = clue.Clue((3, 3), (4, 2), n_batches=1, settings=settings).eval()
    rng = np.random.default_rng(0)
    data = tuple(
        clue.ModalityData(
            sp.csr_matrix(rng.poisson(2.0, size=(8, n)).astype(np.float32)),
            rng.normal(size=(8, 3)).astype(np.float32),
            np.zeros(8, np.int64),
        )
        for n in (4, 2)
    )
    units = clue.Units(data, np.column_stack([np.arange(8), np.arange(8)]))
    (batch,) = list(
        units.minibatches(8, np.random.default_rng(0), drop_last=False, device=torch.device("cpu"))
    )
    grads = []
    for dsc_only in (True, False):
        model.zero_grad()
        key = "dsc_loss" if dsc_only else "gen_loss"
        model.losses(batch, epoch=100, align_burnin=1, dsc_only=dsc_only)[key].backward()
        grads.append(model.du.net[-1].bias.grad.clone())
    np.testing.assert_allclose(grads[1].numpy(), -grads[0].numpy(), rtol=1e-5, atol=1e-7)

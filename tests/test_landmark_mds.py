"""``scmib.methods.landmark_mds`` against scipy's correlations and distances and R's ``lmds``."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import cdist
from scipy.stats import spearmanr

from scmib.methods.landmark_mds import (
    _recycled_means_product,
    cmdscale_landmarks,
    distances_to_landmarks,
    landmark_mds,
    sample_landmarks,
    select_landmarks,
)

#: lmds' ``cmdscale_landmarks`` (dynverse/lmds@89b9ca2, 0.1.1, the computation of 0.1.0; dynutils@f26939e's
#: ``scale_uniform``) in R 4.2.2, on base R's Spearman distances of ``small_matrix()``, landmarks
#: ``LANDMARKS`` (1-based there), ``ndim = 5``: with 8 landmarks lmds takes R's exact ``eigen``.
LANDMARKS = np.array([3, 17, 1, 9, 12, 6, 20, 14]) - 1
R_FIRST_LANDMARK_DISTANCES = [
    0.3360335, 0.4515849, 0.0, 0.3645384, 0.5, 0.5040665, 0.4379177, 0.3297127, 0.4214191, 0.3664918,
    0.262247, 0.3877077, 0.384481, 0.4318453, 0.4002435, 0.5086728, 0.4178141, 0.3929783, 0.317407, 0.2952682,
]  # fmt: skip
R_EMBEDDING = [
    [-0.190724871957, -0.069373422806, 0.373084232989, 0.044289189509, -0.185090301820],
    [-0.075194924859, 0.024140830486, -0.236504867115, -0.159696042070, 0.169391176366],
    [0.302063512286, -0.146577823212, 0.368594279410, -0.257515948435, 0.091112685352],
    [0.211241575015, -0.079607890035, -0.131473627556, -0.085084462574, -0.330964874977],
    [0.056795107119, 0.014456240241, -0.065603245065, 0.009251974428, -0.065111980998],
    [-0.419476064445, -0.126967352949, -0.123935230832, 0.271343378187, -0.147694187316],
    [0.106401126692, -0.117521365596, -0.214261842188, -0.045232284060, -0.105897401600],
    [0.166511242001, -0.166488018419, -0.055936487182, 0.032211639258, -0.061027753701],
    [-0.097161147084, -0.063691498770, -0.344254942446, -0.174808510699, 0.500000000000],
    [-0.045885792141, -0.082396175384, -0.005867752221, 0.104141262253, 0.028801776249],
    [0.138768856185, -0.002691564093, 0.069260261830, -0.103589668324, -0.176392988820],
    [-0.070835666981, 0.441771021166, -0.007563354617, -0.367430185532, -0.074270312257],
    [0.119373067617, 0.024279730458, -0.169367814588, 0.029515083835, -0.127156077399],
    [0.419476064445, 0.355657283063, -0.155754034032, 0.383070224527, -0.079095768683],
    [0.088582469323, -0.008495018723, -0.123504544731, 0.053949197258, -0.436282135046],
    [0.145187541837, -0.216093352224, -0.361389599895, 0.120771031061, -0.075862096564],
    [0.097416331320, -0.091869631652, -0.373084232989, -0.383070224527, -0.500000000000],
    [0.005949503527, 0.183837237708, -0.081337266294, -0.012506333523, -0.095376026580],
    [-0.162647507291, 0.016754627594, 0.029585889852, -0.038767533860, 0.209982401319],
    [0.355251085766, -0.441771021166, -0.133021183304, -0.018017379168, -0.083294939725],
]


def small_matrix() -> np.ndarray:
    """20 cells x 30 features of small counts: ties everywhere, negative values, an empty cell."""
    values = np.random.default_rng(7).poisson(0.8, size=(20, 30)).astype(float)
    values[:, :3] -= 1.5
    values[4] = 0.0
    return values


def same_up_to_signs(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """``ours`` with each column's sign set to match ``theirs`` (eigenvectors have no sign)."""
    return ours * np.sign(np.sum(ours * theirs, axis=0))


def test_the_embedding_equals_r_lmds():
    values = small_matrix()
    distances = select_landmarks(sp.csr_matrix(values), LANDMARKS, "spearman")
    np.testing.assert_array_equal(distances[0], R_FIRST_LANDMARK_DISTANCES)
    ours = cmdscale_landmarks(distances, LANDMARKS, n_dims=5)
    np.testing.assert_allclose(same_up_to_signs(ours, np.array(R_EMBEDDING)), R_EMBEDDING, atol=1e-10)


@pytest.mark.parametrize("n_landmarks,n_cells", [(8, 20), (7, 20), (5, 5), (500, 10309), (3, 4)])
def test_recycled_means_are_rs_column_major_recycling(n_landmarks, n_cells):
    rng = np.random.default_rng(n_cells)
    row_mean, points_inverse = rng.random(n_landmarks), rng.normal(size=(n_landmarks, 3))
    # R's `matrix - rep(mu_n, each = N)`: the vector fills the n x N matrix column by column.
    recycled = np.repeat(row_mean, n_cells).reshape((n_landmarks, n_cells), order="F")
    np.testing.assert_allclose(
        _recycled_means_product(row_mean, points_inverse, n_cells), recycled.T @ points_inverse, atol=1e-12
    )


def real_cells(data_dir, n_cells: int = 80) -> np.ndarray:
    """The first cells of the organisers' CITE starter files: GEX and ADT values side by side."""
    folder = data_dir / "neurips2021_starter" / "cite" / "joint_embedding"
    mods = [ad.read_h5ad(folder / f"{name}.h5ad") for name in ("mod1", "mod2")]
    return np.hstack([m.X[:n_cells].toarray() if sp.issparse(m.X) else m.X[:n_cells] for m in mods])


@pytest.mark.parametrize("sparse", [True, False])
def test_distances_equal_scipys_on_real_cells(data_dir, sparse):
    dense = real_cells(data_dir)
    dense[5] = 0.0  # an empty cell: a correlation of 0, as dynutils counts NaN
    dense[6] = 0.1  # a constant cell, whose variance E[x^2] - E[x]^2 is rounding
    values = sp.csr_matrix(dense) if sparse else dense
    landmarks = np.array([0, 7, 5, 42, 6])
    rho = np.nan_to_num(spearmanr(dense, axis=1).statistic)
    np.testing.assert_allclose(
        distances_to_landmarks(values, landmarks), (1 - rho[landmarks]) / 2, atol=1e-12
    )
    with np.errstate(invalid="ignore"):
        pearson = np.nan_to_num(np.corrcoef(dense))
    np.testing.assert_allclose(
        distances_to_landmarks(values, landmarks, "pearson"), (1 - pearson[landmarks]) / 2, atol=1e-12
    )
    np.testing.assert_allclose(
        distances_to_landmarks(values, landmarks, "euclidean"), cdist(dense[landmarks], dense), atol=1e-6
    )
    with pytest.raises(ValueError, match="expected one of spearman, pearson, euclidean"):
        distances_to_landmarks(values, landmarks, "manhattan")


def test_stored_zeros_and_repeated_entries_are_what_scipy_reads():
    """A stored zero is a zero and repeated entries are their sum, however the matrix is stored."""
    dense = small_matrix()
    stored = sp.coo_matrix(dense)
    # Every value split in two entries, and a zero stored explicitly in each cell.
    rows = np.concatenate([stored.row, stored.row, np.arange(20)])
    columns = np.concatenate([stored.col, stored.col, np.full(20, 29)])
    halves = np.concatenate([stored.data / 2, stored.data / 2, np.zeros(20)])
    dense[:, 29] = 0.0
    messy = sp.csr_matrix((halves, (rows, columns)), shape=dense.shape)
    messy.data[messy.indices == 29] = 0.0
    rho = np.nan_to_num(spearmanr(dense, axis=1).statistic)
    np.testing.assert_allclose(distances_to_landmarks(messy, LANDMARKS), (1 - rho[LANDMARKS]) / 2, atol=1e-12)


def test_landmark_mds_is_seeded_and_keeps_the_positive_dimensions(data_dir, caplog):
    values = sp.csr_matrix(real_cells(data_dir, n_cells=300))
    first, again, other = (landmark_mds(values, 10, n_landmarks=50, seed=s) for s in (1, 1, 2))
    assert first.shape == (300, 10)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(np.abs(first), np.abs(other))
    # As lmds rescales: centred on each dimension's mid-range, the widest dimension spans 1.
    spans = first.max(axis=0) - first.min(axis=0)
    assert spans.max() == pytest.approx(1.0) and np.allclose(first.max(axis=0), spans / 2)
    # Three landmarks have at most two positive eigenvalues: the rest, and the 0 that double
    # centring leaves (rounding may make it 1e-17), are dropped with a warning, on every seed.
    for seed in range(8):
        few = landmark_mds(values, 10, n_landmarks=3, seed=seed)
        assert few.shape[1] <= 2, seed
        assert (few.max(axis=0) - few.min(axis=0)).min() > 1e-3, seed  # no dimension of rounding
    assert "eigenvalues are > 0" in caplog.text
    # More landmarks than cells: every cell is one.
    assert sorted(sample_landmarks(40, 500, seed=0)) == list(range(40))
    assert landmark_mds(values[:40], 5, n_landmarks=500).shape == (40, 5)


def test_landmark_mds_says_what_it_cannot_do():
    with pytest.raises(ValueError, match="n_landmarks is 2; lmds needs at least 3"):
        landmark_mds(small_matrix(), 5, n_landmarks=2)
    with pytest.raises(ValueError, match="n_dims is 0"):
        landmark_mds(small_matrix(), 0)
    # Identical cells are all at distance 0 from each other: nothing to embed.
    with pytest.raises(ValueError, match="no positive eigenvalue among the 5 largest of 8 landmarks"):
        landmark_mds(np.tile(small_matrix()[:1], (20, 1)), 5, n_landmarks=8)

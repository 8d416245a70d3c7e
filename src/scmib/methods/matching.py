"""Turning cell-cell similarities into a match-modalities prediction.

Every function works on one group of cells at a time (a batch: CLUE, the winner, matched only
within the same batch; Novel matched all test cells at once) and returns sparse weights; a matching
method builds its prediction with :func:`match_within_groups` and :func:`matching_file`.
"""

from __future__ import annotations

from collections.abc import Callable

import anndata as ad
import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

#: The competition's budget: at most this many non-zeros per test cell, in total.
MAX_NONZEROS_PER_CELL = 1000


def normalize_rows(weights: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to sum to 1 (rows that sum to 0 stay 0)."""
    weights = sp.csr_matrix(weights, dtype=np.float64)
    totals = np.asarray(weights.sum(axis=1)).ravel()
    totals[totals == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / totals) @ weights)


def top_k_rows(scores: np.ndarray, k: int, chunk: int = 2048) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of every row of a dense score matrix (sparse, unnormalised).

    Every row keeps exactly ``min(k, n_cols)`` entries, zeros included. Rows are
    done in chunks so the partition's index array never spans the whole matrix.
    """
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    cols = np.empty((n_rows, k), dtype=np.int64)
    for start in range(0, n_rows, chunk):
        part = scores[start : start + chunk]
        cols[start : start + chunk] = np.argpartition(-part, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, cols, axis=1)
    indptr = np.arange(0, n_rows * k + 1, k)
    return sp.csr_matrix((values.ravel(), cols.ravel(), indptr), shape=scores.shape)


def _row_values(kept: sp.csr_matrix) -> np.ndarray:
    """The stored values of a matrix from :func:`top_k_rows` as an (n_rows, k) array."""
    return kept.data.reshape(kept.shape[0], -1)


def softmax_top_k(similarity: np.ndarray, k: int, temperature: float) -> sp.csr_matrix:
    """Row-wise softmax of ``similarity / temperature`` over each row's ``k`` most similar columns."""
    kept = top_k_rows(similarity, k)
    values = _row_values(kept)
    kept.data = np.exp((values - values.max(axis=1, keepdims=True)) / temperature).ravel()
    return normalize_rows(kept)


def knn_weights(query: np.ndarray, reference: np.ndarray, k: int) -> sp.csr_matrix:
    """Gaussian-kernel weights on each query's ``k`` nearest references (Euclidean).

    The bandwidth of each row is its median neighbour distance, so weights adapt
    to local density. Rows sum to 1.
    """
    kept = top_k_rows(-squared_distances(query, reference), k)
    d2 = -_row_values(kept)
    bandwidth = np.maximum(np.median(d2, axis=1, keepdims=True), 1e-12)
    kept.data = np.exp(-d2 / (2 * bandwidth)).ravel()
    return normalize_rows(kept)


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense squared Euclidean distances between rows of ``a`` and ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(out, 0.0)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense cosine similarities between rows of ``a`` and ``b``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def bipartite_assignment(similarity: np.ndarray) -> sp.csr_matrix:
    """A hard one-to-one matching maximising total similarity (min-weight bipartite matching).

    Rectangular inputs match ``min(rows, columns)`` pairs; unmatched rows stay 0.
    """
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=similarity.shape)


#: The entropy weight of :func:`sinkhorn_plan` on its cost scale (``1 - similarity``, from 0).
SINKHORN_REG = 0.01


def sinkhorn_plan(similarity: np.ndarray, k: int, reg: float = SINKHORN_REG) -> sp.csr_matrix:
    """Entropic optimal transport (POT's Sinkhorn) with uniform marginals, each row's ``k``
    largest plan entries kept and rows normalised: a soft one-to-one assignment.

    The cost is ``1 - similarity`` shifted to start at 0 (for cosine similarities it then spans at
    most 0 to 2) and ``reg`` the entropy weight on that scale; small values approach the hard
    bipartite matching.
    """
    import ot

    n_rows, n_cols = similarity.shape
    cost = 1.0 - similarity
    cost -= cost.min()  # only differences matter; keeps exp(-cost / reg) from underflowing at the best pairs
    plan = ot.sinkhorn(
        np.full(n_rows, 1.0 / n_rows), np.full(n_cols, 1.0 / n_cols), cost, reg, numItermax=5000, stopThr=1e-7
    )
    return normalize_rows(top_k_rows(np.asarray(plan), k))


def shared_nearest_neighbours(x: np.ndarray, y: np.ndarray, k: int = 1) -> sp.csr_matrix:
    """CLUE's matching (``snn_matching``): rows of ``x`` against rows of ``y``, both L2-normalised;
    the weight of a pair is the Jaccard index of its shared neighbours (each cell's ``k`` nearest
    in the other set and in its own, scikit-learn's ``NearestNeighbors``), rows scaled to sum 1."""
    from sklearn.neighbors import NearestNeighbors

    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    ky, kx = min(k, len(y)), min(k, len(x))
    near_y, near_x = NearestNeighbors(n_neighbors=ky).fit(y), NearestNeighbors(n_neighbors=kx).fit(x)
    x_to_y, y_to_y = near_y.kneighbors_graph(x), near_y.kneighbors_graph(y)
    y_to_x, x_to_x = near_x.kneighbors_graph(y), near_x.kneighbors_graph(x)
    shared = sp.csr_matrix(x_to_y @ y_to_y.T + (y_to_x @ x_to_x.T).T)
    shared.data = shared.data / (2 * kx + 2 * ky - shared.data)
    return normalize_rows(shared)


def batch_groups(mod1: ad.AnnData, mod2: ad.AnnData) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(mod1 rows, mod2 rows)`` per batch found in both files; one group of all cells when
    mod2 has no ``obs.batch`` (the organisers' Multiome starter) or the batches do not overlap.

    Cells of a batch found in only one file join no group and get no weights.
    """
    if "batch" not in mod1.obs or "batch" not in mod2.obs:
        return [(np.arange(mod1.n_obs), np.arange(mod2.n_obs))]
    first, second = mod1.obs["batch"].astype(str).to_numpy(), mod2.obs["batch"].astype(str).to_numpy()
    shared = sorted(set(first) & set(second))
    if not shared:
        return [(np.arange(mod1.n_obs), np.arange(mod2.n_obs))]
    return [(np.flatnonzero(first == b), np.flatnonzero(second == b)) for b in shared]


def match_within_groups(
    groups: list[tuple[np.ndarray, np.ndarray]],
    shape: tuple[int, int],
    match: Callable[[np.ndarray, np.ndarray], sp.spmatrix],
) -> sp.csr_matrix:
    """Call ``match(rows, cols)`` per group and place each group's weights in one N x N matrix."""
    blocks = []
    for rows, cols in groups:
        block = sp.coo_matrix(match(rows, cols))
        blocks.append((block.data, rows[block.row], cols[block.col]))
    data, rows, cols = (np.concatenate(parts) for parts in zip(*blocks, strict=True))
    return sp.csr_matrix((data, (rows, cols)), shape=shape)


def within_budget(weights: sp.spmatrix, per_cell: int = MAX_NONZEROS_PER_CELL) -> sp.csr_matrix:
    """Drop the smallest weights until at most ``per_cell * n_rows`` non-zeros remain; rows renormalised."""
    weights = sp.csr_matrix(weights)
    weights.eliminate_zeros()
    budget = per_cell * weights.shape[0]
    if weights.nnz > budget:
        threshold = np.partition(weights.data, weights.nnz - budget)[weights.nnz - budget]
        weights.data[weights.data < threshold] = 0
        weights.eliminate_zeros()
        if weights.nnz > budget:  # ties at the threshold
            weights = sp.csr_matrix(weights)
            order = np.argsort(weights.data, kind="stable")[: weights.nnz - budget]
            weights.data[order] = 0
            weights.eliminate_zeros()
    return normalize_rows(weights)


def matching_file(weights: sp.spmatrix, test_mod1: ad.AnnData, test_mod2: ad.AnnData) -> ad.AnnData:
    """Wrap N x N weights as a prediction: rows ``test_mod1`` cells, columns ``test_mod2`` rows.

    Weights are made sparse CSR and kept within the competition's budget, rows summing to 1.
    """
    expected = (test_mod1.n_obs, test_mod2.n_obs)
    if weights.shape != expected:
        raise ValueError(f"matching has shape {weights.shape}, expected {expected}")
    out = ad.AnnData(
        X=within_budget(weights).astype(np.float32),
        obs=test_mod1.obs[[]].copy(),
        var=test_mod2.obs[[]].copy(),
    )
    out.uns["dataset_id"] = test_mod1.uns["dataset_id"]
    return out


def training_order(train_sol: ad.AnnData) -> np.ndarray:
    """Rows of ``train_mod2`` in the order of ``train_mod1``'s cells (from ``uns["pairing_ix"]``):
    ``train_mod2[training_order(sol)]`` is paired row by row with ``train_mod1``."""
    return np.argsort(np.asarray(train_sol.uns["pairing_ix"]).astype(np.int64))


ASSIGNMENTS = ("sinkhorn", "bipartite", "softmax")


def assign(
    similarity: np.ndarray, how: str, k: int, reg: float = SINKHORN_REG, temperature: float = 0.05
) -> sp.csr_matrix:
    """Weights from a similarity block: ``sinkhorn`` (soft one-to-one, :func:`sinkhorn_plan`),
    ``bipartite`` (hard one-to-one, :func:`bipartite_assignment`) or ``softmax`` (per row,
    :func:`softmax_top_k`)."""
    if how == "sinkhorn":
        return sinkhorn_plan(similarity, k, reg)
    if how == "bipartite":
        return bipartite_assignment(similarity)
    if how == "softmax":
        return softmax_top_k(similarity, k, temperature)
    raise ValueError(f"unknown assignment '{how}'; choose from {ASSIGNMENTS}")

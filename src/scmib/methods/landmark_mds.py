"""Landmark multidimensional scaling, after R's ``lmds`` 0.1.0 (the organisers' LMDS baseline;
0.1.1 computes the same).

Classical (Torgerson) MDS of a random sample of landmark cells, every cell placed by its
distances to the landmarks only, so the cost is cells x landmarks, not cells x cells. The
distances follow ``dynutils::calculate_distance``: ``spearman`` and ``pearson`` are
``(1 - r) / 2`` of the cells' correlation over all features, ``euclidean`` the plain distance.
Every function takes cells x features arrays, dense or sparse, and keeps sparse input sparse.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

log = logging.getLogger(__name__)

DISTANCES = ("spearman", "pearson", "euclidean")
#: Rows summed at a time: bounds the temporaries of a competition-size matrix (332 M stored values).
_ROW_BLOCK = 4096


def _nonzero_csr(values) -> sp.csr_matrix:
    """Canonical float64 CSR copy of ``values`` without stored zeros."""
    matrix = sp.csr_matrix(values, dtype=np.float64, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def zero_shifted_ranks(values) -> sp.csr_matrix:
    """Cells x features CSR of each cell's ranks over its features (ties averaged, as Spearman's
    correlation ranks them), minus the rank of zero, so that zeros stay zero and the matrix sparse.

    A shift per cell leaves correlations unchanged: this is ``dynutils``' ``spearman_rank_sparse``,
    but for explicitly stored zeros, which are dropped here first (dynutils ranks them apart from
    the implicit zeros, so its result depends on how the matrix is stored).
    """
    ranks = _nonzero_csr(values)
    n_features = ranks.shape[1]
    for cell in range(ranks.shape[0]):
        stored = slice(ranks.indptr[cell], ranks.indptr[cell + 1])
        data = ranks.data[stored]
        if data.size == 0:
            continue
        n_negative = int(np.count_nonzero(data < 0))
        n_zero = n_features - data.size
        # Ranks among the stored values; the zeros sit between the negative and positive ones.
        rank = rankdata(data) + np.where(data > 0, n_zero, 0)
        ranks.data[stored] = rank - (n_negative + (n_zero + 1) / 2)
    return ranks


def _row_sums(rows: sp.csr_matrix, power: int) -> np.ndarray:
    """Each row's sum of its values to ``power``, a block of rows at a time: a whole-matrix
    ``multiply`` would copy every stored value (4 GB at competition size)."""
    sums = np.empty(rows.shape[0])
    for start in range(0, rows.shape[0], _ROW_BLOCK):
        block = rows[start : start + _ROW_BLOCK]
        sums[start : start + _ROW_BLOCK] = np.asarray(block.power(power).sum(axis=1)).ravel()
    return sums


def _row_moments(rows: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Each row's mean and standard deviation over all its columns, zeros included. A deviation
    that is rounding of a constant row (below 1e-7 of its root mean square) is 0."""
    n_columns = rows.shape[1]
    mean, square = _row_sums(rows, 1) / n_columns, _row_sums(rows, 2) / n_columns
    variance = square - mean**2
    return mean, np.where(variance > 1e-14 * square, np.sqrt(np.maximum(variance, 0.0)), 0.0)


def _products(cells: sp.csr_matrix, landmarks: sp.csr_matrix) -> np.ndarray:
    """Landmarks x cells dot products. Sparse times sparse: only the features stored in both
    rows cost anything; cells times the landmarks' transpose copies only the landmarks."""
    return (cells @ landmarks.T).toarray().T


def _correlation_to(cells: sp.csr_matrix, landmark_rows: np.ndarray) -> np.ndarray:
    """Landmarks x cells Pearson correlation of sparse rows over all features (NaN, from a constant
    row, counts 0; rounding above 1 is cut to 1, as dynutils does)."""
    mean, sd = _row_moments(cells)
    cross = _products(cells, cells[landmark_rows]) / cells.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = (cross - np.outer(mean[landmark_rows], mean)) / np.outer(sd[landmark_rows], sd)
    correlation[~np.isfinite(correlation)] = 0.0
    return np.minimum(correlation, 1.0)


def distances_to_landmarks(values, landmark_rows: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Landmarks x cells distances between the rows ``landmark_rows`` of ``values`` and every row.

    ``spearman`` / ``pearson``: ``(1 - r) / 2`` with ``r`` the correlation of the two cells over
    all features (of their ranks for ``spearman``), in [0, 1]; ``euclidean``: the Euclidean distance.
    """
    if method not in DISTANCES:
        raise ValueError(f"distance {method!r}: expected one of {', '.join(DISTANCES)}")
    landmark_rows = np.asarray(landmark_rows)
    cells = zero_shifted_ranks(values) if method == "spearman" else _nonzero_csr(values)
    if method == "euclidean":
        norm = _row_sums(cells, 2)
        square = norm[landmark_rows, None] + norm[None, :] - 2 * _products(cells, cells[landmark_rows])
        # The expansion leaves rounding (about 1e-7 of the norms) where the two cells are one.
        square[np.arange(landmark_rows.size), landmark_rows] = 0.0
        return np.sqrt(np.maximum(square, 0.0))
    return (1.0 - _correlation_to(cells, landmark_rows)) / 2


def _zapsmall(values: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest absolute value."""
    largest = float(np.abs(values).max(initial=0.0))
    if largest > 0:
        digits = max(0, digits - math.ceil(math.log10(largest)))
    return np.round(values, digits)


def _recycled_means_product(row_mean: np.ndarray, points_inverse: np.ndarray, n_cells: int) -> np.ndarray:
    """Cells x k product ``M.T @ points_inverse``, with ``M`` the landmarks x cells matrix that
    lmds subtracts from the distances: ``rep(mu_n, each = N)`` recycled column-major, so the
    column of cell c holds ``mu_n[(c * n + r) // N]`` for landmark r, not ``mu_n[r]``.

    A column constant within a cell cancels (the eigenvectors of a double-centred matrix sum to
    zero); the columns that meet two of the recycled runs (fewer than n of them) do not, and move
    their cells by up to a tenth of the range on SNARE-seq2. Computed from cumulative sums of
    ``points_inverse``, without forming ``M`` (landmarks x cells).
    """
    n_landmarks = row_mean.size
    first = np.arange(n_cells, dtype=np.int64) * n_landmarks  # linear index of each column's top
    run = first // n_cells  # the mean the column starts with; n <= N, so it meets at most one more
    in_first_run = np.minimum((run + 1) * n_cells - first, n_landmarks)
    cumulative = np.vstack([np.zeros(points_inverse.shape[1]), np.cumsum(points_inverse, axis=0)])
    head = cumulative[in_first_run]
    next_mean = row_mean[np.minimum(run + 1, n_landmarks - 1)]
    return row_mean[run, None] * head + next_mean[:, None] * (cumulative[-1] - head)


def cmdscale_landmarks(dist_to_landmarks: np.ndarray, landmark_rows: np.ndarray, n_dims: int) -> np.ndarray:
    """Cells x k coordinates (k <= ``n_dims``: the positive eigenvalues among the ``n_dims``
    largest) from landmarks x cells distances, as ``lmds::cmdscale_landmarks`` computes them.

    Classical MDS of the landmarks' squared distances (double centred, exact eigendecomposition,
    where lmds used irlba's approximation of the same eigenvalues; an eigenvalue within rounding
    of 0, as the double centring always leaves one, counts as not positive); each cell is then
    placed by its distances to the landmarks, exactly as lmds computes it, which defines the
    baseline's output: from the distances themselves, not their squares (de Silva and
    Tenenbaum's formula squares them), minus the landmarks' mean squared distances recycled over
    the landmarks x cells matrix as R recycles a vector, column-major
    (:func:`_recycled_means_product`). Then, as lmds' rescaling, every dimension is centred on
    its mid-range and all are divided by the largest range.
    """
    squared = dist_to_landmarks[:, landmark_rows] ** 2
    row_mean = squared.mean(axis=1)
    centred = squared - row_mean[:, None] - row_mean[None, :] + squared.mean()
    eigenvalues, eigenvectors = np.linalg.eigh(-centred / 2)  # in increasing order
    top = np.arange(eigenvalues.size)[::-1][:n_dims]
    rounding = eigenvalues.size * np.finfo(np.float64).eps * np.abs(eigenvalues).max(initial=0.0)
    positive = top[eigenvalues[top] > rounding]
    if positive.size == 0:
        raise ValueError(
            f"no positive eigenvalue among the {top.size} largest of {landmark_rows.size} landmarks"
        )
    if positive.size < top.size:
        log.warning("only %d of the first %d eigenvalues are > 0", positive.size, top.size)
    points_inverse = eigenvectors[:, positive] / np.sqrt(eigenvalues[positive])
    coordinates = (
        -(
            dist_to_landmarks.T @ points_inverse
            - _recycled_means_product(row_mean, points_inverse, dist_to_landmarks.shape[1])
        )
        / 2
    )
    low, high = coordinates.min(axis=0), coordinates.max(axis=0)
    widest = float((high - low).max(initial=0.0))
    return (coordinates - (low + high) / 2) / (widest if widest > 0 else 1.0)


def sample_landmarks(n_cells: int, n_landmarks: int, seed: int) -> np.ndarray:
    """``min(n_landmarks, n_cells)`` distinct cell indices drawn by numpy's generator of ``seed``
    (lmds draws them with R's ``sample.int``), in the order drawn."""
    if n_landmarks < 3:
        raise ValueError(f"n_landmarks is {n_landmarks}; lmds needs at least 3")
    return np.random.default_rng(seed).choice(n_cells, size=min(n_landmarks, n_cells), replace=False)


def select_landmarks(values, landmark_rows: np.ndarray, distance: str = "spearman") -> np.ndarray:
    """Landmarks x cells :func:`distances_to_landmarks`, rounded as R's ``zapsmall``, as
    ``lmds::select_landmarks`` returns them for the given landmarks."""
    return _zapsmall(distances_to_landmarks(values, landmark_rows, distance))


def landmark_mds(
    values, n_dims: int, n_landmarks: int = 500, distance: str = "spearman", seed: int = 0
) -> np.ndarray:
    """Cells x k (k <= ``n_dims``) landmark MDS of cells x features ``values``, as ``lmds::lmds``:
    :func:`sample_landmarks`, :func:`select_landmarks`, :func:`cmdscale_landmarks`."""
    if n_dims < 1:
        raise ValueError(f"n_dims is {n_dims}; expected at least 1")
    landmark_rows = sample_landmarks(values.shape[0], n_landmarks, seed)
    return cmdscale_landmarks(select_landmarks(values, landmark_rows, distance), landmark_rows, n_dims)

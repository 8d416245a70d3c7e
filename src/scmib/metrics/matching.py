"""Match-modalities metrics: pure functions of the N x N weights and the true pairing.

``weights`` rows are test mod1 cells and columns the shuffled test mod2 rows;
``pairing_ix[j]`` is the original cell of column j (``uns.pairing_ix`` of the
solution). Every metric first undoes the shuffle, so the truth is the diagonal.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from scmib.errors import ContractError
from scmib.methods.matching import MAX_NONZEROS_PER_CELL
from scmib.metrics.inputs import name_order


def unshuffled(weights, pairing_ix: np.ndarray) -> sp.csr_matrix:
    """Weights (float64 CSR, negative and non-finite weights set to 0, zeros dropped) with
    columns back in the original cell order, so the true pair of row i is column i."""
    order = np.argsort(np.asarray(pairing_ix).astype(np.int64))
    matrix = sp.csr_matrix(weights, dtype=np.float64)[:, order].tocsr()
    matrix.data[~np.isfinite(matrix.data) | (matrix.data < 0)] = 0
    matrix.eliminate_zeros()
    return matrix


def match_probabilities(weights, pairing_ix: np.ndarray) -> np.ndarray:
    """Each mod1 cell's share of its weight on its true pair; their mean is the competition's
    headline score, match probability.

    Negative weights count as 0 and a row of zeros scores 0 (benchmark.md). Chance is 1/N.
    """
    matrix = unshuffled(weights, pairing_ix)
    totals = np.asarray(matrix.sum(axis=1)).ravel()
    diagonal = matrix.diagonal()
    return np.divide(diagonal, totals, out=np.zeros_like(diagonal), where=totals > 0)


def format_problems(weights, n_cells: int, tolerance: float = 1e-4) -> list[str]:
    """What breaks the competition's output format: sparse, N x N, non-negative, rows
    summing to 1, at most 1000 * N non-zeros. Empty when the format holds."""
    problems = []
    if weights.shape != (n_cells, n_cells):
        return [f"shape {weights.shape}, expected ({n_cells}, {n_cells})"]
    if not sp.issparse(weights):
        problems.append("a dense matrix, expected a sparse one")
    matrix = sp.csr_matrix(weights, dtype=np.float64)
    if not np.all(np.isfinite(matrix.data)):
        problems.append("NaN or infinite weights")
    if (matrix.data < 0).any():
        problems.append(f"{int((matrix.data < 0).sum())} negative weights")
    matrix.eliminate_zeros()
    if matrix.nnz > MAX_NONZEROS_PER_CELL * n_cells:
        problems.append(f"{matrix.nnz} non-zeros, more than {MAX_NONZEROS_PER_CELL} * N")
    off = np.abs(np.asarray(matrix.sum(axis=1)).ravel() - 1) > tolerance
    if off.any():
        problems.append(f"{int(off.sum())} rows do not sum to 1")
    return problems


def pair_auc(weights, pairing_ix: np.ndarray) -> tuple[float, float]:
    """``(AUPR, AUROC)`` of the weights as scores of "is the true pair", over all N x N entries.

    Entries with no weight are one tied group at the bottom, which keeps both
    defined for every prediction (over non-zero entries only the solution has no
    negatives). AUPR is scikit-learn's average precision (a step function over
    distinct thresholds); AUROC is the Mann-Whitney statistic with ties as 1/2.
    Computed from the non-zeros alone, so it never builds the N x N matrix.
    """
    matrix = unshuffled(weights, pairing_ix).tocoo()
    n = matrix.shape[0]
    total, positives = float(n) * n, float(n)
    negatives = total - positives
    scores = matrix.data
    is_true = matrix.row == matrix.col
    n_zero = total - len(scores)
    zero_positives = positives - is_true.sum()

    # AUROC: rank-sum of positives; the zero group holds the lowest ranks 1..n_zero.
    ranks = n_zero + rankdata(scores)
    rank_sum = ranks[is_true].sum() + zero_positives * (n_zero + 1) / 2
    auroc = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)

    # AUPR: precision at each distinct threshold, descending, weighted by the recall gained.
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_true = scores[order], is_true[order]
    # No weight at all (every entry 0, negative or NaN) leaves only the zero group's threshold.
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1][: len(scores)]
    tp = np.cumsum(sorted_true)[last_of_tie].astype(np.float64)
    predicted = (last_of_tie + 1).astype(np.float64)
    recall = np.r_[0.0, tp / positives]
    precision = tp / predicted
    aupr = float(np.sum(np.diff(recall) * precision))
    if zero_positives > 0:  # the last threshold (score 0) takes every entry
        aupr += (1.0 - recall[-1]) * positives / total
    return float(aupr), float(auroc)


def cell_type_shares(weights, pairing_ix: np.ndarray, cell_types: np.ndarray) -> np.ndarray:
    """Each mod1 cell's share of its weight on cells of its own type (their mean is the metric).

    ``cell_types`` are those of the mod1 cells (rows, in the solution's order);
    a column's type is that of its true pair. Negative weights count as 0, zero rows score 0.
    """
    matrix = unshuffled(weights, pairing_ix).tocoo()
    codes = np.unique(np.asarray(cell_types).astype(str), return_inverse=True)[1]
    same = codes[matrix.row] == codes[matrix.col]
    n = matrix.shape[0]
    on_type = np.bincount(matrix.row[same], weights=matrix.data[same], minlength=n)
    totals = np.bincount(matrix.row, weights=matrix.data, minlength=n)
    return np.divide(on_type, totals, out=np.zeros(n), where=totals > 0)


def solution_pairing(solution: ad.AnnData) -> np.ndarray:
    """``uns.pairing_ix`` of a solution as integers (the organisers stored floats)."""
    return np.asarray(solution.uns["pairing_ix"]).astype(np.int64)


def checked_weights(prediction: ad.AnnData, solution: ad.AnnData, path: str):
    """The prediction's ``X`` after checking it is N x N for the solution's N test cells.

    Rows and columns are scored in the solution's order: by position (the contract; the
    organisers' predictions are named ``0..N-1``), or by name where the prediction's names
    are the solution's in another order, so a prediction whose rows were sorted is not
    scored as if it had paired the wrong cells. Raises :class:`ContractError` naming
    ``path`` for another shape: such a matrix cannot be scored.
    """
    n = solution.n_obs
    if prediction.shape != (n, n):
        raise ContractError(
            f"prediction '{path}': X has shape {prediction.shape}, expected ({n}, {n}) "
            "(test mod1 cells x test mod2 rows)"
        )
    weights = prediction.X
    rows = name_order(prediction.obs_names.to_numpy(), solution.obs_names.to_numpy())
    cols = name_order(prediction.var_names.to_numpy(), solution.var_names.to_numpy())
    if rows is not None:
        weights = weights[rows]
    if cols is not None:
        weights = weights[:, cols]
    return weights

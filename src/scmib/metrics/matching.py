"""Match-modalities metrics: pure functions of the N x N weights and the true pairing.

``weights`` rows are test mod1 cells and columns the shuffled test mod2 rows;
``pairing_ix[j]`` is the original cell of column j (``uns.pairing_ix`` of the
solution). Every metric first undoes the shuffle, so the truth is the diagonal.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import scipy.sparse as sp

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


#: Evenly spaced points on which the organisers' AUPR extends the curve from the last
#: non-zero weight to all N x N entries (``extend_by`` of their ``aupr`` metric).
EXTENSION_POINTS = 10_000


def pair_auc(weights, pairing_ix: np.ndarray) -> tuple[float, float]:
    """``(AUPR, AUROC)`` of the weights as scores of "is the true pair", as the organisers
    computed them (``pairing_aupr`` and ``pairing_auroc`` of their ``match_modality/metrics/aupr``).

    The non-zero weights are ranked from the highest; at each rank the true and false positives
    so far give a point of each curve, which starts at recall 0 with precision 1. The entries
    without weight come last, in no order: the curve goes on along the straight line in those
    counts to all N x N entries, taken at :data:`EXTENSION_POINTS` evenly spaced points. Each
    area is the trapezoidal rule over the points. Where weights tie, the organisers' R code ranks
    them in a random order, so its value varies from run to run; this is its expected value over
    those orders, computed exactly (equal to theirs where no weights tie). For AUROC that is the
    Mann-Whitney statistic with ties as 1/2. Stored zeros, negative and non-finite weights are no
    weight (:func:`unshuffled`; the organisers' script ranked whatever a file stored), and with no
    weight at all the curve is the straight line alone (their script stops with an error there).
    Computed from the non-zeros alone, so it never builds the N x N matrix.
    """
    matrix = unshuffled(weights, pairing_ix).tocoo()
    n = matrix.shape[0]
    total, positives = float(n) * n, float(n)
    negatives = total - positives
    first, sizes, true_pairs = _tied_groups(matrix.data, matrix.row == matrix.col)
    n_scored, n_true = len(matrix.data), int(true_pairs.sum())
    del matrix

    # AUROC: rank-sum of the positives, ranks ascending with ties averaged; the entries without
    # weight are one group below them all (ranks 1..n_zero, in which lie the other true pairs).
    n_zero = total - n_scored
    mean_rank = n_zero + n_scored - first - (sizes - 1) / 2
    rank_sum = true_pairs @ mean_rank + (positives - n_true) * (n_zero + 1) / 2
    auroc = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)

    aupr = _expected_ranked_aupr(first, sizes, true_pairs, positives)
    if n_scored < total:  # the entries without weight, along a straight line to (N, N*N - N)
        tp_last, fp_last = float(n_true), float(n_scored - n_true)
        step = np.arange(1, EXTENSION_POINTS + 1) / EXTENSION_POINTS
        true_positives = np.r_[tp_last, tp_last + step * (positives - tp_last)]
        false_positives = np.r_[fp_last, fp_last + step * (negatives - fp_last)]
        selected = true_positives + false_positives
        # With no weight at all the line starts at the curve's first point: nothing selected, precision 1.
        precision = np.divide(true_positives, selected, out=np.ones_like(selected), where=selected > 0)
        aupr += _trapezoid(true_positives / positives, precision)
    return float(aupr), float(auroc)


def _tied_groups(scores: np.ndarray, is_true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The groups of equal ``scores`` from the highest: each one's first rank (0-based), size and
    number of true pairs (``is_true``)."""
    _, group, sizes = np.unique(scores, return_inverse=True, return_counts=True)
    true_pairs = np.bincount(group[is_true], minlength=len(sizes))[::-1]
    sizes = sizes[::-1]
    return np.r_[0, np.cumsum(sizes)[:-1]], sizes, true_pairs


#: Ranks per block of the expected-AUPR sum (bounds its memory at competition size).
_RANKS_PER_BLOCK = 1 << 20


def _expected_ranked_aupr(
    first: np.ndarray, sizes: np.ndarray, true_pairs: np.ndarray, positives: float
) -> float:
    """The trapezoidal area under precision-recall over the ranked scores (tied groups as
    :func:`_tied_groups` gives them; from recall 0 and precision 1), its expected value where
    each group's ranks are in random order.

    At rank k the trapezoid adds ``y_k / P * (tp_k / k + tp_{k-1} / (k-1)) / 2``, with ``y_k`` 1
    for a true pair and ``tp_k`` the true pairs in the first k (the term of rank 1 is
    ``y_1 / P * (tp_1 + 1) / 2``: precision 1 before any rank). In a group of m ranks holding a
    true pairs after ``tp_0`` before it, in random order, at its j-th rank ``E[y] = a/m``,
    ``E[y * tp_{k-1}] = E[y] * tp_0 + (j - 1) * a(a-1) / (m(m-1))`` and
    ``E[y * tp_k] = E[y * tp_{k-1}] + E[y]``: the expectation is a sum of those (exact).
    """
    if not len(sizes):
        return 0.0
    chance = true_pairs / sizes  # E[y] in each group
    both = true_pairs * (true_pairs - 1) / np.maximum(sizes * (sizes - 1), 1)  # two given ranks true
    true_before = np.r_[0, np.cumsum(true_pairs)[:-1]]
    area, n_ranks = 0.0, int(sizes.sum())
    for start in range(1, n_ranks + 1, _RANKS_PER_BLOCK):
        ranks = np.arange(start, min(start + _RANKS_PER_BLOCK, n_ranks + 1))
        group = np.searchsorted(first, ranks - 1, side="right") - 1  # integers: no copy of `first`
        rank = ranks.astype(np.float64)
        previous, expected_y = rank - 1, chance[group]
        y_tp_before = expected_y * true_before[group] + (previous - first[group]) * both[group]
        area += np.sum((y_tp_before + expected_y) / rank)
        if start == 1:  # rank 1: precision 1 before it
            y_tp_before[0], previous[0] = chance[0], 1.0
        area += np.sum(y_tp_before / previous)
    return float(area / (2 * positives))


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    """Area under the points ``(x, y)`` by the trapezoidal rule (``numpy.trapezoid``, numpy >= 2)."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2)


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

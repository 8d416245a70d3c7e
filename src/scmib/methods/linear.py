"""Ridge regression onto many (sparse) targets without a dense copy of them.

scikit-learn's ``Ridge`` densifies a sparse target: 70,000 cells x 13,953
genes is 3.9 GB in float32, over a 4 GB label. With few inputs (an SVD space
of ``k`` dimensions) the closed form needs only ``X^T Y`` (``k`` x targets),
which a sparse ``Y`` gives directly. Same solution as ``Ridge(alpha)`` with an
intercept (checked against it in the tests).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def ridge_predict(
    train_inputs: np.ndarray, train_targets, test_inputs: np.ndarray, alpha: float
) -> np.ndarray:
    """Predictions (test cells x targets, float64) of a ridge fit with intercept.

    ``train_targets`` may be sparse or dense (cells x targets); ``train_inputs``
    and ``test_inputs`` are dense (cells x k). Solves
    ``(Xc^T Xc + alpha I) W = Xc^T (Y - mean(Y))`` with ``Xc`` the centred inputs.
    """
    x = np.asarray(train_inputs, dtype=np.float64)
    x_mean = x.mean(axis=0)
    centred = x - x_mean
    if sp.issparse(train_targets):
        # float64 sums (a float32 matrix's column sums lose digits over 70,000 cells); stays sparse.
        train_targets = sp.csr_matrix(train_targets, dtype=np.float64)
    y_mean = np.asarray(train_targets.mean(axis=0)).ravel()
    # Xc^T (Y - 1 y_mean) = Xc^T Y, since the columns of Xc sum to zero.
    cross = (
        np.asarray((train_targets.T @ centred).T) if sp.issparse(train_targets) else centred.T @ train_targets
    )
    gram = centred.T @ centred + alpha * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, cross)
    return (np.asarray(test_inputs, dtype=np.float64) - x_mean) @ weights + y_mean


def column_range(matrix) -> tuple[np.ndarray, np.ndarray]:
    """Each column's minimum and maximum (implicit zeros of a sparse matrix included)."""
    if sp.issparse(matrix):
        return matrix.min(axis=0).toarray().ravel(), matrix.max(axis=0).toarray().ravel()
    return np.min(matrix, axis=0), np.max(matrix, axis=0)

"""Dimension reductions used by several methods."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd, safe_sparse_dot, svd_flip

from scmib.io import OnDisk, stack_rows


def as_dense(matrix, dtype: type = np.float32) -> np.ndarray:
    """A dense ``dtype`` array of a dense, sparse or on-disk (:data:`~scmib.io.OnDisk`) matrix."""
    if isinstance(matrix, OnDisk):
        matrix = matrix.to_memory()
    return np.asarray(matrix.toarray() if sp.issparse(matrix) else matrix, dtype=dtype)


def truncated_svd(matrix, n_components: int, seed: int) -> np.ndarray:
    """The ``(n_cells, n_components)`` scores ``X V`` of a cells x features matrix ``X``, as
    ``sklearn.decomposition.TruncatedSVD(n_components, random_state=seed).fit_transform``.

    The same randomized algorithm and defaults (5 power iterations, 10 extra
    dimensions, signs as scikit-learn's), except that the random projection is
    always of the features: scikit-learn projects the cells instead when there
    are more features than cells (ATAC peaks), and then the approximate
    components change with the order of the cells. Here reordering the cells
    reorders the rows of the result and changes nothing else, so a method may
    reduce cells in the order they are stored and pair them afterwards.
    """
    u, _, vt = randomized_svd(
        matrix, n_components, n_oversamples=10, n_iter=5, transpose=False, flip_sign=False, random_state=seed
    )
    _, vt = svd_flip(u, vt, u_based_decision=False)
    return safe_sparse_dot(matrix, vt.T)  # as scikit-learn: the projection, not U * S


def joint_svd(train, test, n_components: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Truncated SVD fitted on train and test cells together (as the organisers' baselines did).

    ``train`` and ``test`` may be dense, sparse or on disk (:data:`~scmib.io.OnDisk`).
    Returns the ``(n_train, k)`` and ``(n_test, k)`` embeddings, with ``k`` capped
    at one less than the number of features or cells.
    """
    stacked = stack_rows([train, test])
    k = max(1, min(n_components, min(stacked.shape) - 1))
    embedding = truncated_svd(stacked, k, seed)
    n_train = train.shape[0]
    return embedding[:n_train], embedding[n_train:]

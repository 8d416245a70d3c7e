"""Dimension reductions used by several methods."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD


def as_dense(matrix) -> np.ndarray:
    """A dense ``float32`` array of a sparse or dense matrix."""
    return np.asarray(matrix.toarray() if sp.issparse(matrix) else matrix, dtype=np.float32)


def joint_svd(train, test, n_components: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Truncated SVD fitted on train and test cells together (as the organisers' baselines did).

    Returns the ``(n_train, k)`` and ``(n_test, k)`` embeddings, with ``k`` capped
    at one less than the number of features or cells.
    """
    stacked = sp.vstack([sp.csr_matrix(train), sp.csr_matrix(test)]).tocsr()
    k = max(1, min(n_components, min(stacked.shape) - 1))
    embedding = TruncatedSVD(n_components=k, random_state=seed).fit_transform(stacked)
    n_train = train.shape[0]
    return embedding[:n_train], embedding[n_train:]

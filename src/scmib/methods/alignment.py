"""Linear maps between the reductions of two modalities, learnt on paired training cells."""

from __future__ import annotations

import numpy as np
from scipy.linalg import orthogonal_procrustes
from sklearn.linear_model import Ridge


def _pad(matrix: np.ndarray, width: int) -> np.ndarray:
    return np.pad(matrix, ((0, 0), (0, width - matrix.shape[1])))


def procrustes_map(
    train1: np.ndarray, train2: np.ndarray, test1: np.ndarray, test2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(test1 mapped, test2)`` in a shared space: both centred and scaled by their training
    statistics (as :func:`scipy.spatial.procrustes` standardises), zero-padded to the same
    width, and test1 rotated by the orthogonal map that best takes train1 onto train2."""
    width = max(train1.shape[1], train2.shape[1])

    def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = train.mean(axis=0)
        scale = np.linalg.norm(train - mean) / np.sqrt(len(train))
        return _pad((train - mean) / scale, width), _pad((test - mean) / scale, width)

    a_train, a_test = standardise(train1, test1)
    b_train, b_test = standardise(train2, test2)
    rotation, _ = orthogonal_procrustes(a_train, b_train)
    return a_test @ rotation, b_test


def ridge_map(train1: np.ndarray, train2: np.ndarray, test1: np.ndarray, alpha: float) -> np.ndarray:
    """test1's coordinates in train2's space by a ridge regression fitted on the training pairs."""
    return Ridge(alpha=alpha).fit(train1, train2).predict(test1)

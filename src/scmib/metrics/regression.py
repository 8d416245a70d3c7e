"""Predict-modality metrics on dense ``cells x features`` arrays (benchmark.md, task 1).

Every function takes the solution and the prediction as arrays of the same
shape. Correlations of a constant vector are defined as 0, never NaN.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Axis = Literal["cell", "feature", "overall"]


def rmse(solution: np.ndarray, prediction: np.ndarray) -> float:
    """Root mean squared error over the whole matrix at once (the competition's headline)."""
    diff = np.asarray(solution, dtype=np.float64) - np.asarray(prediction, dtype=np.float64)
    return float(np.sqrt(np.mean(diff * diff)))


def mae(solution: np.ndarray, prediction: np.ndarray) -> float:
    """Mean absolute error over the whole matrix."""
    diff = np.asarray(solution, dtype=np.float64) - np.asarray(prediction, dtype=np.float64)
    return float(np.mean(np.abs(diff)))


def per_cell_error(solution: np.ndarray, prediction: np.ndarray, power: int) -> np.ndarray:
    """Each cell's mean squared (``power=2``) or absolute (``power=1``) error over its features:
    RMSE is the square root of their mean, MAE their mean (every cell has the same features)."""
    diff = np.abs(np.asarray(solution, dtype=np.float64) - np.asarray(prediction, dtype=np.float64))
    return np.mean(diff * diff if power == 2 else diff, axis=1)


def rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b``; 0 where either is constant."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    numerator = np.einsum("ij,ij->i", a, b)
    denominator = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    out = np.zeros(len(a))
    # Relative tolerance: a row that is constant up to float rounding correlates 0.
    ok = denominator > 1e-12 * max(1.0, float(np.max(denominator, initial=0.0)))
    out[ok] = numerator[ok] / denominator[ok]
    return np.clip(out, -1.0, 1.0)


def _oriented(solution: np.ndarray, prediction: np.ndarray, axis: Axis):
    if axis == "cell":
        return solution, prediction
    if axis == "feature":
        return solution.T, prediction.T
    return solution.reshape(1, -1), prediction.reshape(1, -1)


def pearson(solution: np.ndarray, prediction: np.ndarray, axis: Axis) -> float:
    """Mean Pearson correlation per cell, per feature, or over all entries at once."""
    return float(np.mean(pearsons(solution, prediction, axis)))


def pearsons(solution: np.ndarray, prediction: np.ndarray, axis: Axis) -> np.ndarray:
    """Pearson correlation of each cell, of each feature, or (one value) of all entries."""
    sol, pred = _oriented(np.asarray(solution), np.asarray(prediction), axis)
    return rowwise_pearson(sol, pred)


def spearman(solution: np.ndarray, prediction: np.ndarray, axis: Axis) -> float:
    """Mean Spearman correlation (Pearson of average ranks) per cell, per feature or overall."""
    return float(np.mean(spearmans(solution, prediction, axis)))


def spearmans(solution: np.ndarray, prediction: np.ndarray, axis: Axis) -> np.ndarray:
    """Spearman correlation of each cell, of each feature, or (one value) of all entries."""
    # Imported here: scipy.stats costs 0.6 s at start-up, paid by every metric process otherwise.
    from scipy.stats import rankdata

    sol, pred = _oriented(np.asarray(solution), np.asarray(prediction), axis)
    return rowwise_pearson(rankdata(sol, axis=1), rankdata(pred, axis=1))

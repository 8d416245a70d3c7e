"""Local inverse Simpson's index (LISI) of batches (iLISI) and of cell types (cLISI).

Korsunsky et al. 2019 (Harmony): for each cell, Gaussian weights over its
``3 * perplexity`` nearest neighbours with a bandwidth found by bisection so
the weights have the given perplexity, then the inverse Simpson's index of the
labels under those weights. Vectorised over cells; checked against harmonypy.
Scaled as scib does: iLISI ``(median - 1) / (n_batches - 1)`` (1 = fully
mixed), cLISI ``(n_types - median) / (n_types - 1)`` (1 = types separate).
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors


def _perplexity_weights(
    distances: np.ndarray, perplexity: float, tol: float = 1e-5, n_iter: int = 50
) -> np.ndarray:
    """Row-normalised Gaussian weights with entropy ``log(perplexity)`` in every row (bisection on beta)."""
    n = len(distances)
    beta = np.ones(n)
    low, high = np.full(n, -np.inf), np.full(n, np.inf)
    target = np.log(perplexity)
    done = np.zeros(n, dtype=bool)
    weights = np.zeros_like(distances)
    for _ in range(n_iter):
        rows = ~done
        trial = np.exp(-distances[rows] * beta[rows, None])
        total = trial.sum(axis=1)
        safe = np.where(total > 0, total, 1.0)
        entropy = np.log(safe) + beta[rows] * (distances[rows] * trial).sum(axis=1) / safe
        weights[rows] = trial / safe[:, None]
        diff = entropy - target
        converged = np.abs(diff) < tol
        ix = np.flatnonzero(rows)
        done[ix[converged]] = True
        ix, diff = ix[~converged], diff[~converged]
        if len(ix) == 0:
            break
        b, lo, hi, wide = beta[ix], low[ix], high[ix], diff > 0  # entropy too high: narrow the kernel
        low[ix], high[ix] = np.where(wide, b, lo), np.where(wide, hi, b)
        beta[ix] = np.where(
            wide,
            np.where(np.isinf(hi), b * 2, (b + hi) / 2),
            np.where(np.isinf(lo), b / 2, (b + lo) / 2),
        )
    return weights


def lisi(embedding: np.ndarray, labels: np.ndarray, perplexity: float = 30) -> np.ndarray:
    """LISI of ``labels`` for every cell of ``embedding`` (cells x dimensions)."""
    codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)[1]
    k = min(int(perplexity * 3), len(embedding) - 1)
    distances, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(embedding).kneighbors(embedding)
    # The first neighbour is the cell itself; harmonypy drops it too.
    distances, neighbours = distances[:, 1:], neighbours[:, 1:]
    weights = _perplexity_weights(distances, perplexity)
    n_labels = codes.max() + 1
    per_label = np.zeros((len(embedding), n_labels))
    np.add.at(
        per_label, (np.repeat(np.arange(len(embedding)), k), codes[neighbours].ravel()), weights.ravel()
    )
    simpson = (per_label**2).sum(axis=1)
    return np.divide(1.0, simpson, out=np.full(len(simpson), np.nan), where=simpson > 0)


def ilisi(embedding: np.ndarray, batches: np.ndarray, perplexity: float = 30) -> float:
    """Median iLISI scaled to [0, 1]: 1 when every neighbourhood holds all batches evenly."""
    n = len(np.unique(np.asarray(batches).astype(str)))
    if n < 2:
        return float("nan")
    return float((np.nanmedian(lisi(embedding, batches, perplexity)) - 1) / (n - 1))


def clisi(embedding: np.ndarray, labels: np.ndarray, perplexity: float = 30) -> float:
    """Median cLISI scaled to [0, 1]: 1 when every neighbourhood holds one cell type."""
    n = len(np.unique(np.asarray(labels).astype(str)))
    if n < 2:
        return float("nan")
    return float((n - np.nanmedian(lisi(embedding, labels, perplexity))) / (n - 1))

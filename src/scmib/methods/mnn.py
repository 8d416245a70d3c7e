"""Mutual-nearest-neighbour batch correction in a low-dimensional space (fastMNN's idea).

Haghverdi et al. 2018 / fastMNN: cells are cosine-normalised, batches are
merged one at a time into a growing reference (largest first); pairs of
mutual nearest neighbours between the reference and the new batch give
correction vectors, which are smoothed over the new batch with a Gaussian
kernel and subtracted. Pure numpy/scikit-learn; memory stays at
``chunk x (cells in pairs)`` for the smoothing.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors


def cosine_normalize(values: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return values / np.where(norms > 0, norms, 1.0)


def mutual_pairs(reference: np.ndarray, new: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(new_index, reference_index)`` of every mutual k-nearest-neighbour pair."""
    k_ref, k_new = min(k, len(reference)), min(k, len(new))
    to_ref = NearestNeighbors(n_neighbors=k_ref).fit(reference).kneighbors(new, return_distance=False)
    to_new = NearestNeighbors(n_neighbors=k_new).fit(new).kneighbors(reference, return_distance=False)
    forward = sp.csr_matrix(
        (np.ones(to_ref.size), (np.repeat(np.arange(len(new)), k_ref), to_ref.ravel())),
        shape=(len(new), len(reference)),
    )
    backward = sp.csr_matrix(
        (np.ones(to_new.size), (to_new.ravel(), np.repeat(np.arange(len(reference)), k_new))),
        shape=(len(new), len(reference)),
    )
    mutual = forward.multiply(backward).tocoo()
    return mutual.row, mutual.col


def smoothed_correction(
    new: np.ndarray, anchors: np.ndarray, vectors: np.ndarray, sigma: float, chunk: int = 4096
) -> np.ndarray:
    """Per new cell, the Gaussian-weighted (``exp(-d² / sigma)``) mean of the anchors' correction vectors."""
    out = np.empty_like(new)
    anchor_sq = (anchors**2).sum(axis=1)
    for start in range(0, len(new), chunk):
        block = new[start : start + chunk]
        sq = (block**2).sum(axis=1)[:, None] + anchor_sq[None, :] - 2 * block @ anchors.T
        logits = -np.maximum(sq, 0) / sigma
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))  # stable when all are far
        out[start : start + chunk] = (weights @ vectors) / weights.sum(axis=1, keepdims=True)
    return out


def mnn_correct(values: np.ndarray, batches: np.ndarray, k: int = 20, sigma: float = 1.0) -> np.ndarray:
    """Batch-corrected copy of ``values`` (cells x dimensions, e.g. a PCA), in the input's cell order.

    Batches without any mutual pair with the reference are left uncorrected.
    """
    values = cosine_normalize(np.asarray(values, dtype=np.float64))
    batches = np.asarray(batches).astype(str)
    names, sizes = np.unique(batches, return_counts=True)
    order = names[np.argsort(-sizes, kind="stable")]
    corrected = values.copy()
    merged = np.flatnonzero(batches == order[0])
    for name in order[1:]:
        cells = np.flatnonzero(batches == name)
        new, reference = corrected[cells], corrected[merged]
        new_ix, ref_ix = mutual_pairs(reference, new, k)
        if len(new_ix):
            anchors, inverse = np.unique(new_ix, return_inverse=True)
            vectors = np.zeros((len(anchors), values.shape[1]))
            np.add.at(vectors, inverse, reference[ref_ix] - new[new_ix])
            vectors /= np.bincount(inverse)[:, None]
            corrected[cells] = new + smoothed_correction(new, new[anchors], vectors, sigma)
        merged = np.concatenate([merged, cells])
    return corrected

"""``asw_label`` and ``asw_batch``: silhouette widths of cell types and of batches within types."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_samples


def asw_label(embedding: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of the cell types, scaled to [0, 1] as ``(s + 1) / 2``."""
    return float((silhouette_samples(embedding, np.asarray(labels).astype(str)).mean() + 1) / 2)


def asw_batch(embedding: np.ndarray, batches: np.ndarray, labels: np.ndarray) -> float:
    """scib's batch ASW: per cell type seen in more than one batch, the mean of ``1 - |s_batch|``;
    then the mean over types.

    Types in one batch only, or with one cell per batch, are skipped (silhouette
    is undefined there); NaN when no type is left.
    """
    batches, labels = np.asarray(batches).astype(str), np.asarray(labels).astype(str)
    per_type = []
    for label in pd.unique(labels):
        cells = labels == label
        n_batches = len(np.unique(batches[cells]))
        if n_batches == 1 or n_batches == cells.sum():
            continue
        widths = silhouette_samples(embedding[cells], batches[cells])
        per_type.append(np.mean(1 - np.abs(widths)))
    return float(np.mean(per_type)) if per_type else float("nan")

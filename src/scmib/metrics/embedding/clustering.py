"""``nmi`` and ``ari`` of the Louvain clustering that agrees best with the cell types."""

from __future__ import annotations

import anndata as ad
import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

#: scib's ``opt_louvain`` resolutions: 0.1, 0.2, ..., 2.0.
RESOLUTIONS = tuple(2 * x / 20 for x in range(1, 21))


def optimal_louvain(
    graph: ad.AnnData, labels: np.ndarray, resolutions: tuple[float, ...] = RESOLUTIONS
) -> tuple[np.ndarray, float, float]:
    """Louvain clusters (scanpy, seed 0) at the resolution with the best NMI against ``labels``.

    ``graph`` holds scanpy's neighbours (:func:`~scmib.metrics.embedding.graph.knn_graph`).
    Returns ``(clusters, nmi, resolution)``; as in scib, the first resolution
    wins ties and a clustering must beat NMI 0 to be kept.
    """
    labels = np.asarray(labels).astype(str)
    best, best_nmi, best_resolution = np.zeros(len(labels), dtype=int).astype(str), 0.0, resolutions[0]
    for resolution in resolutions:
        sc.tl.louvain(graph, resolution=resolution, key_added="louvain", random_state=0)
        clusters = graph.obs["louvain"].astype(str).to_numpy()
        score = normalized_mutual_info_score(labels, clusters, average_method="arithmetic")
        if score > best_nmi:
            best, best_nmi, best_resolution = clusters, score, resolution
    return best, float(best_nmi), best_resolution


def nmi(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Arithmetic-mean normalised mutual information (scikit-learn)."""
    return float(
        normalized_mutual_info_score(np.asarray(labels).astype(str), clusters, average_method="arithmetic")
    )


def ari(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Adjusted Rand index (scikit-learn)."""
    return float(adjusted_rand_score(np.asarray(labels).astype(str), clusters))

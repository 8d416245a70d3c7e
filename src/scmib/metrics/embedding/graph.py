"""The kNN graph every graph metric reads, and ``graph_conn``."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

#: The competition's metrics ran scanpy's neighbours on the embedding with its defaults.
N_NEIGHBORS = 15


def knn_graph(embedding: np.ndarray, n_neighbors: int = N_NEIGHBORS, seed: int = 0) -> ad.AnnData:
    """An AnnData holding ``embedding`` (``obsm["X_emb"]``) and scanpy's UMAP-weighted kNN graph.

    ``embedding`` is cells x dimensions. The graph is ``sc.pp.neighbors(adata,
    use_rep="X_emb")`` as in the organisers' metric scripts: exact neighbours
    below 4,096 cells, pynndescent (seeded) above.
    """
    adata = ad.AnnData(X=sp.csr_matrix((embedding.shape[0], 0), dtype=np.float32))
    adata.obsm["X_emb"] = np.asarray(embedding, dtype=np.float32)
    sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep="X_emb", random_state=seed)
    return adata


def graph_connectivity(connectivities: sp.spmatrix, labels: pd.Series | np.ndarray) -> float:
    """Mean over labels of the share of a label's cells in the largest connected part of its subgraph."""
    labels = pd.Categorical(np.asarray(labels).astype(str))
    graph = sp.csr_matrix(connectivities)
    shares = []
    for code in range(len(labels.categories)):
        cells = np.flatnonzero(labels.codes == code)
        if len(cells) == 0:
            continue
        _, parts = connected_components(graph[cells][:, cells], connection="strong")
        shares.append(np.bincount(parts).max() / len(cells))
    return float(np.mean(shares))

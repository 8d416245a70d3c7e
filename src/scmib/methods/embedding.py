"""Inputs and outputs every joint-embedding method shares: per-modality reductions and the embedding file."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from sklearn.decomposition import PCA

from scmib.errors import ContractError
from scmib.methods.features import tfidf
from scmib.methods.reduction import as_dense, truncated_svd
from scmib.metrics.embedding.graph import knn_graph
from scmib.processing.predict_modality import modality_of


def modality_reduction(adata: ad.AnnData, n_components: int, seed: int) -> np.ndarray:
    """Cells x k reduction of one modality file (``layers["normalized"]``, ATAC ``layers["counts"]``).

    GEX and ADT: PCA of the normalised values; ADT with no more proteins than
    ``n_components`` keeps every protein (centred). ATAC: LSI, i.e. truncated
    SVD of the log TF-IDF with the first component (sequencing depth) dropped.
    """
    if modality_of(adata) == "ATAC":
        values = tfidf(adata.layers["counts"])
        k = max(2, min(n_components + 1, min(values.shape) - 1))
        return truncated_svd(values, k, seed)[:, 1:]
    values = adata.layers["normalized"]
    if adata.n_vars <= n_components:
        dense = np.asarray(values.toarray() if sp.issparse(values) else values, dtype=np.float64)
        return dense - dense.mean(axis=0)
    k = max(1, min(n_components, min(values.shape) - 1))
    return sc.pp.pca(sp.csr_matrix(values, dtype=np.float64), n_comps=k, random_state=seed)


#: Stored values summed per column at a time (128 MB of float64): bounds the temporaries of a
#: competition-size ATAC matrix (245 M stored values).
_CHUNK = 1 << 24


def _sparse_column_variance(values: sp.csr_matrix) -> np.ndarray:
    """Population variance of each column of a canonical CSR matrix, from its stored values only
    (no CSC copy), in two passes: the stored values' squared deviations, then the zeros'.
    E[x^2] - E[x]^2 would reorder columns whose deviations are nearly equal."""
    n_cells, n_columns = values.shape
    chunks = [slice(start, start + _CHUNK) for start in range(0, values.nnz, _CHUNK)]
    mean, stored_count = np.zeros(n_columns), np.zeros(n_columns)
    for chunk in chunks:
        mean += np.bincount(values.indices[chunk], values.data[chunk].astype(np.float64), n_columns)
        stored_count += np.bincount(values.indices[chunk], minlength=n_columns)
    mean /= n_cells
    stored = np.zeros(n_columns)
    for chunk in chunks:
        columns = values.indices[chunk]
        stored += np.bincount(
            columns, (values.data[chunk].astype(np.float64) - mean[columns]) ** 2, n_columns
        )
    return (stored + (n_cells - stored_count) * mean**2) / n_cells


def most_variable_columns(values, n_features: int) -> np.ndarray:
    """Dense cells x min(n_features, n_vars) array: the columns of ``values`` (dense or sparse)
    with the largest standard deviation, in decreasing order of it (ties in column order), as
    ``proxyC::colSds`` and ``order(decreasing = TRUE)`` pick them in the organisers' R baselines."""
    if values.shape[1] <= n_features:
        return as_dense(values, np.float64)
    if sp.issparse(values):
        values = sp.csr_matrix(values)
        if not values.has_canonical_format:  # repeated entries would count as separate cells
            values = values.copy()
            values.sum_duplicates()
        variance = _sparse_column_variance(values)
    else:
        variance = np.asarray(values, dtype=np.float64).var(axis=0)
    keep = np.argsort(-variance, kind="stable")[:n_features]
    return as_dense(values[:, keep], np.float64)


def balanced_concat(blocks: list[np.ndarray]) -> np.ndarray:
    """Concatenate blocks after scaling each to unit total variance, so each modality weighs the same."""
    scaled = [b / np.sqrt(max(b.var(axis=0).sum(), 1e-12)) for b in blocks]
    return np.hstack(scaled)


def umap_of_pca(blocks: list[np.ndarray], n_pcs: int, n_dims: int, n_neighbors: int, seed: int) -> np.ndarray:
    """Cells x ``n_dims`` UMAP (umap-learn, euclidean, ``random_state=seed``) of the first ``n_pcs``
    principal components (centred, exact) of the blocks side by side: the organisers' UMAP
    baseline after its feature selection."""
    import umap  # lazy: numba compiles part of it on import

    joined = np.hstack(blocks)
    k = max(1, min(n_pcs, min(joined.shape) - 1))
    pcs = PCA(n_components=k, svd_solver="full").fit_transform(joined)
    reducer = umap.UMAP(n_components=n_dims, n_neighbors=n_neighbors, metric="euclidean", random_state=seed)
    return np.asarray(reducer.fit_transform(pcs), dtype=np.float64)


@dataclass
class EmbeddingInputs:
    """The two modality files of a joint-embedding task and their cells' batches."""

    mod1: ad.AnnData
    mod2: ad.AnnData

    @property
    def batches(self) -> pd.Series:
        return self.mod1.obs["batch"].astype(str)

    def reductions(self, n_components: int | tuple[int, int], seed: int) -> list[np.ndarray]:
        """:func:`modality_reduction` of mod1 and mod2 (one size for both, or one each)."""
        sizes = (n_components, n_components) if isinstance(n_components, int) else n_components
        return [
            modality_reduction(adata, k, seed) for adata, k in zip((self.mod1, self.mod2), sizes, strict=True)
        ]

    def concatenated(self, n_components: int, seed: int) -> np.ndarray:
        """Balanced concatenation of both modalities' PCA/LSI (the PCA-concatenation baseline)."""
        return balanced_concat(self.reductions(n_components, seed))

    def output(self, embedding: np.ndarray) -> ad.AnnData:
        """The prediction file: ``X`` is the embedding of the mod1 cells (at most 100 dimensions)."""
        embedding = np.asarray(embedding, dtype=np.float64)
        if embedding.shape[1] > 100:
            raise ValueError(f"embedding has {embedding.shape[1]} dimensions; the task allows at most 100")
        out = ad.AnnData(X=embedding, obs=pd.DataFrame(index=self.mod1.obs_names.copy()))
        out.uns["dataset_id"] = str(self.mod1.uns["dataset_id"])
        return out


def read_embedding_inputs(run, layers: Collection[str] | None = None) -> EmbeddingInputs:
    """Read ``input_mod1`` and ``input_mod2`` of a method run; they must hold the same cells in order.

    ``layers``: only these layers are read into memory (``()``: the annotations only, as controls
    need; a competition-size ATAC file is 3.9 GB in memory). Default: everything.
    """
    mod1, mod2 = run.read("input_mod1", layers=layers), run.read("input_mod2", layers=layers)
    if not np.array_equal(mod1.obs_names, mod2.obs_names):
        raise ContractError(
            f"'{run.path('input_mod2')}': obs names differ from '{run.path('input_mod1')}' "
            "(same cells in the same order expected)"
        )
    return EmbeddingInputs(mod1, mod2)


def pseudo_labels(embedding: np.ndarray, resolution: float, seed: int) -> np.ndarray:
    """Integer Leiden clusters (scanpy, igraph flavour) of ``embedding``'s 15-neighbour graph.

    For methods that learn from cell types when the task gives none.
    """
    graph = knn_graph(embedding, seed=seed)
    sc.tl.leiden(
        graph, resolution=resolution, random_state=seed, flavor="igraph", n_iterations=2, directed=False
    )
    return graph.obs["leiden"].astype(int).to_numpy()

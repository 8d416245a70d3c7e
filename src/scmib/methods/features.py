"""Input features the competition's winners built before regression."""

from __future__ import annotations

import itertools

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scmib.io import VALUE_CHUNK, stack_rows


def zscore_rows(matrix: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Standardise each row (cell) to mean 0 and variance 1 (Guanlab's per-cell z-score)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    centred = matrix - matrix.mean(axis=1, keepdims=True)
    return centred / (centred.std(axis=1, keepdims=True) + eps)


def tfidf(counts, *, copy: bool = True) -> sp.csr_matrix:
    """Log TF-IDF (as in LSI for scATAC): ``log1p(tf * idf * 1e4)`` with tf per cell, idf per feature.

    ``tf`` is a count over its cell's total, ``idf`` the number of cells over one
    plus the cells with the feature. Returns a float32 CSR matrix of the shape
    of ``counts``. With ``copy=False`` a float32 CSR input is transformed in
    place (the caller's matrix becomes the result). Works on
    :data:`~scmib.io.VALUE_CHUNK` values at a time, so the only full-size array
    is the result: a competition-size ATAC matrix (245 million counts) takes
    2 GB, not the 3 float64 copies (9 GB) of the vectorised formula.
    """
    counts = sp.csr_matrix(counts, dtype=np.float32, copy=copy)
    data, indices, indptr = counts.data, counts.indices, counts.indptr
    cells_with_feature = np.zeros(counts.shape[1], dtype=np.int64)
    for start in range(0, data.size, VALUE_CHUNK):
        stop = start + VALUE_CHUNK
        seen = indices[start:stop][data[start:stop] > 0]
        cells_with_feature += np.bincount(seen, minlength=counts.shape[1])
    idf = (counts.shape[0] / (1.0 + cells_with_feature)).astype(np.float32)
    for first_row, stop_row in _row_chunks(indptr):
        start, stop = indptr[first_row], indptr[stop_row]
        chunk = data[start:stop]  # a view: changed in place
        row_of_value = np.repeat(np.arange(stop_row - first_row), np.diff(indptr[first_row : stop_row + 1]))
        totals = np.bincount(row_of_value, weights=chunk, minlength=stop_row - first_row)
        totals[totals == 0] = 1.0
        chunk /= totals[row_of_value].astype(np.float32)
        chunk *= idf[indices[start:stop]]
        chunk *= np.float32(1e4)
        np.log1p(chunk, out=chunk)
    return counts


def _row_chunks(indptr: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive row ranges ``(first, stop)`` of whole rows, about :data:`~scmib.io.VALUE_CHUNK`
    stored values each."""
    n_rows = len(indptr) - 1
    starts = np.searchsorted(indptr, np.arange(0, int(indptr[-1]), VALUE_CHUNK), side="right") - 1
    bounds = np.unique(np.concatenate([[0], np.clip(starts, 0, n_rows), [n_rows]]))
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def lsi(train_counts, test_counts, n_components: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Latent semantic indexing of train and test cells together, z-scored per cell.

    TF-IDF of the counts (:func:`tfidf`), truncated SVD, then per-cell z-score: the inputs of the
    CLUE- and CLIP-style models. Novel's own LSI is :func:`novel_lsi`.
    The counts may be in memory or on disk (:data:`~scmib.io.OnDisk`); they are
    stacked into one float32 copy that is transformed in place. Returns
    ``(n_train, k)`` and ``(n_test, k)`` arrays.
    """
    from scmib.methods.reduction import truncated_svd

    stacked = tfidf(stack_rows([train_counts, test_counts], np.float32), copy=False)
    k = max(1, min(n_components, min(stacked.shape) - 1))
    embedding = zscore_rows(truncated_svd(stacked, k, seed))
    n_train = train_counts.shape[0]
    return embedding[:n_train], embedding[n_train:]


def _novel_tfidf(values: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """``log1p(1e4 * x / |x|_1)`` of each row ``x`` of ``values * idf``, in place (``values`` is a
    float32 CSR copy), a chunk of rows at a time. Novel divides each cell by its total before the
    idf too; the L1 step after it makes that division cancel, so it is left out."""
    data, indices, indptr = values.data, values.indices, values.indptr
    for first_row, stop_row in _row_chunks(indptr):
        start, stop = indptr[first_row], indptr[stop_row]
        chunk = data[start:stop]  # a view: changed in place
        chunk *= idf[indices[start:stop]]
        row_of_value = np.repeat(np.arange(stop_row - first_row), np.diff(indptr[first_row : stop_row + 1]))
        totals = np.bincount(row_of_value, weights=np.abs(chunk), minlength=stop_row - first_row)
        totals[totals == 0] = 1.0
        chunk /= totals[row_of_value].astype(np.float32)
        chunk *= np.float32(1e4)
        np.log1p(chunk, out=chunk)
    return values


def novel_lsi(train_values, test_values, n_components: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Novel's LSI (its ``lsiTransformer``) of normalised values, fitted on the training cells only.

    Each value over its cell's total times the feature's idf (the number of training cells over
    the feature's training total), each cell scaled to sum 1 again (scikit-learn's L1
    ``Normalizer``), ``log1p(x * 1e4)``, scikit-learn's truncated SVD fitted on the training cells
    (``random_state=seed``; Novel's 777) and applied to both, then each cell z-scored (ddof 1).
    A feature without training values has no idf (Novel's is infinite): here it gets 0, so a test
    cell that has it stays finite. Returns ``(n_train, k)`` and ``(n_test, k)`` arrays.
    """
    from sklearn.decomposition import TruncatedSVD

    train = sp.csr_matrix(train_values, dtype=np.float32, copy=True)
    totals = np.asarray(train.sum(axis=0, dtype=np.float64)).ravel()
    idf = np.zeros(train.shape[1], dtype=np.float32)
    np.divide(train.shape[0], totals, out=idf, where=totals > 0, casting="unsafe")
    train = _novel_tfidf(train, idf)
    k = max(1, min(n_components, min(train.shape) - 1))
    svd = TruncatedSVD(k, random_state=seed).fit(train)
    test = _novel_tfidf(sp.csr_matrix(test_values, dtype=np.float32, copy=True), idf)
    embeddings = []
    for reduced in (svd.transform(train), svd.transform(test)):
        reduced = reduced - reduced.mean(axis=1, keepdims=True)
        spread = reduced.std(axis=1, ddof=1, keepdims=True) if k > 1 else np.ones((len(reduced), 1))
        embeddings.append(reduced / np.where(spread > 0, spread, 1.0))
    return embeddings[0], embeddings[1]


def embedding_layer(adata: ad.AnnData) -> str:
    """The layer :func:`modality_embedding` reduces: ATAC's counts, else the normalised values."""
    from scmib.processing.predict_modality import modality_of

    return "counts" if modality_of(adata) == "ATAC" else "normalized"


def modality_embedding(
    train: ad.AnnData, test: ad.AnnData, n_components: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell z-scored low-dimensional inputs of one modality, fitted on train and test together.

    ATAC: LSI of the counts (Novel's input); GEX: truncated SVD of the normalised
    values; ADT: the normalised values themselves when there are no more proteins
    than ``n_components``. Returns ``(n_train, k)`` and ``(n_test, k)`` float32 arrays.
    """
    from scmib.methods.reduction import as_dense, joint_svd

    if embedding_layer(train) == "counts":
        return lsi(train.layers["counts"], test.layers["counts"], n_components, seed)
    first, second = train.layers["normalized"], test.layers["normalized"]
    if train.n_vars <= n_components:
        first, second = as_dense(first), as_dense(second)
    else:
        first, second = joint_svd(first, second, n_components, seed)
    return zscore_rows(first).astype(np.float32), zscore_rows(second).astype(np.float32)

"""``cc_cons``: how much of the cell-cycle variance of each batch the embedding keeps.

scib's ``cell_cycle`` regresses the top principal components on the S and G2M
scores and weighs each component's R² by its share of variance, before (the
log-normalised GEX) and after (the embedding), per batch. Here the PCA of a
sparse matrix stays sparse (scanpy's implicitly centred ARPACK), the
regression is one least-squares solve for all components at once, and the
"before" values, which depend on the dataset only, can be computed once and
passed in.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp

N_COMPONENTS = 50


def _principal_components(data, n_comps: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and variances of the top components, as scib computes them (scanpy's PCA)."""
    n_comps = min(n_comps, min(data.shape))
    solver = "arpack"
    if n_comps == min(data.shape):
        # ARPACK cannot return every component; scib switches to a full SVD here.
        solver = "full"
        data = data.toarray() if sp.issparse(data) else data
    scores, _, _, variance = sc.pp.pca(
        data, n_comps=n_comps, svd_solver=solver, return_info=True, random_state=0
    )
    return scores, variance


def variance_explained(data, covariates: np.ndarray, n_comps: int = N_COMPONENTS) -> float:
    """Share of the variance of ``data`` (cells x features) explained by ``covariates`` through its PCs.

    ``sum_k R²_k * var_k / sum(var)`` over the top ``n_comps`` principal
    components, with ``R²_k`` of an ordinary least-squares fit (with intercept)
    of component ``k`` on the covariates, floored at 0; 0 for constant covariates.
    """
    covariates = np.asarray(covariates, dtype=np.float64)
    if not np.any(np.ptp(covariates.reshape(len(covariates), -1), axis=0) > 0):
        return 0.0  # constant covariates explain nothing (the fit would return rounding noise)
    scores, variance = _principal_components(data, n_comps)
    design = np.column_stack([np.ones(len(covariates)), covariates])
    # Bracketed so no cells x cells matrix is ever formed.
    fitted = design @ (np.linalg.pinv(design.T @ design) @ (design.T @ scores))
    total = ((scores - scores.mean(axis=0)) ** 2).sum(axis=0)
    r2 = np.maximum(0.0, 1 - ((scores - fitted) ** 2).sum(axis=0) / total)
    return float(np.sum(r2 * variance / variance.sum()))


def cell_cycle_conservation(
    before: dict[str, float], embedding: np.ndarray, batches: np.ndarray, scores: np.ndarray
) -> float:
    """Mean over batches of ``max(0, 1 - |after - before| / before)``.

    ``before`` maps each batch to :func:`variance_explained` of the unintegrated
    data; ``scores`` is cells x 2 (S, G2M). A batch without cell-cycle variance
    before has nothing to conserve and is left out (scib divides by its 0 and
    gets 0 or NaN depending on the rounding of ``after``); NaN when no batch is left.
    """
    batches = np.asarray(batches).astype(str)
    values = []
    for batch, reference in before.items():
        if not reference > 0:
            continue
        cells = batches == batch
        after = variance_explained(embedding[cells], scores[cells])
        values.append(max(0.0, 1 - abs(after - reference) / reference))
    return float(np.nanmean(values)) if values else float("nan")


def variance_before(data, batches: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """:func:`variance_explained` of ``data`` (e.g. the solution's GEX) per batch."""
    batches = np.asarray(batches).astype(str)
    if sp.issparse(data) and data.format != "csr":
        data = data.tocsr()  # row slicing; a CSR input is used as it is, not copied
    return {
        str(batch): variance_explained(data[batches == batch], scores[batches == batch])
        for batch in dict.fromkeys(batches)
    }


def stored_variance_before(gex: ad.AnnData, batches: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """:func:`variance_before` of ``gex.X`` per batch, or the values a task's solution file stores
    (``uns['cc_batches']`` and ``uns['cc_variance_before']``, computed once when the dataset is
    processed, so every embedding is compared with the same numbers) where those are of the same
    batches as ``batches`` (not, say, after a subset of the cells dropped a batch)."""
    stored = gex.uns.get("cc_batches") if "cc_variance_before" in gex.uns else None
    if stored is not None and {str(b) for b in stored} == set(np.unique(np.asarray(batches).astype(str))):
        return dict(zip(map(str, stored), gex.uns["cc_variance_before"], strict=True))
    return variance_before(gex.X, batches, scores)

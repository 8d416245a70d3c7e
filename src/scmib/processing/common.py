"""Pieces every task processor shares: the modality directions and task-file subsets."""

from __future__ import annotations

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scmib.errors import NotApplicable

#: Modalities of each direction: (mod1, mod2).
DIRECTIONS: dict[str, tuple[str, str]] = {
    "gex2adt": ("GEX", "ADT"),
    "adt2gex": ("ADT", "GEX"),
    "gex2atac": ("GEX", "ATAC"),
    "atac2gex": ("ATAC", "GEX"),
}


def direction_modalities(rna: ad.AnnData, mod2: ad.AnnData, direction: str) -> tuple[ad.AnnData, ad.AnnData]:
    """The common-dataset files that are mod1 and mod2 of ``direction``.

    Raises :class:`NotApplicable` when the dataset lacks one of them, and
    ``ValueError`` when the two files do not hold the same cells in the same order.
    """
    first, second = DIRECTIONS[direction]
    by_modality = {rna.uns["modality"]: rna, mod2.uns["modality"]: mod2}
    if first not in by_modality or second not in by_modality:
        raise NotApplicable(f"{direction} needs {first} and {second}, dataset has {sorted(by_modality)}")
    if not np.array_equal(rna.obs_names, mod2.obs_names):
        raise ValueError("rna and mod2 must hold the same cells in the same order")
    return by_modality[first], by_modality[second]


def task_subset(
    adata: ad.AnnData,
    cells: np.ndarray,
    *,
    dataset_id: str,
    keep_labels: bool,
    features: np.ndarray | None = None,
    release: bool = False,
) -> ad.AnnData:
    """Cells (and optionally features) of a common-dataset file as a task file.

    Keeps ``counts`` and ``normalized`` (sparse), ``obs.batch``/``size_factors``,
    ``obs.cell_type`` only when ``keep_labels``, and ``var.feature_types``.
    With ``release``, each layer is removed from ``adata`` as soon as its subset
    is made, so a large file and its subset are never both held in full (at the
    competition's size this keeps the split under its 4 GB label); ``adata``
    has no layers afterwards.
    """
    keep_obs = ["batch", "size_factors"] + (["cell_type"] if keep_labels else [])
    # The view's obs and var drop categories no cell keeps; its layers are not touched.
    view = adata[cells] if features is None else adata[cells, features]
    obs = view.obs[[c for c in keep_obs if c in view.obs]].copy()
    var = view.var[["feature_types"]].copy()
    del view
    layers = {}
    for name in ("counts", "normalized"):
        matrix = sp.csr_matrix(adata.layers[name])[cells]
        layers[name] = matrix if features is None else matrix[:, features]
        if release:
            del adata.layers[name]
    out = ad.AnnData(
        X=None,
        obs=obs,
        var=var,
        layers=layers,
    )
    out.uns = {
        "dataset_id": dataset_id,
        "modality": adata.uns["modality"],
        "organism": adata.uns.get("organism", "unknown"),
    }
    return out

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
) -> ad.AnnData:
    """Cells (and optionally features) of a common-dataset file as a task file.

    Keeps ``counts`` and ``normalized`` (sparse), ``obs.batch``/``size_factors``,
    ``obs.cell_type`` only when ``keep_labels``, and ``var.feature_types``.
    """
    keep_obs = ["batch", "size_factors"] + (["cell_type"] if keep_labels else [])
    view = adata[cells] if features is None else adata[cells, features]
    out = ad.AnnData(
        X=None,
        obs=view.obs[[c for c in keep_obs if c in view.obs]].copy(),
        var=view.var[["feature_types"]].copy(),
        layers={name: sp.csr_matrix(view.layers[name]) for name in ("counts", "normalized")},
    )
    out.uns = {
        "dataset_id": dataset_id,
        "modality": adata.uns["modality"],
        "organism": adata.uns.get("organism", "unknown"),
    }
    return out

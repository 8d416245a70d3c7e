"""Predict-modality task files from a common dataset (both directions of a pair)."""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scmib.errors import ContractError, NotApplicable
from scmib.processing.split import subsample_by_cell_type, train_mask

#: Modalities of each direction: (input, target).
DIRECTIONS: dict[str, tuple[str, str]] = {
    "gex2adt": ("GEX", "ADT"),
    "adt2gex": ("ADT", "GEX"),
    "gex2atac": ("GEX", "ATAC"),
    "atac2gex": ("ATAC", "GEX"),
}


@dataclass
class PredictModalityFiles:
    train_mod1: ad.AnnData
    train_mod2: ad.AnnData
    test_mod1: ad.AnnData
    test_mod2: ad.AnnData


def _subset(
    adata: ad.AnnData,
    cells: np.ndarray,
    *,
    dataset_id: str,
    keep_labels: bool,
    features: np.ndarray | None = None,
) -> ad.AnnData:
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


def make_predict_modality(
    rna: ad.AnnData,
    mod2: ad.AnnData,
    direction: str,
    *,
    n_test_cells: int = 1000,
    n_target_peaks: int = 10_000,
    seed: int = 0,
) -> PredictModalityFiles:
    """Split a common dataset into the four predict-modality files for ``direction``.

    Test cells are the source's test split (``obs.is_train`` False, the NeurIPS
    site-4 cells) or held-out batches, subsampled to ``n_test_cells`` with
    probability ~ sqrt(1 / cell-type frequency). For GEX->ATAC the target is
    ``n_target_peaks`` random peaks among those with non-zero counts. Training
    files keep ``obs.cell_type`` (methods may use labels); test files do not.

    Raises :class:`NotApplicable` when the dataset lacks a modality of ``direction``.
    """
    source_mod, target_mod = DIRECTIONS[direction]
    by_modality = {rna.uns["modality"]: rna, mod2.uns["modality"]: mod2}
    if source_mod not in by_modality or target_mod not in by_modality:
        raise NotApplicable(
            f"{direction} needs {source_mod} and {target_mod}, dataset has {sorted(by_modality)}"
        )
    if not np.array_equal(rna.obs_names, mod2.obs_names):
        raise ValueError("rna and mod2 must hold the same cells in the same order")
    mod1, target = by_modality[source_mod], by_modality[target_mod]
    is_train = train_mask(rna.obs, seed)
    train_ix, test_pool = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    if len(train_ix) == 0 or len(test_pool) == 0:
        raise ValueError(f"split left {len(train_ix)} training and {len(test_pool)} test cells")
    labels = rna.obs["cell_type"].iloc[test_pool] if "cell_type" in rna.obs else None
    test_ix = test_pool[subsample_by_cell_type(labels, n_test_cells, len(test_pool), seed)]

    features = None
    if target_mod == "ATAC":
        open_peaks = np.flatnonzero(np.asarray(target.layers["counts"].sum(axis=0)).ravel() > 0)
        if len(open_peaks) > n_target_peaks:
            rng = np.random.default_rng(seed)
            open_peaks = np.sort(rng.choice(open_peaks, size=n_target_peaks, replace=False))
        features = open_peaks
    dataset_id = f"{rna.uns['dataset_id']}_{direction}"
    return PredictModalityFiles(
        train_mod1=_subset(mod1, train_ix, dataset_id=dataset_id, keep_labels=True),
        train_mod2=_subset(target, train_ix, dataset_id=dataset_id, keep_labels=True, features=features),
        test_mod1=_subset(mod1, test_ix, dataset_id=dataset_id, keep_labels=False),
        test_mod2=_subset(target, test_ix, dataset_id=dataset_id, keep_labels=False, features=features),
    )


def prediction_file(values, test_mod1: ad.AnnData, train_mod2: ad.AnnData) -> ad.AnnData:
    """Wrap predicted values (test cells x target features) as a prediction file.

    Obs names come from ``test_mod1`` and var names from ``train_mod2`` (the
    solution has the same ones); values go to ``layers["normalized"]``.
    """
    values = np.asarray(values.toarray() if sp.issparse(values) else values, dtype=np.float32)
    expected = (test_mod1.n_obs, train_mod2.n_vars)
    if values.shape != expected:
        raise ValueError(f"prediction has shape {values.shape}, expected {expected}")
    out = ad.AnnData(X=None, obs=test_mod1.obs[[]].copy(), var=train_mod2.var[[]].copy())
    out.layers["normalized"] = values
    out.uns["dataset_id"] = test_mod1.uns["dataset_id"]
    return out


def modality_of(adata: ad.AnnData) -> str:
    """GEX, ADT or ATAC: from ``uns["modality"]``, else the file's single ``var.feature_types``."""
    if "modality" in adata.uns:
        return str(adata.uns["modality"])
    if "feature_types" in adata.var:
        kinds = adata.var["feature_types"].astype(str).unique()
        if len(kinds) == 1:
            return str(kinds[0])
    raise ContractError(
        "cannot tell the modality: no uns['modality'] and no single var['feature_types'] value"
    )

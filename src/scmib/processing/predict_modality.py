"""Predict-modality task files from a common dataset (both directions of a pair)."""

from __future__ import annotations

from functools import partial

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scmib.data.filters import FilterLog
from scmib.errors import ContractError
from scmib.io import columns_with_positive_values
from scmib.processing.common import TaskFile, direction_modalities, task_subset
from scmib.processing.split import subsample_by_cell_type, train_test_cells


def make_predict_modality(
    rna: ad.AnnData,
    mod2: ad.AnnData,
    direction: str,
    *,
    n_test_cells: int = 1000,
    n_target_peaks: int = 10_000,
    seed: int = 0,
) -> dict[str, TaskFile]:
    """Split a common dataset into the four predict-modality files for ``direction``.

    Test cells are the source's test split (``obs.is_train`` False, the NeurIPS
    site-4 cells) or held-out batches, subsampled to ``n_test_cells`` with
    probability ~ sqrt(1 / cell-type frequency). For GEX->ATAC the target is
    ``n_target_peaks`` random peaks among those with non-zero counts. Training
    files keep ``obs.cell_type`` (methods may use labels); test files do not.

    Returns ``test_mod1``, ``test_mod2``, ``train_mod1`` and ``train_mod2`` by
    name; their layers are read from ``rna`` and ``mod2`` (in memory or on disk)
    only as each file is written.

    Raises :class:`NotApplicable` when the dataset lacks a modality of ``direction``.
    """
    mod1, target = direction_modalities(rna, mod2, direction)
    train_ix, test_pool = train_test_cells(rna.obs, seed)
    labels = rna.obs["cell_type"].iloc[test_pool] if "cell_type" in rna.obs else None
    test_ix = test_pool[subsample_by_cell_type(labels, n_test_cells, len(test_pool), seed)]

    features = None
    if target.uns["modality"] == "ATAC":
        open_peaks = columns_with_positive_values(target.layers["counts"])
        said = FilterLog()  # printed to the job's log: no peak leaves the target unsaid
        empty = target.n_vars - len(open_peaks)
        said.record("ATAC target peaks", target.n_vars, empty, "no counts in any cell")
        if len(open_peaks) > n_target_peaks:
            rng = np.random.default_rng(seed)
            why = f"the target is a seeded random {n_target_peaks:,} of the peaks with counts"
            said.record("ATAC target peaks", len(open_peaks), len(open_peaks) - n_target_peaks, why)
            open_peaks = np.sort(rng.choice(open_peaks, size=n_target_peaks, replace=False))
        features = open_peaks
    dataset_id = f"{rna.uns['dataset_id']}_{direction}"
    subset = partial(task_subset, dataset_id=dataset_id)
    return {
        "test_mod1": subset(mod1, test_ix, keep_labels=False),
        "test_mod2": subset(target, test_ix, keep_labels=False, features=features),
        "train_mod1": subset(mod1, train_ix, keep_labels=True),
        "train_mod2": subset(target, train_ix, keep_labels=True, features=features),
    }


def read_normalized_inputs(run) -> tuple[ad.AnnData, ad.AnnData, ad.AnnData]:
    """A method's ``(train_mod1, train_mod2, test_mod1)`` with only ``layers["normalized"]`` read
    (``run``: its :class:`~scmib.component.ComponentRun`); a competition-size ATAC file holds
    its counts too."""
    normalized = ("normalized",)
    return tuple(
        run.read(name, layers=normalized)
        for name in ("input_train_mod1", "input_train_mod2", "input_test_mod1")
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

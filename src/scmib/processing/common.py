"""Pieces every task processor shares: the modality directions and task-file subsets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scmib.errors import NotApplicable
from scmib.io import rows

#: Modalities of each direction: (mod1, mod2).
DIRECTIONS: dict[str, tuple[str, str]] = {
    "gex2adt": ("GEX", "ADT"),
    "adt2gex": ("ADT", "GEX"),
    "gex2atac": ("GEX", "ATAC"),
    "atac2gex": ("ATAC", "GEX"),
}


def direction_modalities(rna: ad.AnnData, mod2: ad.AnnData, direction: str) -> tuple[ad.AnnData, ad.AnnData]:
    """The common-dataset files that are mod1 and mod2 of ``direction`` (e.g. ``gex2adt``)."""
    return paired_modalities(rna, mod2, DIRECTIONS[direction], direction)


def paired_modalities(
    rna: ad.AnnData, mod2: ad.AnnData, modalities: tuple[str, str], task: str
) -> tuple[ad.AnnData, ad.AnnData]:
    """The common-dataset files holding ``modalities`` (first, second), in that order.

    Raises :class:`NotApplicable` (naming ``task``, a direction or pair) when the dataset lacks
    one of them, and ``ValueError`` when the two files do not hold the same cells in the same order.
    """
    first, second = modalities
    by_modality = {rna.uns["modality"]: rna, mod2.uns["modality"]: mod2}
    if first not in by_modality or second not in by_modality:
        raise NotApplicable(f"{task} needs {first} and {second}, dataset has {sorted(by_modality)}")
    if not np.array_equal(rna.obs_names, mod2.obs_names):
        raise ValueError("rna and mod2 must hold the same cells in the same order")
    return by_modality[first], by_modality[second]


@dataclass
class TaskFile:
    """A task file to write: its annotations (``obs``, ``var``, ``uns``) in ``adata``, and its
    layers, each read from the common dataset only when it is written.

    Pass both to :meth:`scmib.component.ComponentRun.write` (``run.write(name,
    file.adata, file.layers)``): layers are made and written one at a time, so a
    competition-size ATAC task file (two layers of 220 million values) is never
    held in memory whole. :meth:`load` makes it an ordinary AnnData.
    """

    adata: ad.AnnData
    layers: dict[str, Callable[[], sp.csr_matrix]]

    def load(self) -> ad.AnnData:
        """The whole file in memory (its layers made now)."""
        adata = self.adata.copy()
        for name, make in self.layers.items():
            adata.layers[name] = make()
        return adata


def task_subset(
    adata: ad.AnnData,
    cells: np.ndarray,
    *,
    dataset_id: str,
    keep_labels: bool,
    features: np.ndarray | None = None,
) -> TaskFile:
    """Cells (and optionally features) of a common-dataset file as a task file.

    Keeps ``counts`` and ``normalized`` (sparse, made when written: ``adata``'s
    layers may stay on disk, see :func:`scmib.io.read_h5ad` ``lazy``),
    ``obs.batch``/``size_factors``, ``obs.cell_type`` only when ``keep_labels``,
    and ``var.feature_types``.
    """
    keep_obs = ["batch", "size_factors"] + (["cell_type"] if keep_labels else [])
    obs = adata.obs.iloc[cells][[c for c in keep_obs if c in adata.obs]].copy()
    var = adata.var[["feature_types"]] if features is None else adata.var.iloc[features][["feature_types"]]
    annotations = ad.AnnData(
        X=None, obs=_drop_unused_categories(obs), var=_drop_unused_categories(var.copy())
    )
    annotations.uns = {
        "dataset_id": dataset_id,
        "modality": adata.uns["modality"],
        "organism": adata.uns.get("organism", "unknown"),
    }
    cells = np.asarray(cells)
    layers = {name: partial(rows, adata.layers[name], cells, features) for name in ("counts", "normalized")}
    return TaskFile(annotations, layers)


def _drop_unused_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories no row keeps are dropped, as an AnnData view of the rows would."""
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].cat.remove_unused_categories()
    return frame

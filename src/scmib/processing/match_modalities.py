"""Match-modalities task files from a common dataset, as the competition made them.

Both splits get three files: ``mod1`` (cells in their original order and
names), ``mod2`` (the same cells' other modality, rows shuffled and renamed
``cell_1..n``) and ``sol`` (the N x N pairing, ``uns.pairing_ix``).
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scmib.processing.common import TaskFile, direction_modalities, task_subset
from scmib.processing.split import subsample_by_cell_type, train_test_cells


@dataclass
class MatchModalitiesFiles:
    """The six files; mod1 and mod2 read their layers from the common dataset as they are written."""

    train_mod1: TaskFile
    train_mod2: TaskFile
    train_sol: ad.AnnData
    test_mod1: TaskFile
    test_mod2: TaskFile
    test_sol: ad.AnnData


def pairing_matrix(pairing_ix: np.ndarray) -> sp.csr_matrix:
    """The N x N solution of a shuffle: 1 at (i, j) where mod2 row j is original cell i.

    ``pairing_ix[j]`` is the original position of shuffled row j, so the
    matrix is 1 at ``(pairing_ix[j], j)`` and ``X[:, argsort(pairing_ix)]`` is the identity.
    """
    n = len(pairing_ix)
    return sp.csr_matrix((np.ones(n, dtype=np.float32), (pairing_ix, np.arange(n))), shape=(n, n))


def shuffled_split(
    mod1: ad.AnnData,
    mod2: ad.AnnData,
    cells: np.ndarray,
    *,
    dataset_id: str,
    train: bool,
    rng: np.random.Generator,
) -> tuple[TaskFile, TaskFile, ad.AnnData]:
    """``(mod1, shuffled mod2, solution)`` files of ``cells``.

    Training mod1 keeps ``obs.cell_type`` (methods may use labels); the solution
    keeps batch and cell type of every mod1 cell (for metrics); mod2 keeps only
    its batch, which the competition gave methods too.
    """
    first = task_subset(mod1, cells, dataset_id=dataset_id, keep_labels=train)
    pairing_ix = rng.permutation(len(cells))
    second = task_subset(mod2, cells[pairing_ix], dataset_id=dataset_id, keep_labels=False)
    second.adata.obs_names = [f"cell_{i + 1}" for i in range(len(cells))]
    labels = [c for c in ("batch", "cell_type") if c in mod1.obs]
    solution = ad.AnnData(
        X=pairing_matrix(pairing_ix),
        obs=mod1.obs.iloc[cells][labels].copy(),
        var=pd.DataFrame(index=second.adata.obs_names.copy()),
    )
    solution.uns = {"dataset_id": dataset_id, "pairing_ix": pairing_ix.astype(np.int64)}
    return first, second, solution


def make_match_modalities(
    rna: ad.AnnData, mod2: ad.AnnData, direction: str, *, n_test_cells: int = 0, seed: int = 0
) -> MatchModalitiesFiles:
    """Split a common dataset into the six match-modalities files for ``direction``.

    Test cells are the source's test split (``obs.is_train`` False, the NeurIPS
    site-4 cells) or a seeded quarter of the batches; all of them are kept unless
    ``n_test_cells`` > 0 caps them (uniform draw). Every feature of both modalities is kept.

    Raises :class:`NotApplicable` when the dataset lacks a modality of ``direction``.
    """
    first, second = direction_modalities(rna, mod2, direction)
    train_ix, test_ix = train_test_cells(rna.obs, seed)
    if n_test_cells > 0:
        test_ix = test_ix[subsample_by_cell_type(None, n_test_cells, len(test_ix), seed)]
    dataset_id = f"{rna.uns['dataset_id']}_{direction}"
    rng = np.random.default_rng(seed)
    train = shuffled_split(first, second, train_ix, dataset_id=dataset_id, train=True, rng=rng)
    test = shuffled_split(first, second, test_ix, dataset_id=dataset_id, train=False, rng=rng)
    return MatchModalitiesFiles(*train, *test)

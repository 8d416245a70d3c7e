"""What every match-modalities method starts from: the files, re-paired, reduced per modality."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scmib.component import ComponentRun
from scmib.io import keep_layers
from scmib.methods.features import embedding_layer, modality_embedding
from scmib.methods.matching import batch_groups, match_within_groups, matching_file, training_order


@dataclass
class PairedReductions:
    """Per-modality reductions (``train1``/``test1`` of mod1, ``train2``/``test2`` of mod2), the
    training rows paired, plus the files a prediction is built against."""

    train_mod1: ad.AnnData
    test_mod1: ad.AnnData
    test_mod2: ad.AnnData
    train1: np.ndarray
    test1: np.ndarray
    train2: np.ndarray
    test2: np.ndarray

    @property
    def train_batches(self) -> np.ndarray:
        return self.train_mod1.obs["batch"].astype(str).to_numpy()

    def prediction(self, block: Callable[[np.ndarray, np.ndarray], sp.spmatrix]) -> ad.AnnData:
        """The prediction file from ``block(test mod1 rows, test mod2 rows)`` called per batch."""
        shape = (self.test_mod1.n_obs, self.test_mod2.n_obs)
        weights = match_within_groups(batch_groups(self.test_mod1, self.test_mod2), shape, block)
        return matching_file(weights, self.test_mod1, self.test_mod2)


def read_reduced_layer(run: ComponentRun, name: str) -> ad.AnnData:
    """Input ``name`` with only the layer :func:`modality_embedding` reduces, left on disk."""
    adata = run.read(name, lazy=True)
    return keep_layers(adata, [embedding_layer(adata)], to_memory=False)


def read_paired_reductions(run: ComponentRun, n_components: int, seed: int) -> PairedReductions:
    """Read a method's five inputs, pair the training mod2 rows, and reduce each modality
    (:func:`modality_embedding`, fitted on training and test cells together)."""
    # The reduced layers stay on disk and are read once into the stacked matrix the reduction
    # works on: a competition-size ATAC file's training and test counts are 2 GB in memory.
    train_mod1, test_mod1, test_mod2, train_mod2 = (
        read_reduced_layer(run, f"input_{n}") for n in ("train_mod1", "test_mod1", "test_mod2", "train_mod2")
    )
    train1, test1 = modality_embedding(train_mod1, test_mod1, n_components, seed)
    # Reduced in stored order, then paired: the reduction treats rows alike (per-cell TF and
    # z-score, SVD), so this equals reducing the re-paired rows without copying the matrix.
    train2, test2 = modality_embedding(train_mod2, test_mod2, n_components, seed)
    train2 = train2[training_order(run.read("input_train_sol"))]
    return PairedReductions(train_mod1, test_mod1, test_mod2, train1, test1, train2, test2)

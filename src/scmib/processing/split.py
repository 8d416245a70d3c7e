"""Train/test splits and subsampling shared by every task's processor."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

#: The competition's site split (benchmark.md): sites 1-3 train and validate, site 4 tests.
NEURIPS_TRAIN_BATCHES = ("s1d1", "s1d3", "s2d1", "s2d4", "s2d5", "s3d1", "s3d3", "s3d6", "s3d10")
NEURIPS_VALID_BATCHES = ("s1d2", "s3d7")
NEURIPS_TEST_BATCHES = ("s4d1", "s4d8", "s4d9")


def held_out_batches(batches: pd.Series, seed: int, fraction: float = 0.25) -> list[str]:
    """A seeded choice of about ``fraction`` of the batches (at least one, never all)."""
    names = sorted(pd.unique(batches.astype(str)))
    if len(names) < 2:
        raise ValueError(f"need at least two batches to hold one out, found {names}")
    n_test = min(len(names) - 1, max(1, round(fraction * len(names))))
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(names, size=n_test, replace=False).tolist())


#: With one batch, this share of the cells (seeded) is the test split.
TEST_SHARE_ONE_BATCH = 0.25


def train_mask(obs: pd.DataFrame, seed: int) -> np.ndarray:
    """Which cells train: the source's ``is_train`` where it has one, else held-out batches; with a
    single batch, a seeded random :data:`TEST_SHARE_ONE_BATCH` of the cells test (said on stderr)."""
    if "is_train" in obs:
        return obs["is_train"].astype(bool).to_numpy()
    if obs["batch"].nunique() < 2:
        rng = np.random.default_rng(seed)
        n_test = max(1, round(TEST_SHARE_ONE_BATCH * len(obs)))
        is_train = np.ones(len(obs), dtype=bool)
        is_train[rng.choice(len(obs), size=n_test, replace=False)] = False
        print(
            f"split: one batch, so a seeded random {n_test:,} of {len(obs):,} cells are the test cells "
            f"(seed {seed})",
            file=sys.stderr,
        )
        return is_train
    test = held_out_batches(obs["batch"], seed)
    print(f"split: held-out batches {test} are the test cells (seed {seed})", file=sys.stderr)
    return ~obs["batch"].astype(str).isin(test).to_numpy()


def train_test_cells(obs: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and the test cells (see :func:`train_mask`); neither may be empty."""
    is_train = train_mask(obs, seed)
    train_ix, test_ix = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    if len(train_ix) == 0 or len(test_ix) == 0:
        raise ValueError(f"split left {len(train_ix)} training and {len(test_ix)} test cells")
    return train_ix, test_ix


def subsample_by_cell_type(cell_types: pd.Series | None, n: int, n_cells: int, seed: int) -> np.ndarray:
    """Indices of ``n`` cells drawn without replacement, probability ~ sqrt(1 / type frequency).

    This is how the competition drew its 1,000 test cells per subtask, so rare
    cell types are over-represented. Without labels the draw is uniform; with
    ``n >= n_cells`` every cell is kept. Returned indices are sorted.
    """
    if n >= n_cells:
        return np.arange(n_cells)
    rng = np.random.default_rng(seed)
    if cell_types is None:
        weights = np.ones(n_cells)
    else:
        freq = cell_types.astype(str).map(cell_types.astype(str).value_counts(normalize=True))
        weights = np.sqrt(1.0 / freq.to_numpy(dtype=np.float64))
    chosen = rng.choice(n_cells, size=n, replace=False, p=weights / weights.sum())
    return np.sort(chosen)


def half_batch_splits(batches: pd.Series, n_splits: int, seed: int) -> list[np.ndarray]:
    """``n_splits`` index arrays of cells: Guanlab's ensemble of models on halves of the batches.

    As Guanlab's code does, each round shuffles the batches and splits them into two
    complementary halves, the first ``n_batches // 2`` and the rest (so both halves of every
    batch's cells are used once a round); with a single batch the first half would be empty and
    both models of the round train on every cell. Rounds go on until there are ``n_splits``
    (Guanlab: 5 rounds, 10 models).
    """
    rng = np.random.default_rng(seed)
    labels = batches.astype(str).to_numpy()
    names = np.unique(labels)
    splits: list[np.ndarray] = []
    while len(splits) < n_splits:
        order = rng.permutation(names)
        half = len(order) // 2
        for chosen in (order[:half] if half else order[:1], order[half:]):
            splits.append(np.flatnonzero(np.isin(labels, chosen)))
    return splits[:n_splits]

"""Bootstrap resamples of test cells, shared by every method of a dataset, and intervals from them.

Every (task, dataset, variant) gets its own seeded resamples of its cells, the same for every
method, control and seed, so differences between methods are paired: both are scored on the same
resampled cells. A resample is a vector of counts (how often each cell was drawn), made in blocks
so memory stays at ``block x cells`` doubles whatever the number of resamples.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np

#: Resamples per dataset (the percentile interval's 2.5 % and 97.5 % rest on 25 values each).
N_RESAMPLES = 1000
#: Resamples drawn at once (x cells doubles: 100 x 60,000 is 48 MB).
BLOCK = 100
#: Two-sided level of every interval.
LEVEL = 0.95


def stable_seed(*names: str) -> int:
    """A seed from names (unlike ``hash()``, the same in every process and on every machine)."""
    digest = hashlib.sha256("\0".join(names).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def resample_counts(n_cells: int, n_resamples: int, seed: int, block: int = BLOCK) -> Iterator[np.ndarray]:
    """Blocks of resamples (``block x n_cells`` counts, each row summing to ``n_cells``), drawn with
    replacement; the same blocks for the same arguments."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        drawn = rng.integers(0, n_cells, size=(size, n_cells))
        offsets = np.arange(size)[:, None] * n_cells
        counts = np.bincount((drawn + offsets).ravel(), minlength=size * n_cells)
        yield counts.reshape(size, n_cells).astype(np.float64)


def interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of ``replicates`` (NaN, NaN when none is finite)."""
    finite = np.asarray(replicates, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1 - level) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)

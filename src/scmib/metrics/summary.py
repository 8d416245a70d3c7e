"""A task's summary metric (the competition's ranking score) from the values of its parts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def summary_value(applicable_parts: Sequence[float] | np.ndarray) -> float:
    """The plain mean of the parts that apply to the dataset (those that do not, e.g. cell-cycle
    conservation without cell-cycle scores, are left out by the caller); NaN when a part that
    applies is NaN (it failed) or when none applies."""
    parts = np.asarray(applicable_parts, dtype=np.float64)
    return float(parts.mean()) if parts.size else np.nan

"""Per-cell contributions: a metric written as an average over cells, so that its uncertainty can be
bootstrapped over the test cells without computing the metric again.

A metric with a per-cell form is ``transform(mean_g(mean_{i in g} c_i))``: the mean of the cells'
contributions ``c_i`` (within each group ``g`` first, then over groups, when the metric averages
per cell type), then a transform (``sqrt`` for RMSE). A resample of the cells is a vector of
counts ``w_i`` (how often each cell was drawn), and the metric of the resample is the same formula
with weighted means, one matrix product for a whole block of resamples. Cells whose contribution
is NaN do not count (a cell type that the metric skips).

Metrics without such a form (NMI and ARI after clustering, AUPR over all pairs, cell-cycle and
trajectory conservation, the medians of LISI) write none; their uncertainty is their seed spread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd

Transform = Literal["identity", "sqrt"]
#: ``uns`` key of a score file that says which ``obs`` columns hold contributions, and how they add up.
UNS_KEY = "contributions"
#: The value computed from the contributions must equal the metric's own to this relative tolerance.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Contributions:
    """``values``: one per cell (NaN: the cell does not count); ``groups``: a label per cell when
    the metric is the mean over labels of each label's mean (else None)."""

    values: np.ndarray
    groups: np.ndarray | None = None
    transform: Transform = "identity"

    def resampled(self, weights: np.ndarray) -> np.ndarray:
        """The metric under each row of ``weights`` (resamples x cells, counts per cell): one value
        per resample; NaN where a resample leaves no cell that counts."""
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        counted = ~np.isnan(self.values)
        values = np.where(counted, self.values, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.groups is None:
                means = (weights @ values) / (weights @ counted.astype(np.float64))
            else:
                codes, _ = pd.factorize(np.asarray(self.groups).astype(str))
                indicators = np.zeros((len(values), codes.max() + 1))
                indicators[np.flatnonzero(counted), codes[counted]] = 1.0
                per_group = (weights @ (indicators * values[:, None])) / (weights @ indicators)
                per_group = per_group[:, indicators.any(axis=0)]  # groups the metric skips entirely
                means = np.full(len(weights), np.nan)
                seen = ~np.isnan(per_group).all(axis=1)
                means[seen] = np.nanmean(per_group[seen], axis=1)
        return np.sqrt(means) if self.transform == "sqrt" else means

    @property
    def value(self) -> float:
        """The metric over every cell once."""
        return float(self.resampled(np.ones((1, len(self.values))))[0])


def attach(score: ad.AnnData, cells: Sequence[str], contributions: dict[str, Contributions],
           values: dict[str, float]) -> ad.AnnData:  # fmt: skip
    """A score file with one ``obs`` row per cell and a column of contributions per metric.

    Each metric's contributions must add up to its value (:data:`TOLERANCE`): a check of the
    per-cell form on every run, not only in the tests.
    """
    obs = pd.DataFrame(index=pd.Index(np.asarray(cells).astype(str), name=None))
    described = {}
    for name, part in contributions.items():
        if len(part.values) != len(obs):
            raise ValueError(f"{name}: {len(part.values)} contributions for {len(obs)} cells")
        recomputed, reported = part.value, float(values[name])
        if not np.isclose(recomputed, reported, rtol=TOLERANCE, atol=1e-12, equal_nan=True):
            raise ValueError(f"{name}: per-cell contributions give {recomputed!r}, the metric {reported!r}")
        obs[name] = np.asarray(part.values, dtype=np.float64)
        groups = ""
        if part.groups is not None:
            groups = f"groups_{name}"
            obs[groups] = pd.Categorical(np.asarray(part.groups).astype(str))
        described[name] = {"transform": part.transform, "groups": groups}
    out = ad.AnnData(obs=obs, uns=dict(score.uns))
    out.uns[UNS_KEY] = described
    return out


def read(score: ad.AnnData) -> dict[str, Contributions]:
    """The contributions a score file holds, by metric id (empty for a metric without a per-cell form)."""
    found = {}
    for name, described in dict(score.uns.get(UNS_KEY, {})).items():
        groups = str(described.get("groups", ""))
        found[str(name)] = Contributions(
            values=score.obs[name].to_numpy(dtype=np.float64),
            groups=score.obs[groups].astype(str).to_numpy() if groups else None,
            transform=str(described.get("transform", "identity")),  # type: ignore[arg-type]
        )
    return found

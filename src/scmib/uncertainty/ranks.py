"""How sure a ranking is: each method's score under resampled cells and seeds, the probability
that it is the best, and whether it differs from the next method by more than the noise.

Inputs are replicate arrays (one value per bootstrap resample, :mod:`scmib.uncertainty.bootstrap`),
made on the same resamples for every method, so every comparison is paired.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scmib.uncertainty.bootstrap import LEVEL, N_RESAMPLES, interval

RANK_COLUMNS = [
    "rank",
    "method",
    "mean_score",
    "ci_low",
    "ci_high",
    "p_best",
    "next_method",
    "diff_to_next",
    "diff_ci_low",
    "diff_ci_high",
    "significant",
    "tied_group",
]


def scaled_replicates(
    replicates: dict[str, np.ndarray], controls: list[str], maximize: bool
) -> dict[str, np.ndarray]:
    """Each replicate scaled by the controls of the same replicate, as the results table scales the
    values: ``(value - worst control) / (best control - worst control)``, NaN where they coincide."""
    stacked = np.vstack([replicates[c] for c in controls])
    with np.errstate(invalid="ignore"):
        best = np.nanmax(stacked, axis=0) if maximize else np.nanmin(stacked, axis=0)
        worst = np.nanmin(stacked, axis=0) if maximize else np.nanmax(stacked, axis=0)
    span = best - worst
    # Coinciding controls by the point estimate's own test (scmib.runner.results.scale).
    span = np.where(np.isclose(best, worst) | np.isnan(span), np.nan, span)
    return {name: (values - worst) / span for name, values in replicates.items()}


def score_replicates(scaled_by_metric: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per method, the mean over metrics of the scaled replicates clipped to [0, 1], a missing value
    counting 0: the results table's mean score, once per replicate. As there, a metric whose
    controls coincide (every method NaN in that replicate) is left out of that replicate's mean."""
    names = dict.fromkeys(name for part in scaled_by_metric for name in part)
    missing = np.full(N_RESAMPLES, np.nan)
    scalable = np.array([np.any([~np.isnan(v) for v in part.values()], axis=0) for part in scaled_by_metric])
    n_metrics = scalable.sum(axis=0).astype(float)
    n_metrics[n_metrics == 0] = np.nan
    return {
        name: np.sum(
            [np.nan_to_num(np.clip(part.get(name, missing), 0, 1), nan=0.0) for part in scaled_by_metric], 0
        )
        / n_metrics
        for name in names
    }


def probability_best(replicates: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of replicates in which each method scores highest (a tie shares the replicate)."""
    names = list(replicates)
    stacked = np.vstack([replicates[n] for n in names])
    top = stacked == stacked.max(axis=0)
    shares = (top / top.sum(axis=0)).mean(axis=1)
    return dict(zip(names, shares.astype(float).tolist(), strict=True))


def rank_table(
    point: dict[str, float], replicates: dict[str, np.ndarray], level: float = LEVEL
) -> pd.DataFrame:
    """Methods ranked by their ``point`` scores (higher is better), with each score's interval, the
    probability of being best, and the paired difference to the next method.

    The difference is significant when its interval excludes 0. Methods share a ``tied_group``
    (numbered from 1 at the top) when no two of them differ significantly: going down the ranks, a
    method joins the group above it if its paired difference to every member is not significant,
    and starts the next group otherwise. Within a group the order is not supported by the data.
    """
    order = sorted(point, key=lambda name: (-point[name], name))
    best = probability_best({name: replicates[name] for name in order}) if order else {}
    rows, group, members = [], 1, []
    for rank, name in enumerate(order, start=1):
        if members and any(_differ(replicates[m], replicates[name], level) for m in members):
            group, members = group + 1, []
        members.append(name)
        low, high = interval(replicates[name], level)
        row = {"rank": rank, "method": name, "mean_score": point[name], "ci_low": low, "ci_high": high}
        row.update(p_best=best[name], next_method="", significant=pd.NA, tied_group=group)
        if rank < len(order):
            following = order[rank]
            difference = replicates[name] - replicates[following]
            diff_low, diff_high = interval(difference, level)
            row.update(
                next_method=following,
                diff_to_next=point[name] - point[following],
                diff_ci_low=diff_low,
                diff_ci_high=diff_high,
                significant=_excludes_0(diff_low, diff_high),
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=RANK_COLUMNS)


def _excludes_0(low: float, high: float) -> bool:
    return bool(low > 0 or high < 0)


def _differ(first: np.ndarray, second: np.ndarray, level: float) -> bool:
    """Whether the paired difference's interval excludes 0."""
    return _excludes_0(*interval(first - second, level))

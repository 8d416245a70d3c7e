"""Bootstrap replicates of the results table's method scores, their intervals and the ranks table.

A replicate of a method's score on one (task, dataset, variant) is the score it would get on one
resample of the test cells and one of its seeds (drawn at random per replicate): the metrics'
replicates on that resample (a metric without a per-cell form keeps that seed's value), scaled
by the controls' replicates on the same resample (each control's mean over its seeds, as the
point estimate scales), clipped and averaged as
:func:`scmib.runner.results.method_scores` does. So the interval covers both the test cells that
happened to be drawn and the method's seed; comparisons between methods are paired.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scmib.runner.results import scored
from scmib.uncertainty.bootstrap import N_RESAMPLES, interval, stable_seed
from scmib.uncertainty.ranks import RANK_COLUMNS, rank_table, scaled_replicates, score_replicates

COLUMN_KEYS = ["task", "dataset", "variant"]
#: ``dataset`` and ``variant`` of the ranks over all of a task's datasets.
OVERALL = "all"


def _seed_picks(names: list[str], seeds: dict[str, int], group: tuple) -> dict[str, np.ndarray]:
    """For each method, which of its seeds each replicate uses (seeded by the dataset and method)."""
    return {
        name: np.random.default_rng(stable_seed(*map(str, group), name, "seed")).integers(
            0, seeds[name], N_RESAMPLES
        )
        for name in names
    }


def _seed_key(seed) -> int:
    return -1 if pd.isna(seed) else int(seed)


def _seeds(rows: pd.DataFrame) -> list[int]:
    """The seeds of a method's rows, in order (-1 for a deterministic method's one run)."""
    return sorted({_seed_key(seed) for seed in rows["seed"]})


def column_replicates(
    table: pd.DataFrame, replicates: dict[int, np.ndarray]
) -> dict[tuple, dict[str, np.ndarray]]:
    """Score replicates per (task, dataset, variant) and method (controls included)."""
    table = table[scored(table)]
    found = {}
    for group, part in table.groupby(COLUMN_KEYS, sort=False):
        scalable = part.groupby("metric", sort=False)["scaled"].apply(lambda s: s.notna().any())
        metrics = [m for m, ok in scalable.items() if ok]
        if not metrics:
            continue
        names = list(pd.unique(part["method"]))
        kinds = part.groupby("method")["method_kind"].first()
        # Each method's seeds over all its rows: a metric missing a seed's row counts 0 there.
        seeds = {name: _seeds(part[part["method"] == name]) for name in names}
        picks = _seed_picks(names, {name: len(found) for name, found in seeds.items()}, group)
        scaled = []
        for metric in metrics:
            rows = part[part["metric"] == metric]
            by_method = {}
            for name, runs in rows.groupby("method", sort=False):
                by_seed = {_seed_key(seed): row for row, seed in runs["seed"].items()}
                stacked = np.vstack(
                    [
                        replicates.get(row, np.full(N_RESAMPLES, runs.loc[row, "value"]))
                        if (row := by_seed.get(seed)) is not None
                        else np.full(N_RESAMPLES, np.nan)
                        for seed in seeds[name]
                    ]
                )
                if kinds[name] == "control_method":
                    # As the point estimate scales: by each control's mean over its seeds.
                    runs = (~np.isnan(stacked)).sum(axis=0)
                    total = np.nansum(stacked, axis=0)
                    by_method[name] = np.where(runs > 0, total / np.maximum(runs, 1), np.nan)
                else:
                    by_method[name] = stacked[picks[name], np.arange(N_RESAMPLES)]
            controls = [name for name in by_method if kinds[name] == "control_method"]
            scaled.append(scaled_replicates(by_method, controls, bool(rows["maximize"].iloc[0])))
        found[group] = score_replicates(scaled)
    return found


def score_intervals(scores: pd.DataFrame, replicates: dict[tuple, dict[str, np.ndarray]]) -> pd.DataFrame:
    """``scores`` (:func:`~scmib.runner.results.method_scores`) with each score's interval."""
    lows, highs = [], []
    for _, row in scores.iterrows():
        values = replicates.get(tuple(row[COLUMN_KEYS]), {}).get(row["method"])
        scored = values is not None and not np.isnan(row["mean_score"])  # no score: no interval
        low, high = interval(values) if scored else (np.nan, np.nan)
        lows.append(low)
        highs.append(high)
    return scores.assign(ci_low=lows, ci_high=highs)


def ranks(
    scores: pd.DataFrame, totals: pd.DataFrame, replicates: dict[tuple, dict[str, np.ndarray]]
) -> pd.DataFrame:
    """``ranks.tsv``: per (task, dataset, variant), and per task over all its datasets
    (``dataset`` and ``variant`` ``all``, ranked by the summary's mean score), the methods (not the
    controls) that ran there, ranked, with intervals, the probability of being best and whether each
    differs significantly from the next (:func:`~scmib.uncertainty.ranks.rank_table`)."""
    methods = scores[(scores["method_kind"] == "method") & (scores["status"] != "not_applicable")]
    tables = []
    for group, part in methods.groupby(COLUMN_KEYS, sort=False):
        if group not in replicates:
            continue
        point = dict(zip(part["method"], part["mean_score"], strict=True))
        table = rank_table(point, {name: replicates[group][name] for name in point})
        tables.append(table.assign(**dict(zip(COLUMN_KEYS, group, strict=True))))
    for task, part in methods.groupby("task", sort=False):
        columns = [g for g in replicates if g[0] == task]
        runs: dict[str, list[np.ndarray]] = {}
        for _, row in part.iterrows():
            group = tuple(row[COLUMN_KEYS])
            if group in columns and row["method"] in replicates[group]:
                runs.setdefault(row["method"], []).append(replicates[group][row["method"]])
        overall = totals[(totals["task"] == task) & (totals["method_kind"] == "method")]
        point = {
            name: float(score)
            for name, score in zip(overall["method"], overall["mean_score"], strict=True)
            if name in runs and np.isfinite(score)
        }
        if point:
            table = rank_table(point, {name: np.mean(runs[name], axis=0) for name in point})
            tables.append(table.assign(task=task, dataset=OVERALL, variant=OVERALL))
    columns = [*COLUMN_KEYS, *RANK_COLUMNS]
    return pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(columns=columns)

"""One leaderboard per task: methods ranked by their mean scaled score, controls apart.

Every number comes from the run's results tables: ``overall`` and the
resource columns are ``summary.tsv``'s, the per-dataset columns
``scores.tsv``'s, and a per-metric column is the mean over the task's datasets
of that metric's control-scaled score (clipped to [0, 1], a failed run
counting 0), as the per-dataset scores average it. A cell without a value
says why on hover (not applicable: the reason; failed: the log's last line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scmib.runner.execute import OK
from scmib.runner.results import method_scores, summary

#: Column kinds, in the order the leaderboard shows them.
OVERALL, DATASET, METRIC, TIME, MEMORY = "overall", "dataset", "metric", "time", "memory"
TIME_COLUMN, MEMORY_COLUMN = "wall time (s)", "peak memory (MB)"


@dataclass
class Leaderboard:
    """One task's board. ``values`` and ``notes`` (hover text) have one row per method, methods in
    rank order then controls in rank order; ``kinds`` says which rows are controls and
    ``columns`` the kind of each column."""

    task: str
    values: pd.DataFrame
    notes: pd.DataFrame
    kinds: pd.Series
    columns: dict[str, str]
    scores: pd.DataFrame
    """The task's rows of ``scores.tsv`` (for the report's pictures)."""


def last_line(message: object) -> str:
    """The last line of a job's message (for a failure: the error itself), at most 300 characters."""
    lines = str(message).strip().splitlines()
    return lines[-1][-300:] if lines else ""


def _why_missing(status: str, message: str) -> str:
    """``"failed: <the log's last line>"``, ``"not applicable: <why>"``."""
    reason = re.sub(r"^\[[^\]]+\]\s*", "", last_line(message))  # the component's name is the row's
    words = status.replace("_", " ")
    if reason.startswith(words):
        return reason
    return f"{words}: {reason}" if reason else words


def dataset_column(dataset: str, variant: str) -> str:
    return f"{dataset} {variant}".strip()


def leaderboards(
    results: pd.DataFrame, runs: pd.DataFrame, metric_labels: dict[str, str]
) -> list[Leaderboard]:
    """The boards of every task in ``results`` (the run's ``results.tsv``), given its ``runs.tsv``
    (for why a job did not finish) and the metrics' labels (``task/metric`` -> label)."""
    scores = method_scores(results)
    totals = summary(results)
    method_jobs = runs[runs["stage"].isin(["method", "control_method"])]
    reasons = {
        (r.task, r.dataset, r.variant, r.method): _why_missing(r.status, r.message)
        for r in method_jobs.itertuples()
    }
    return [
        _board(
            task,
            results[results["task"] == task],
            scores[scores["task"] == task],
            totals[totals["task"] == task],
            reasons,
            metric_labels,
        )
        for task in results["task"].unique()
    ]


def _board(
    task: str,
    results: pd.DataFrame,
    scores: pd.DataFrame,
    totals: pd.DataFrame,
    reasons: dict[tuple, str],
    metric_labels: dict[str, str],
) -> Leaderboard:
    totals = totals.set_index("method")
    values = pd.DataFrame(index=totals.index, dtype=float)
    notes = pd.DataFrame(index=totals.index, dtype=object)
    columns: dict[str, str] = {OVERALL: OVERALL}
    values[OVERALL] = totals["mean_score"]
    notes[OVERALL] = pd.Series(
        [
            f"mean over {n - na} dataset(s) it applies to" if n > na else "applies to no dataset"
            for n, na in zip(totals["datasets"], totals["not_applicable"], strict=True)
        ],
        index=totals.index,
    )
    for (dataset, variant), part in scores.groupby(["dataset", "variant"], sort=True):
        column = dataset_column(dataset, variant)
        columns[column] = DATASET
        part = part.set_index("method")
        ok = part["status"].isin(OK)
        values[column] = part["mean_score"].where(ok)
        # A Series, aligned by method (the board's rows are in another order).
        notes[column] = pd.Series(
            [
                f"{m}: mean scaled score {s:.4f}" if good else reasons.get((task, dataset, variant, m), st)
                for m, s, good, st in zip(part.index, part["mean_score"], ok, part["status"], strict=True)
            ],
            index=part.index,
        )
    for metric, part in results.groupby("metric", sort=False):
        if part["metric_status"].eq("derived").all() or part["scaled"].isna().all():
            continue  # a summary metric restates its parts; an unscalable one has no score
        applies = (part["status"] != "not_applicable") & (part["metric_status"] != "not_applicable")
        part = part.assign(score=part["scaled"].clip(0, 1).fillna(0.0).where(applies))
        column = metric_labels.get(f"{task}/{metric}", metric)
        columns[column] = METRIC
        values[column] = part.groupby("method")["score"].mean()
        notes[column] = part.groupby("method").apply(_metric_note, include_groups=False)
    columns[TIME_COLUMN], columns[MEMORY_COLUMN] = TIME, MEMORY
    values[TIME_COLUMN] = totals["median_time_s"]
    values[MEMORY_COLUMN] = totals["max_memory_mb"]
    notes[TIME_COLUMN] = "median over datasets of the method's own job"
    notes[MEMORY_COLUMN] = "largest over datasets of the method's own job"
    kinds = totals["method_kind"]
    order = (
        pd.DataFrame({"control": kinds == "control_method", "score": values[OVERALL].fillna(-np.inf)})
        .sort_values(["control", "score"], ascending=[True, False], kind="stable")
        .index
    )
    return Leaderboard(task, values.loc[order], notes.loc[order], kinds.loc[order], columns, scores)


def _metric_note(group: pd.DataFrame) -> str:
    parts = []
    for row in group.itertuples():
        where = dataset_column(row.dataset, row.variant)
        if row.status == "not_applicable" or row.metric_status == "not_applicable":
            parts.append(f"{where}: not applicable")
        elif np.isfinite(row.value):
            parts.append(f"{where}: {row.value:.4g} (scaled {row.scaled:.3f})")
        else:
            parts.append(f"{where}: no value ({row.status}, counted 0)")
    return "; ".join(parts)

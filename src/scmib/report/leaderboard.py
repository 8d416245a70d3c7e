"""One leaderboard per task: methods ranked by their mean scaled score, controls apart.

Every number comes from the run's results tables: ``overall`` and the
resource columns are ``summary.tsv``'s, the per-dataset columns
``scores.tsv``'s, and a per-metric column is the mean over the task's datasets
(where it can be scaled) of that metric's part of each dataset's score
(:func:`~scmib.runner.results.metric_scores`: clipped to [0, 1] per seed, a
failed run counting 0, then averaged over seeds), as the scores take it. A cell without a value
says why on hover (not applicable: the reason; failed: the log's last line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scmib.runner.execute import OK
from scmib.runner.results import method_scores, metric_scores, scored, seed_means, summary
from scmib.uncertainty.scores import OVERALL as ALL_DATASETS

#: Why a dataset's score cell is blank though the method ran.
UNSCALED = "not scaled: the controls span no range here (see their rows), so it is left out of the overall"
#: Why a method has no score cell for a dataset: its spec's ``info.modality_pairs`` leave the variant out.
NOT_PLANNED = "not run here: the method does not take this variant's modalities (its info.modality_pairs)"
#: Column kinds, in the order the leaderboard shows them.
OVERALL, DATASET, METRIC, TIME, MEMORY = "overall", "dataset", "metric", "time", "memory"
P_BEST, GROUP = "p_best", "group"
TIME_COLUMN, MEMORY_COLUMN = "wall time (s)", "peak memory (MB)"
P_BEST_COLUMN, GROUP_COLUMN = "P(best)", "tied group"


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
    intervals: dict[tuple[str, str], tuple[float, float]]
    """(method, column) -> the 95 % bootstrap interval of a score cell (overall and per dataset)."""


def last_line(message: object, width: int = 300) -> str:
    """The last line of a job's message (for a failure: the error itself), at most ``width``
    characters: a longer one keeps its start (the component and file) and its end (what was
    expected), joined by " … "."""
    lines = str(message).strip().splitlines()
    line = lines[-1] if lines else ""
    if len(line) <= width:
        return line
    head = (width - 3) // 2
    return f"{line[:head]} … {line[-(width - 3 - head) :]}"


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
    results: pd.DataFrame,
    runs: pd.DataFrame,
    metric_labels: dict[str, str],
    scores_table: pd.DataFrame | None = None,
    ranks: pd.DataFrame | None = None,
) -> list[Leaderboard]:
    """The boards of every task in ``results`` (the run's ``results.tsv``), given its ``runs.tsv``
    (for why a job did not finish) and the metrics' labels (``task/metric`` -> label).
    ``scores_table`` (``scores.tsv``) and ``ranks`` (``ranks.tsv``) add the intervals, the
    probability of being best and the groups tied within noise, where the run wrote them."""
    scores = method_scores(results)
    totals = summary(results)
    per_metric = seed_means(results[scored(results)])  # the board's metric columns are what it scores
    metric_parts = metric_scores(results)
    method_jobs = runs[runs["stage"].isin(["method", "control_method"])]
    # One reason per method and dataset over its seeds: a failed seed's, where one failed.
    method_jobs = method_jobs.iloc[np.argsort(~method_jobs["status"].isin(OK).to_numpy(), kind="stable")]
    reasons = {
        (r.task, r.dataset, r.variant, r.method): _why_missing(r.status, r.message)
        for r in method_jobs.itertuples()
    }
    if scores_table is not None and "ci_low" in scores_table:
        scores = scores.merge(
            scores_table[["task", "dataset", "variant", "method", "ci_low", "ci_high"]],
            on=["task", "dataset", "variant", "method"],
            how="left",
        )
    ranks = ranks if ranks is not None else pd.DataFrame(columns=["task", "dataset", "variant", "method"])
    return [
        _board(
            task,
            per_metric[per_metric["task"] == task],
            metric_parts[metric_parts["task"] == task],
            scores[scores["task"] == task],
            totals[totals["task"] == task],
            reasons,
            metric_labels,
            ranks[ranks["task"] == task],
        )
        for task in results["task"].unique()
    ]


def _interval_note(low: float, high: float, sd: float, n_seeds: int) -> str:
    note = f"; 95% interval {low:.3f} to {high:.3f} (bootstrap over test cells"
    note += f" and {n_seeds} seeds; sd over seeds {sd:.4f})" if n_seeds > 1 else ")"
    return note


def _board(
    task: str,
    results: pd.DataFrame,
    metric_parts: pd.DataFrame,
    scores: pd.DataFrame,
    totals: pd.DataFrame,
    reasons: dict[tuple, str],
    metric_labels: dict[str, str],
    ranks: pd.DataFrame,
) -> Leaderboard:
    totals = totals.set_index("method")
    intervals: dict[tuple[str, str], tuple[float, float]] = {}
    values = pd.DataFrame(index=totals.index, dtype=float)
    notes = pd.DataFrame(index=totals.index, dtype=object)
    columns: dict[str, str] = {OVERALL: OVERALL}
    values[OVERALL] = totals["mean_score"]
    notes[OVERALL] = pd.Series(
        [
            f"mean over the {n - na - un} (dataset, variant) pair(s) it applies to"
            + (f" ({un} more could not be scaled: their controls failed)" if un else "")
            if n > na
            else "applies to no dataset"
            for n, na, un in totals[["datasets", "not_applicable", "unscaled"]].itertuples(index=False)
        ],
        index=totals.index,
    )
    overall = ranks[(ranks["dataset"] == ALL_DATASETS) & (ranks["variant"] == ALL_DATASETS)]
    overall = overall.set_index("method")
    if len(overall):
        columns[P_BEST_COLUMN], columns[GROUP_COLUMN] = P_BEST, GROUP
        values[P_BEST_COLUMN] = overall["p_best"].astype(float)
        values[GROUP_COLUMN] = overall["tied_group"].astype(float)
        notes[P_BEST_COLUMN] = "controls are not ranked"
        notes[GROUP_COLUMN] = "controls are not ranked"
        for method, row in overall.iterrows():
            intervals[(method, OVERALL)] = (row["ci_low"], row["ci_high"])
            notes.loc[method, OVERALL] += f"; 95% interval {row['ci_low']:.3f} to {row['ci_high']:.3f}"
            notes.loc[method, P_BEST_COLUMN] = (
                f"share of bootstrap replicates (test cells and seeds) in which {method} scores best"
            )
            notes.loc[method, GROUP_COLUMN] = _group_note(overall, method)
    for (dataset, variant), part in scores.groupby(["dataset", "variant"], sort=True):
        column = dataset_column(dataset, variant)
        columns[column] = DATASET
        part = part.set_index("method")
        # Shown where any seed succeeded (the failed ones count 0 in it, as in summary.tsv).
        ok = part["seeds_ok"] > 0
        values[column] = part["mean_score"].where(ok)
        # A Series, aligned by method (the board's rows are in another order).
        notes[column] = pd.Series(
            [
                _score_note(m, row, reasons.get((task, dataset, variant, m), row["status"]))
                for m, row in part.iterrows()
            ],
            index=part.index,
        ).reindex(notes.index, fill_value=NOT_PLANNED)
        if "ci_low" in part:
            for method, row in part[ok & part["ci_low"].notna()].iterrows():
                intervals[(method, column)] = (row["ci_low"], row["ci_high"])
                notes.loc[method, column] += _interval_note(
                    row["ci_low"], row["ci_high"], row["score_sd"], int(row["n_seeds"])
                )
    for metric, part in results.groupby("metric", sort=False):
        mine = metric_parts[metric_parts["metric"] == metric]
        if mine.empty:
            continue  # an unscalable metric has no score
        column = metric_labels.get(f"{task}/{metric}", metric)
        columns[column] = METRIC
        # Mean over the datasets where it can be scaled of its part of each dataset's score.
        values[column] = mine.groupby("method")["score"].mean()
        notes[column] = part.groupby("method").apply(_metric_note, include_groups=False)
    columns[TIME_COLUMN], columns[MEMORY_COLUMN] = TIME, MEMORY
    values[TIME_COLUMN] = totals["median_time_s"]
    values[MEMORY_COLUMN] = totals["max_memory_mb"]
    notes[TIME_COLUMN] = "median over datasets of the method's own job"
    notes[MEMORY_COLUMN] = "largest over datasets of the method's own job"
    kinds = totals["method_kind"]
    # Equal scores in name order, as ranks.tsv and compare.tsv number them.
    frame = pd.DataFrame(
        {"control": kinds == "control_method", "score": values[OVERALL].fillna(-np.inf), "name": kinds.index}
    )
    order = frame.sort_values(["control", "score", "name"], ascending=[True, False, True]).index
    return Leaderboard(
        task, values.loc[order], notes.loc[order], kinds.loc[order], columns, scores, intervals
    )


def _score_note(method: str, row: pd.Series, reason: str) -> str:
    """A dataset cell's note (``row``: the method's row of ``scores.tsv``): the score, or why there
    is none (``reason``: its failed seed's); which seeds failed where some did."""
    if row["seeds_ok"] == 0:
        return reason
    if not np.isfinite(row["mean_score"]):
        return UNSCALED
    note = f"{method}: mean scaled score {row['mean_score']:.4f}"
    if (failed := int(row["n_seeds"] - row["seeds_ok"])) > 0:
        note += f" ({failed} of {int(row['n_seeds'])} seeds did not succeed, each counted 0: {reason})"
    return note


def _group_note(overall: pd.DataFrame, method: str) -> str:
    """Whom ``method`` is tied with (its group: no two of them differ), and a neighbour outside the
    group it is not separated from either (A ~ B ~ C with A > C puts C in a group of its own)."""
    group = overall["tied_group"] == overall.loc[method, "tied_group"]
    peers = list(overall.index[group & (overall.index != method)])
    note = f"tied within noise with {', '.join(peers)}" if peers else "a group of its own"
    ranked = list(overall.sort_values("rank").index)
    position = ranked.index(method)
    above = ranked[position - 1] if position else None
    if above is not None and above not in peers and not bool(overall.loc[above, "significant"]):
        note += f"; not separated from {above} either, which differs from others in its group"
    return note


def _metric_note(group: pd.DataFrame) -> str:
    parts = []
    for row in group.itertuples():
        where = dataset_column(row.dataset, row.variant)
        if row.status == "not_applicable" or row.metric_status == "not_applicable":
            parts.append(f"{where}: not applicable")
        elif np.isfinite(row.value):
            parts.append(f"{where}: {row.value:.4g} (scaled {row.scaled:.3f})")
        else:
            outcome = row.metric_status if row.status in OK else row.status
            parts.append(f"{where}: no value ({str(outcome).replace('_', ' ')}, counted 0)")
    return "; ".join(parts)

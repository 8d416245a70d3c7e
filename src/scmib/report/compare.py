"""What changed between two runs: per task, each method's rank and overall score in both.

``scmib report RUN_DIR --compare BASE_DIR`` writes ``results/compare.tsv`` and
``results/compare.html`` in RUN_DIR: for a pull request that adds or changes a
method, RUN_DIR is the pull request's run and BASE_DIR main's. Ranks and
scores are the leaderboards' (``summary.tsv``): methods and controls are
ranked apart, by their mean scaled score over the datasets they apply to.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scmib.runner.results import summary

if TYPE_CHECKING:
    from scmib.report.build import Run

COLUMNS = ["task", "method", "method_kind", "rank_base", "rank", "score_base", "score", "change", "what"]


def ranked(results: pd.DataFrame) -> pd.DataFrame:
    """``summary.tsv``'s rows with a ``rank`` per task among methods, and among controls apart."""
    # Equal scores in name order (rank "first" of the rows sorted by name), as ranks.tsv numbers them.
    table = summary(results)
    by_name = table.sort_values("method", kind="stable")
    by_kind = by_name.groupby(["task", "method_kind"])["mean_score"]
    table["rank"] = by_kind.rank(ascending=False, method="first").astype("Int64")  # aligned on the index
    return table


#: What a score is over: the datasets (and their variants) of a task.
WHERE = ["task", "dataset", "variant"]


def not_shared(run: Run, base: Run) -> list[str]:
    """The (task, dataset, variant)s only one of the runs has, as ``"task dataset variant (run|base
    only)"``: left out of the comparison, so a score is not "worse" for covering another dataset."""
    mine = set(map(tuple, run.results[WHERE].drop_duplicates().itertuples(index=False)))
    theirs = set(map(tuple, base.results[WHERE].drop_duplicates().itertuples(index=False)))
    return [f"{' '.join(k)} (run only)" for k in sorted(mine - theirs)] + [
        f"{' '.join(k)} (base only)" for k in sorted(theirs - mine)
    ]


def _shared(results: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    keys = pd.MultiIndex.from_frame(other[WHERE].drop_duplicates())
    return results[pd.MultiIndex.from_frame(results[WHERE]).isin(keys)]


def compare(run: Run, base: Run) -> pd.DataFrame:
    """One row per (task, method) of either run: ranks, scores, the change and what it means
    (``added``, ``removed``, ``better``, ``worse``, ``same``, ``no score``), over the datasets both
    runs have (:func:`not_shared` names the others)."""
    keys = ["task", "method", "method_kind"]
    new = ranked(_shared(run.results, base.results))
    old = ranked(_shared(base.results, run.results))
    merged = new[[*keys, "rank", "mean_score"]].merge(
        old[[*keys, "rank", "mean_score"]], on=keys, how="outer", suffixes=("", "_base"), indicator=True
    )
    merged = merged.rename(columns={"mean_score": "score", "mean_score_base": "score_base"})
    merged["change"] = merged["score"] - merged["score_base"]
    what = np.select(
        [
            merged["_merge"] == "left_only",
            merged["_merge"] == "right_only",
            merged["change"].isna(),
            merged["change"] > 1e-9,
            merged["change"] < -1e-9,
        ],
        ["added", "removed", "no score", "better", "worse"],
        default="same",
    )
    merged["what"] = what
    order = merged.assign(control=merged["method_kind"] == "control_method")
    order = order.sort_values(["task", "control", "rank", "rank_base"], na_position="last")
    return order[COLUMNS].reset_index(drop=True)


def _cell(value: object) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def compare_html(table: pd.DataFrame, run: Run, base: Run) -> str:
    """The comparison as a self-contained HTML page, one table per task."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>scmib: two runs compared</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
        "td,th{border:1px solid #ddd;padding:.25em .6em;font-size:.9em}th{background:#f3f3f3}"
        ".added{background:#e5f5e0}.removed{background:#fde0dd}.better{color:#006d2c}"
        ".worse{color:#b00020}</style></head><body><h1>Two runs compared</h1>",
        f"<p>Run {html.escape(str(run.folder.resolve()))} against base "
        f"{html.escape(str(base.folder.resolve()))}. Ranks among methods (controls apart) by the mean "
        "scaled score over the datasets each applies to, among those both runs have.</p>",
    ]
    if left_out := not_shared(run, base):
        items = "".join(f"<li>{html.escape(item)}</li>" for item in left_out)
        parts.append(f"<p id='not-shared'>Left out, as only one run has them:</p><ul>{items}</ul>")
    for task, part in table.groupby("task", sort=False):
        rows = []
        for row in part.itertuples():
            change = "" if pd.isna(row.change) else f"{row.change:+.3f}"
            rows.append(
                f'<tr class="{row.what}" data-method="{html.escape(row.method)}" data-what="{row.what}">'
                f"<td>{html.escape(row.method)}</td><td>{html.escape(row.method_kind.replace('_', ' '))}</td>"
                f"<td>{_cell(row.rank_base)}</td><td>{_cell(row.rank)}</td>"
                f"<td>{_cell(row.score_base)}</td><td>{_cell(row.score)}</td>"
                f"<td class='{row.what}'>{change}</td><td>{row.what}</td></tr>"
            )
        parts.append(
            f"<h2 id='compare-{html.escape(task)}'>{html.escape(task)}</h2><table "
            f"id='compare-table-{html.escape(task)}'><thead><tr><th>method</th><th>kind</th>"
            "<th>rank (base)</th><th>rank</th><th>score (base)</th><th>score</th><th>change</th>"
            f"<th>what</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)

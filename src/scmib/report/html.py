"""A self-contained HTML report: inline CSS and SVG, no scripts, nothing fetched.

Hovering a heatmap cell shows its raw values (SVG ``<title>`` tooltips).
"""

from __future__ import annotations

import html
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scmib.report.export import quality_control
from scmib.report.leaderboard import (
    GROUP,
    MEMORY,
    P_BEST,
    TIME,
    Leaderboard,
    dataset_column,
    last_line,
    leaderboards,
)
from scmib.report.plots import cost_plot, metric_dots
from scmib.report.reference import PREDICT_MODALITY_RMSE, is_neurips
from scmib.runner.execute import FAILURES, NOT_APPLICABLE, OK, outcome_summary
from scmib.runner.results import seed_means

if TYPE_CHECKING:
    from scmib.report.build import Run

#: Viridis at five stops: low scores dark purple, high scores yellow.
PALETTE = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
PROBLEM_STATUSES = (*FAILURES, NOT_APPLICABLE)
CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
h1{margin-bottom:0}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left;font-size:.9em}th{background:#f3f3f3}.note{background:#fff4ce;padding:.5em;
border-left:4px solid #e0a800}.bad{color:#b00020;font-weight:600}pre{background:#f6f6f6;
padding:.5em;max-height:20em;overflow:auto;font-size:.8em}svg text{font-size:12px}
.muted{color:#777}.cards{display:flex;flex-wrap:wrap;gap:.8em}.card{border:1px solid #ddd;
border-radius:4px;padding:.2em .9em;width:26em}.card h3{font-size:1em}.card dl{display:grid;
grid-template-columns:auto 1fr;gap:.1em .8em;font-size:.85em}.card dt{color:#555}.card dd{margin:0;
overflow-wrap:anywhere}.pair{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
@media print{.card{break-inside:avoid}table.leaderboard{font-size:.75em}}
table.leaderboard td{text-align:right;white-space:nowrap}table.leaderboard td:nth-child(2){text-align:left}
table.leaderboard th{font-size:.8em;vertical-align:bottom}tr.controls-rule td{text-align:left;
background:#fafafa;color:#555;border-top:3px double #999;font-style:italic}
td.time,td.memory{position:relative;min-width:6em}span.bar{position:absolute;left:0;top:15%;
height:70%;background:#9ecae1}span.num{position:relative}td.overall,td.dataset{position:relative}
span.ci{position:absolute;bottom:2px;height:3px;opacity:.85}
"""


def colour(value: float) -> str:
    """Hex colour of a value in [0, 1] on the palette; grey for NaN."""
    if value is None or not math.isfinite(value):
        return "#d9d9d9"
    position = min(max(value, 0.0), 1.0) * (len(PALETTE) - 1)
    low = math.floor(position)
    high = min(low + 1, len(PALETTE) - 1)
    frac = position - low
    rgb = [round(a + (b - a) * frac) for a, b in zip(PALETTE[low], PALETTE[high], strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def heatmap_svg(fill: pd.DataFrame, text: pd.DataFrame, tooltip: pd.DataFrame, svg_id: str) -> str:
    """An SVG heatmap: rows and columns of ``fill`` (values in [0, 1]), ``text`` in the cells,
    ``tooltip`` shown on hover."""
    cell_w, cell_h = 86, 24
    left = 12 + 7 * max((len(str(r)) for r in fill.index), default=5)
    top = 12 + 6 * max((len(str(c)) for c in fill.columns), default=5)
    # Rotated column labels reach right of their column by about cos(35 deg) of their length.
    width = left + cell_w * fill.shape[1] + 6 * max((len(str(c)) for c in fill.columns), default=5)
    height = top + cell_h * fill.shape[0] + 10
    parts = [
        f'<svg id="{svg_id}" class="heatmap" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}">'
    ]
    for j, column in enumerate(fill.columns):
        x = left + j * cell_w + cell_w / 2
        parts.append(
            f'<text class="col-label" transform="translate({x},{top - 6}) rotate(-35)">'
            f"{html.escape(str(column))}</text>"
        )
    for i, row in enumerate(fill.index):
        y = top + i * cell_h
        parts.append(
            f'<text class="row-label" x="{left - 6}" y="{y + cell_h * 0.68}" '
            f'text-anchor="end">{html.escape(str(row))}</text>'
        )
        for j, column in enumerate(fill.columns):
            value = fill.loc[row, column]
            x = left + j * cell_w
            ink = "#000" if (isinstance(value, float) and value > 0.55) else "#fff"
            ink = "#333" if not np.isfinite(value) else ink
            parts.append(
                f'<g class="cell" data-row="{html.escape(str(row))}" '
                f'data-col="{html.escape(str(column))}"><title>{html.escape(str(tooltip.loc[row, column]))}'
                f'</title><rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'fill="{colour(value)}"/><text x="{x + cell_w / 2 - 1}" y="{y + cell_h * 0.66}" '
                f'text-anchor="middle" fill="{ink}">{html.escape(str(text.loc[row, column]))}</text></g>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float, kind: str) -> str:
    if kind == TIME:
        return f"{value:.1f}" if value < 100 else f"{value:.0f}"
    if kind in (MEMORY, GROUP):
        return f"{value:.0f}"
    if kind == P_BEST:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _interval_bar(interval: tuple[float, float] | None, ink: str) -> str:
    """A score's 95 % interval as a line along the bottom of its cell (the cell spans 0 to 1)."""
    if interval is None or not all(np.isfinite(interval)):
        return ""
    low, high = (min(max(v, 0.0), 1.0) for v in interval)
    return (
        f'<span class="ci" data-low="{interval[0]!r}" data-high="{interval[1]!r}" '
        f'style="left:{100 * low:.1f}%;width:{max(100 * (high - low), 1.5):.1f}%;background:{ink}"></span>'
    )


def leaderboard_html(board: Leaderboard, labels: dict[str, str]) -> str:
    """A task's leaderboard as an HTML table: scores coloured by value, resources as bars (log
    scale), controls under a rule. Each value cell carries ``data-value`` (the table's own number)
    and a hover title; a cell without a value is blank and its title says why."""
    columns = list(board.columns)
    head = "<th>rank</th><th>method</th>" + "".join(
        f'<th class="{board.columns[c]}" scope="col">{html.escape(c)}</th>' for c in columns
    )
    peak = {
        kind: board.values[[c for c in columns if board.columns[c] == kind]].max().max()
        for kind in (TIME, MEMORY)
    }
    rows, rank, controls_started = [], 0, False
    for method, row in board.values.iterrows():
        control = board.kinds[method] == "control_method"
        if control and not controls_started:
            controls_started = True
            rows.append(
                f'<tr class="controls-rule"><td colspan="{len(columns) + 2}">Controls: the bracket '
                "every score is scaled by (not ranked with the methods)</td></tr>"
            )
            rank = 0
        rank += 1
        label = html.escape(labels.get(method, method))
        cells = [f"<td>{rank}</td>", f'<td title="{label}">{html.escape(method)}</td>']
        for column in columns:
            kind, value = board.columns[column], row[column]
            note = html.escape(str(board.notes.loc[method, column]))
            if value is None or not np.isfinite(value):
                cells.append(f'<td class="{kind} missing" title="{note}"></td>')
            elif kind in (P_BEST, GROUP):
                shown = _number(value, kind)
                cells.append(f'<td class="{kind}" data-value="{float(value)!r}" title="{note}">{shown}</td>')
            elif kind in (TIME, MEMORY):
                width = 100 * math.log10(1 + value) / max(math.log10(1 + peak[kind]), 1e-9)
                cells.append(
                    f'<td class="{kind}" data-value="{float(value)!r}" title="{note}"><span class="bar" '
                    f'style="width:{width:.0f}%"></span><span class="num">{_number(value, kind)}</span></td>'
                )
            else:
                ink = "#000" if value > 0.55 else "#fff"
                cells.append(
                    f'<td class="{kind}" data-value="{float(value)!r}" title="{note}" '
                    f'style="background:{colour(value)};color:{ink}">{_number(value, kind)}'
                    f"{_interval_bar(board.intervals.get((str(method), column)), ink)}</td>"
                )
        kind = "control" if control else "method"
        rows.append(f'<tr data-method="{html.escape(method)}" data-kind="{kind}">{"".join(cells)}</tr>')
    return (
        f'<table class="leaderboard" id="leaderboard-{html.escape(board.task)}"><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _link(url: str | None, text: str | None = None) -> str:
    if not url:
        return ""
    return f'<a href="{html.escape(url)}" title="{html.escape(url)}">{html.escape(text or url)}</a>'


def _doi_link(doi: str | list[str] | None) -> str:
    """A link per DOI (a spec's ``references.doi`` is a list; a dataset's reference one string)."""
    dois = [doi] if isinstance(doi, str) else list(doi or [])
    return " · ".join(_link(f"https://doi.org/{d}", f"doi:{d}") for d in dois if d)


def dataset_card(key: str, dataset: dict) -> str:
    """A dataset's card: what it is, where it comes from, its size and what the loader removed."""
    files = [f for f in dataset.get("files", []) if f]
    cells = files[0]["cells"] if files else None
    features = ", ".join(f"{f['features']:,} {f.get('modality', '')}".strip() for f in files)
    batches = files[0].get("batches") if files else None
    source = files[0].get("source") if files else None
    reference = files[0].get("reference") if files else None
    removed = [
        f"{f['removed']:,} of {f['before']:,} {f['what']} ({f['why']})"
        for f in dataset.get("filters", [])
        if f["removed"]
    ]
    rows = [
        ("modalities", html.escape(" + ".join(dataset["modalities"]))),
        ("organism", html.escape(dataset["organism"])),
        ("cells", f"{cells:,}" if cells is not None else ""),
        ("features", html.escape(features)),
        ("batches", str(batches) if batches is not None else ""),
        (
            "source",  # a URL shown by its file name (the whole of it on hover and as the link)
            _link(source, source.rstrip("/").rsplit("/", 1)[-1])
            if source and source.startswith("http")
            else html.escape(source or ""),
        ),
        ("reference", _doi_link(reference) if reference and reference.startswith("10.") else ""),
        ("loader", f"<code>{html.escape(dataset.get('loader', ''))}</code>"),
        ("filtered", html.escape("; ".join(removed)) or "nothing"),
    ]
    warnings = "".join(f"<p class='bad'>{html.escape(w)}</p>" for w in dataset.get("warnings", []))
    body = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows if value)
    return (
        f"<div class='card' id='dataset-{html.escape(key)}'><h3>{html.escape(dataset['label'])} "
        f"<span class='muted'>({html.escape(key)})</span></h3>"
        f"<p>{html.escape(dataset['summary'], quote=False)}</p>"
        f"<dl>{body}</dl>{warnings}</div>"
    )


def _settings(values: dict) -> str:
    """``name=value, ...``; a set seed is where the component's seeds start."""
    return ", ".join(f"seeds from {v}" if k == "seed" else f"{k}={v}" for k, v in values.items())


def component_args_note(settings: dict[str, dict]) -> str:
    """The arguments a run set instead of the specs' defaults (``--component_args``), if any."""
    if not settings:
        return ""
    items = "".join(
        f"<li>{html.escape(component)}: <code>{html.escape(_settings(values))}</code></li>"
        for component, values in settings.items()
    )
    return (
        "<div class='note' id='component-args'><b>Arguments set for this run</b> instead of the "
        f"components' defaults (<code>--component_args</code>):<ul>{items}</ul></div>"
    )


def method_card(method: dict) -> str:
    """A method's card: label, summary, kind, the arguments the run set, reference and repository."""
    links = " · ".join(x for x in (_doi_link(method.get("doi")), _link(method.get("repository"))) if x)
    kind = method["kind"].replace("_", " ")
    arguments = method.get("arguments")
    return (
        f"<div class='card' id='method-{html.escape(method['task'])}-{html.escape(method['name'])}'>"
        f"<h3>{html.escape(method['label'])} <span class='muted'>({html.escape(method['name'])}, "
        f"{kind})</span></h3><p>{html.escape(method['summary'], quote=False)}</p>"
        + (f"<p>Run with <code>{html.escape(_settings(arguments))}</code>.</p>" if arguments else "")
        + (f"<p>{links}</p>" if links else "")
        + "</div>"
    )


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, na_rep="", border=0, float_format="{:.3f}".format)


def metric_heatmap(results: pd.DataFrame, metric: str, svg_id: str, methods: list[str]) -> str:
    """One metric's raw values per method (rows, in ``methods``' order: the leaderboard's) and
    dataset, coloured by the scaled value."""
    frame = results[results["metric"] == metric]
    frame = frame.assign(
        column=[dataset_column(d, v) for d, v in zip(frame["dataset"], frame["variant"], strict=True)]
    )
    value = frame.pivot_table(index="method", columns="column", values="value", aggfunc="first", dropna=False)
    scaled = frame.pivot_table(
        index="method", columns="column", values="scaled", aggfunc="first", dropna=False
    )
    order = [m for m in methods if m in value.index]
    value, scaled = value.loc[order], scaled.reindex(index=order, columns=value.columns)
    reasons = [
        "not applicable" if "not_applicable" in (st, ms) else (st if st not in OK else ms).replace("_", " ")
        for st, ms in zip(frame["status"], frame["metric_status"], strict=True)
    ]
    why = frame.assign(why=reasons).pivot_table(
        index="method", columns="column", values="why", aggfunc="first"
    )
    why = why.reindex(index=order, columns=value.columns)
    text = value.map(lambda v: "" if not np.isfinite(v) else f"{v:.3f}")
    tooltip = value.map(lambda v: f"{metric} = {v:.6g}") + scaled.map(
        lambda v: f", scaled {v:.3f}" if np.isfinite(v) else ""
    )
    tooltip = tooltip.mask(~np.isfinite(value), why.fillna("no value"))
    return heatmap_svg(scaled.clip(0, 1), text, tooltip, svg_id)


def _log_tail(path: str, lines: int = 25) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except (OSError, TypeError):
        return "(no log)"


def _reason(job: str, message: object) -> str:
    """A job's outcome in words shared by every job it happened to, so one cause reads as one
    reason: a job skipped for its method's outcome says "its method", and paths inside the job's
    own folder say "<job folder>"."""
    line = last_line(message)
    method = job.rsplit("/", 1)[0]
    if line.startswith(f"{method}: "):
        return "its method" + line[len(method) :]
    return re.sub(rf"[^\s'\"]*/{re.escape(job)}(?=[/\s'\"]|$)", "<job folder>", line)


def problems_section(runs: pd.DataFrame) -> str:
    """Jobs that failed or did not apply, one entry per distinct outcome and reason (the same
    reason for twenty jobs is said once, with the jobs listed under it)."""
    bad = runs[runs["status"].isin(PROBLEM_STATUSES)]
    reasons = [_reason(job, message) for job, message in zip(bad["job"], bad["message"], strict=True)]
    bad = bad.assign(reason=reasons)
    if bad.empty:
        return "<p>Every job succeeded.</p>"
    items = []
    for (status, reason), group in bad.groupby(["status", "reason"], sort=False):
        css = "" if status == "not_applicable" else ' class="bad"'
        jobs = "".join(f"<li><code>{html.escape(job)}</code></li>" for job in group["job"])
        first = group.iloc[0]
        count = f"{len(group)} jobs" if len(group) > 1 else f"<code>{html.escape(first['job'])}</code>"
        log = (
            f"<details><summary>log of {html.escape(first['job'])}</summary>"
            f"<pre>{html.escape(_log_tail(first['log']))}</pre></details>"
            if status != "not_applicable"
            else ""
        )
        listed = f"<details><summary>which</summary><ul>{jobs}</ul></details>" if len(group) > 1 else ""
        items.append(
            f"<li><span{css}>{html.escape(status)}</span> {count}: {html.escape(reason)}{listed}{log}</li>"
        )
    return f'<ul id="problems">{"".join(items)}</ul>'


def reference_section(results: pd.DataFrame) -> str:
    rmse = results[(results["metric"] == "rmse") & results["dataset"].map(is_neurips)]
    if rmse.empty:
        return ""
    rows = []
    for (dataset, variant), group in rmse.groupby(["dataset", "variant"]):
        ref = PREDICT_MODALITY_RMSE.get(variant)
        if ref is None:
            continue
        values = group.set_index("method")["value"]
        methods = group[group["method_kind"] == "method"].set_index("method")["value"].dropna()
        best = methods.idxmin() if len(methods) else ""
        rows.append(
            {
                "dataset": dataset,
                "subtask": variant,
                "mean per feature (ours / 2021)": f"{values.get('mean_per_feature', np.nan):.3f} / "
                f"{ref['mean_per_feature']:.3f}",
                "kNN (ours / 2021)": (
                    f"{values.get('knn_regression', np.nan):.3f} / {ref['knn_regression']:.3f}"
                ),
                "best method (ours)": f"{best} {methods.min():.3f}" if best else "",
                "winner 2021": f"{ref['winner_name']} {ref['winner']:.3f}",
            }
        )
    note = (
        '<p class="muted">2021 numbers: phase 2 on the full data (benchmark.md). The starter '
        "sets are small feature-subsampled subsets, so only the ordering is comparable.</p>"
    )
    return f'<h2 id="reference">NeurIPS 2021 reference numbers (RMSE)</h2>{note}{_table(pd.DataFrame(rows))}'


def rank_section(ranks: pd.DataFrame | None, task: str, labels: dict[str, str]) -> str:
    """How sure the task's ranking is: per dataset and over all datasets, each method's score with
    its interval, the probability that it is the best, and whether it beats the next one."""
    if ranks is None or ranks.empty or not (ranks["task"] == task).any():
        return ""
    rows = []
    for row in ranks[ranks["task"] == task].itertuples():
        where = "all datasets" if row.dataset == "all" else dataset_column(row.dataset, row.variant)
        versus = ""
        if isinstance(row.next_method, str) and row.next_method:
            significant = str(row.significant).lower() == "true"
            verdict = "better than" if significant else "tied within noise with"
            versus = (
                f"{verdict} {row.next_method}: +{row.diff_to_next:.3f} "
                f"[{row.diff_ci_low:.3f}, {row.diff_ci_high:.3f}]"
            )
        rows.append(
            {
                "datasets": where,
                "rank": row.rank,
                "group": row.tied_group,
                "method": labels.get(row.method, row.method),
                "score [95% interval]": f"{row.mean_score:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]",
                "P(best)": f"{row.p_best:.2f}",
                "against the next": versus,
            }
        )
    return (
        f"<h3>How sure is this ranking?</h3><p>Intervals are 95 % bootstrap intervals over the test "
        "cells (1,000 resamples, the same for every method) and the methods' seeds; a difference is "
        "significant when its paired interval excludes 0. Methods of one group are tied within noise: "
        f"their order is not supported by the data.</p><div id='ranks-{html.escape(task)}'>"
        f"{_table(pd.DataFrame(rows))}</div>"
    )


def render_html(run: Run) -> str:
    runs, info = run.runs, run.info
    # Per-metric views show each method's mean over its seeds; the leaderboards score every seed.
    results = seed_means(run.results)
    flags = quality_control(results, info["methods"])
    bracket = [f for f in flags if f["category"] in ("below_controls", "above_controls", "controls")]
    datasets = "".join(dataset_card(key, value) for key, value in info["datasets"].items())
    tasks = "".join(
        f"<li><b>{html.escape(t['label'])}</b>: {html.escape(t['summary'])}</li>"
        for t in info["tasks"].values()
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>scmib report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>scmib results</h1>",
        f"<p class='muted'>Run folder {html.escape(str(run.folder.resolve()))}; scmib "
        f"{html.escape(str(info.get('scmib_version')))}; report made "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"{html.escape(outcome_summary(list(runs['status'])))}.</p>",
        component_args_note(info.get("component_args", {})),
        f"<h2 id='overview'>Tasks and datasets</h2><ul>{tasks}</ul><div class='cards'>{datasets}</div>",
        "<p>Each task has a leaderboard: methods ranked by their mean scaled score over the "
        "datasets they apply to. A metric is scaled by the task's controls on each dataset (0 = "
        "worst control, 1 = best control), clipped to [0, 1] and averaged; a failed run counts 0. "
        "Hover a cell for raw values or, where it is blank, for why.</p>",
    ]
    if bracket:
        items = "".join(f"<li>{html.escape(f['message'])}</li>" for f in bracket)
        parts.append(
            f"<div class='note' id='bracket-notes'><b>Quality control: scores outside the "
            f"controls</b> (the leaderboards clip them to [0, 1]):<ul>{items}</ul></div>"
        )
    metric_labels = {key: metric["label"] for key, metric in info["metrics"].items()}
    for board in leaderboards(run.results, runs, metric_labels, run.scores, run.ranks):
        task = info["tasks"].get(board.task, {})
        parts.append(
            f"<h2 id='task-{html.escape(board.task)}'>{html.escape(task.get('label', board.task))}</h2>"
            f"<p>{html.escape(task.get('summary', ''))}</p>"
        )
        labels = {m["name"]: m["label"] for m in info["methods"].values() if m["task"] == board.task}
        parts.append(leaderboard_html(board, labels))
        parts.append(rank_section(run.ranks, board.task, labels))
        parts.append(
            "<h3>The cost of a score</h3><p>Each method on each dataset: its mean scaled score against "
            "its wall time.</p>" + cost_plot(board.scores, f"cost-{board.task}")
        )
        task_results = results[results["task"] == board.task]
        for key, metric in info["metrics"].items():
            if metric["task"] != board.task:
                continue
            direction = "higher is better" if metric["maximize"] else "lower is better"
            parts.append(
                f"<h3>{html.escape(metric['label'])} <span class='muted'>({html.escape(key)}, "
                f"{direction})</span></h3><p>{html.escape(metric['summary'])}</p>"
            )
            svg_id = f"metric-{board.task}-{metric['name']}"
            parts.append(
                "<div class='pair'>"
                + metric_heatmap(task_results, metric["name"], svg_id, list(board.values.index))
                + metric_dots(task_results, metric["name"], list(board.values.index), f"dots-{svg_id}")
                + "</div>"
            )
        cards = "".join(method_card(m) for m in info["methods"].values() if m["task"] == board.task)
        parts.append(f"<h3>Methods and controls</h3><div class='cards'>{cards}</div>")
    parts += [
        "<h2 id='failures'>Failures and not-applicable runs</h2>",
        problems_section(runs),
        reference_section(results),
        "</body></html>",
    ]
    return "\n".join(parts)

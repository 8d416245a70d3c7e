"""A self-contained HTML report: inline CSS and SVG, no scripts, nothing fetched.

Hovering a heatmap cell shows its raw values (SVG ``<title>`` tooltips).
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scmib.report.export import quality_control
from scmib.report.reference import PREDICT_MODALITY_RMSE, is_neurips
from scmib.runner.execute import FAILURES, NOT_APPLICABLE, outcome_summary

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
.muted{color:#777}
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


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, na_rep="", border=0, float_format="{:.3f}".format)


def _column(dataset: str, variant: str) -> str:
    return f"{dataset} {variant}".strip()


def _method_order(results: pd.DataFrame) -> list[str]:
    scores = results.assign(s=results["scaled"].clip(0, 1).fillna(0))
    means = scores.groupby(["method", "method_kind"])["s"].mean().reset_index()
    means["control"] = means["method_kind"] == "control_method"
    return means.sort_values(["control", "s"], ascending=[True, False])["method"].tolist()


def summary_heatmap(results: pd.DataFrame, svg_id: str) -> str:
    frame = results.assign(
        column=[_column(d, v) for d, v in zip(results["dataset"], results["variant"], strict=True)]
    )
    frame["s"] = frame["scaled"].clip(0, 1).fillna(0)
    mean = frame.pivot_table(index="method", columns="column", values="s", aggfunc="mean")
    status = frame.groupby(["method", "column"])["status"].first().unstack()
    raw = (
        frame.groupby(["method", "column"])
        .apply(
            lambda g: "; ".join(f"{m} = {v:.4g}" for m, v in zip(g["metric"], g["value"], strict=True)),
            include_groups=False,
        )
        .unstack()
    )
    order = [m for m in _method_order(results) if m in mean.index]
    mean, status, raw = mean.loc[order], status.loc[order], raw.loc[order]
    text = mean.map(lambda v: f"{v:.2f}")
    problem = status.isin(PROBLEM_STATUSES)
    text = text.mask(problem, status.map(lambda s: str(s).replace("_", " ")))
    fill = mean.mask(problem)
    tooltip = raw.radd(mean.index.to_series().map(lambda m: f"{m}: ").reindex(raw.index), axis=0)
    tooltip = tooltip.mask(problem, status)
    return heatmap_svg(fill, text, tooltip, svg_id)


def metric_heatmap(results: pd.DataFrame, metric: str, svg_id: str) -> str:
    frame = results[results["metric"] == metric]
    frame = frame.assign(
        column=[_column(d, v) for d, v in zip(frame["dataset"], frame["variant"], strict=True)]
    )
    value = frame.pivot_table(index="method", columns="column", values="value", aggfunc="first", dropna=False)
    scaled = frame.pivot_table(
        index="method", columns="column", values="scaled", aggfunc="first", dropna=False
    )
    order = [m for m in _method_order(results) if m in value.index]
    value, scaled = value.loc[order], scaled.reindex(index=order, columns=value.columns)
    text = value.map(lambda v: "" if not np.isfinite(v) else f"{v:.3f}")
    tooltip = value.map(lambda v: f"{metric} = {v:.6g}") + scaled.map(lambda v: f", scaled {v:.3f}")
    return heatmap_svg(scaled.clip(0, 1), text, tooltip, svg_id)


def resources_heatmap(runs: pd.DataFrame, column: str, svg_id: str, unit: str) -> str:
    methods = runs[runs["stage"].isin(["method", "control_method"])].copy()
    methods["col"] = [_column(d, v) for d, v in zip(methods["dataset"], methods["variant"], strict=True)]
    value = methods.pivot_table(index="method", columns="col", values=column, aggfunc="first")
    logged = np.log10(value.clip(lower=1e-3))
    spread = float(np.nanmax(logged.to_numpy()) - np.nanmin(logged.to_numpy())) or 1.0
    fill = (logged - np.nanmin(logged.to_numpy())) / spread
    text = value.map(lambda v: f"{v:.1f}")
    tooltip = value.map(lambda v: f"{v:.3f} {unit}")
    return heatmap_svg(fill, text, tooltip, svg_id)


def _log_tail(path: str, lines: int = 25) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except (OSError, TypeError):
        return "(no log)"


def _last_line(message: object, limit: int = 300) -> str:
    """The last line of a job's message: the error itself, for a failure."""
    lines = str(message).strip().splitlines()
    return lines[-1][-limit:] if lines else ""


def problems_section(runs: pd.DataFrame) -> str:
    bad = runs[runs["status"].isin(PROBLEM_STATUSES)]
    if bad.empty:
        return "<p>Every job succeeded.</p>"
    items = []
    for row in bad.itertuples():
        css = "" if row.status == "not_applicable" else ' class="bad"'
        items.append(
            f"<li><span{css}>{html.escape(row.status)}</span> <code>{html.escape(row.job)}</code>"
            f" {html.escape(_last_line(row.message))}"
            f"<details><summary>log</summary>"
            f"<pre>{html.escape(_log_tail(row.log))}</pre></details></li>"
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


def render_html(run: Run) -> str:
    results, runs, info = run.results, run.runs, run.info
    flags = quality_control(results, info["methods"])
    bracket = [f for f in flags if f["category"] in ("below_controls", "above_controls", "controls")]
    datasets = pd.DataFrame(
        [
            {
                "dataset": k,
                "label": v["label"],
                "summary": v["summary"],
                "modalities": " + ".join(v["modalities"]),
                "organism": v["organism"],
                "filtered": "; ".join(
                    f"{f['removed']:,} of {f['before']:,} {f['what']} ({f['why']})"
                    for f in v.get("filters", [])
                    if f["removed"]
                ),
                "warnings": "; ".join(v.get("warnings", [])),
            }
            for k, v in info["datasets"].items()
        ]
    )
    tasks = "".join(
        f"<li><b>{html.escape(t['label'])}</b>: {html.escape(t['summary'])}</li>"
        for t in info["tasks"].values()
    )
    methods = pd.DataFrame(
        [
            {
                "method": m["name"],
                "kind": m["kind"].replace("_", " "),
                "label": m["label"],
                "summary": m["summary"],
            }
            for m in info["methods"].values()
        ]
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>scmib report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>scmib results</h1>",
        f"<p class='muted'>Run folder {html.escape(str(run.folder.resolve()))}; scmib "
        f"{html.escape(str(info.get('scmib_version')))}; report made "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"{html.escape(outcome_summary(list(runs['status'])))}.</p>",
        f"<h2 id='overview'>Tasks and datasets</h2><ul>{tasks}</ul>{_table(datasets)}",
        "<h2 id='summary'>Summary: mean scaled score per method and dataset</h2>",
        "<p>Each metric is scaled by the controls (0 = worst control, 1 = best control), clipped "
        "to [0, 1] and averaged; missing results count 0. Hover a cell for raw values.</p>",
        summary_heatmap(results, "summary-heatmap"),
    ]
    if bracket:
        items = "".join(f"<li>{html.escape(f['message'])}</li>" for f in bracket)
        parts.append(
            f"<div class='note' id='bracket-notes'><b>Quality control: scores outside the "
            f"controls</b> (the summary clips them to [0, 1]):<ul>{items}</ul></div>"
        )
    parts.append("<h2 id='metrics'>Metrics</h2>")
    for key, metric in info["metrics"].items():
        direction = "higher is better" if metric["maximize"] else "lower is better"
        parts.append(
            f"<h3>{html.escape(metric['label'])} <span class='muted'>({html.escape(key)}, "
            f"{direction})</span></h3><p>{html.escape(metric['summary'])}</p>"
        )
        parts.append(metric_heatmap(results, metric["name"], f"metric-{metric['name']}"))
    parts += [
        "<h2 id='resources'>Resources</h2><h3>Wall time (s)</h3>",
        resources_heatmap(runs, "wall_time_s", "resources-time", "s"),
        "<h3>Peak memory (MB)</h3>",
        resources_heatmap(runs, "peak_memory_mb", "resources-memory", "MB"),
        "<h2 id='failures'>Failures and not-applicable runs</h2>",
        problems_section(runs),
        reference_section(results),
        f"<h2 id='methods'>Methods</h2>{_table(methods)}",
        "</body></html>",
    ]
    return "\n".join(parts)

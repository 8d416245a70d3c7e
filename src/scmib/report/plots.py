"""Small self-contained SVG charts for the report: the cost of a score, and a metric across datasets.

Each mark has a ``<title>`` (shown on hover) with the numbers it stands for,
taken from the results tables.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

#: Colour-blind-safe categorical colours (Okabe-Ito), one per dataset.
DATASET_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def _colours(keys: list[str]) -> dict[str, str]:
    return {key: DATASET_COLOURS[i % len(DATASET_COLOURS)] for i, key in enumerate(keys)}


def _svg_open(svg_id: str, css_class: str, width: float, height: float) -> str:
    return (
        f'<svg id="{svg_id}" class="{css_class}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width:.0f}" height="{height:.0f}">'
    )


def _legend(colours: dict[str, str], x: float, y: float) -> list[str]:
    parts = []
    for i, (key, fill) in enumerate(colours.items()):
        parts.append(
            f'<circle cx="{x + 5}" cy="{y + 16 * i}" r="5" fill="{fill}"/>'
            f'<text x="{x + 14}" y="{y + 16 * i + 4}">{html.escape(key)}</text>'
        )
    return parts


def cost_plot(scores: pd.DataFrame, svg_id: str) -> str:
    """Mean scaled score (y) against the method's wall time (x, log scale): one point per method and
    dataset, controls hollow. ``scores`` holds one task's rows of ``scores.tsv`` (runs that
    succeeded; others have no meaningful time or score)."""
    ok = scores[scores["status"].isin(["success", "cached"]) & (scores["wall_time_s"] > 0)]
    height, left, top, plot_w, plot_h = 330, 55, 15, 470, 260
    datasets = sorted({f"{d} {v}".strip() for d, v in zip(ok["dataset"], ok["variant"], strict=True)})
    width = left + plot_w + 40 + 7 * max((len(d) for d in datasets), default=16)
    parts = [_svg_open(svg_id, "cost-plot", width, height)]
    if ok.empty:
        return parts[0] + '<text x="10" y="20">no run finished</text></svg>'
    times = np.log10(ok["wall_time_s"].to_numpy(dtype=float))
    low, high = math.floor(times.min()), math.ceil(times.max())
    high = high if high > low else low + 1
    x_of = lambda t: left + (math.log10(t) - low) / (high - low) * plot_w  # noqa: E731
    y_of = lambda s: top + (1 - min(max(s, 0.0), 1.0)) * plot_h  # noqa: E731
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    for power in range(low, high + 1):
        x = x_of(10.0**power)
        parts.append(
            f'<line x1="{x}" y1="{top}" x2="{x}" y2="{top + plot_h}" stroke="#eee"/>'
            f'<text x="{x}" y="{top + plot_h + 16}" text-anchor="middle">{10.0**power:g} s</text>'
        )
    for tick in (0.0, 0.5, 1.0):
        y = y_of(tick)
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{tick:.1f}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">wall time of the method '
        f'(log scale)</text><text transform="translate(14,{top + plot_h / 2}) rotate(-90)" '
        'text-anchor="middle">mean scaled score</text>'
    )
    colours = _colours(datasets)
    # Each method's name once, beside its best point (every point has it on hover).
    labelled = set(ok.sort_values("mean_score", ascending=False).drop_duplicates("method").index)
    for row in ok.itertuples():
        key = f"{row.dataset} {row.variant}".strip()
        control = row.method_kind == "control_method"
        fill = "none" if control else colours[key]
        x, y = x_of(row.wall_time_s), y_of(row.mean_score)
        tip = f"{row.method} on {key}: score {row.mean_score:.3f}, {row.wall_time_s:.1f} s"
        parts.append(
            f'<g class="point" data-method="{html.escape(row.method)}"><title>{html.escape(tip)}</title>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{fill}" stroke="{colours[key]}" '
            'stroke-width="2"/>'
            + (
                f'<text x="{x + 7:.1f}" y="{y - 6:.1f}" font-size="10">{html.escape(row.method)}</text>'
                if row.Index in labelled
                else ""
            )
            + "</g>"
        )
    parts += _legend(colours, left + plot_w + 20, top + 10)
    legend_end = top + 16 * len(colours) + 20
    parts.append(f'<text x="{left + plot_w + 20}" y="{legend_end}">hollow: controls</text>')
    parts.append("</svg>")
    return "".join(parts)


def metric_dots(results: pd.DataFrame, metric: str, order: list[str], svg_id: str) -> str:
    """A metric's control-scaled score (clipped to [0, 1]) per method (rows, in ``order``), one dot
    per dataset; the raw value on hover. ``results``: one task's rows of ``results.tsv``."""
    rows = results[(results["metric"] == metric) & results["scaled"].notna()]
    methods = [m for m in order if m in set(rows["method"])]
    left = 12 + 7 * max((len(m) for m in methods), default=5)
    plot_w, row_h, top = 300, 18, 10
    datasets = sorted({f"{d} {v}".strip() for d, v in zip(rows["dataset"], rows["variant"], strict=True)})
    colours = _colours(datasets)
    height = top + row_h * max(len(methods), len(colours)) + 30
    width = left + plot_w + 40 + 7 * max((len(d) for d in datasets), default=5) + 20
    parts = [_svg_open(svg_id, "dot-plot", width, height)]
    bottom = top + row_h * len(methods)
    for tick in (0.0, 0.5, 1.0):
        x = left + tick * plot_w
        parts.append(
            f'<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#ddd"/>'
            f'<text x="{x}" y="{bottom + 14}" text-anchor="middle">{tick:.1f}</text>'
        )
    for i, method in enumerate(methods):
        y = top + row_h * i + row_h / 2
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{html.escape(method)}</text>')
        for row in rows[rows["method"] == method].itertuples():
            key = f"{row.dataset} {row.variant}".strip()
            x = left + min(max(row.scaled, 0.0), 1.0) * plot_w
            tip = f"{method} on {key}: {metric} = {row.value:.4g} (scaled {row.scaled:.3f})"
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{colours[key]}" fill-opacity="0.85">'
                f"<title>{html.escape(tip)}</title></circle>"
            )
    parts += _legend(colours, left + plot_w + 30, top + 6)
    parts.append("</svg>")
    return "".join(parts)

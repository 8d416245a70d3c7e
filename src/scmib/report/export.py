"""Results as JSON shaped like Open Problems' task results, with quality-control flags."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from scmib.report.build import Run


def _none_if_nan(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


#: Scaled scores within this of [0, 1] count as inside (rounding of equal values).
TOLERANCE = 1e-9
#: The matching task's check of the competition's prediction format (1 when it holds): every control
#: passes it, so it cannot be scaled and counts in no score; a failing method is flagged instead.
FORMAT_METRIC = "format_ok"


def _flag(category: str, name: str, value, severity: int, message: str) -> dict:
    return {"category": category, "name": name, "value": value, "severity": severity, "message": message}


def quality_control(results: pd.DataFrame, methods: dict | None = None) -> list[dict]:
    """Flags for what a ranking should not hide.

    ``run``: a method did not finish; ``missing``: a metric that applies has no
    value; ``below_controls``: a method scores worse than every control (its
    scaled score is clipped to 0, so the table alone would not show it);
    ``above_controls``: a method beats every control, so the controls do not
    bracket it; ``controls``: the solution control (``methods[...]["is_solution"]``
    in ``run_info``) is not the best control, so the controls themselves do not
    bracket; ``format``: a method's prediction breaks the competition's format (``format_ok`` < 1).
    ``methods`` is ``run_info``'s method table (keys ``task/name``).
    """
    flags = []
    keys = ["task", "dataset", "variant", "method"]
    for (task, dataset, variant, method), group in results.groupby(keys, sort=False):
        where = f"{task}/{dataset}/{variant}/{method}"
        status = group["status"].iloc[0]
        if status == "not_run":
            message = (
                f"{method} has not run on {dataset}/{variant} as it is now (scored 0): "
                "run without --datasets/--methods filters to complete it"
            )
            flags.append(_flag("run", where, status, 2, message))
            continue
        if status not in ("success", "cached", "not_applicable"):
            message = f"{method} did not finish on {dataset}/{variant} ({status})"
            flags.append(_flag("run", where, status, 2, message))
            continue
        applies = (status != "not_applicable") & (group["metric_status"] != "not_applicable")
        missing = group.loc[group["value"].isna() & applies, "metric"]
        if len(missing):
            flags.append(_flag("missing", where, len(missing), 2, f"no value for {', '.join(missing)}"))
        if group["method_kind"].iloc[0] != "method":
            continue
        for row in group[(group["metric"] == FORMAT_METRIC) & (group["value"] < 1)].itertuples():
            flags.append(
                _flag(
                    "format",
                    f"{where}/{row.metric}",
                    float(row.value),
                    2,
                    f"{method}'s prediction on {dataset}/{variant} breaks the competition's format "
                    f"({row.metric} = {row.value:.4g}); its metrics are scored anyway, "
                    "as the competition did, and the format check counts in no score",
                )
            )
        for row in group[group["scaled"] < -TOLERANCE].itertuples():
            flags.append(
                _flag(
                    "below_controls",
                    f"{where}/{row.metric}",
                    float(row.scaled),
                    1,
                    f"{method} scores {row.metric} = {row.value:.4g} on {dataset}/{variant}, worse than "
                    f"every control (scaled {row.scaled:.2f}, counted as 0)",
                )
            )
        for row in group[group["scaled"] > 1 + TOLERANCE].itertuples():
            flags.append(
                _flag(
                    "above_controls",
                    f"{where}/{row.metric}",
                    float(row.scaled),
                    1,
                    f"{method} scores {row.metric} = {row.value:.4g} on {dataset}/{variant}, better than "
                    f"every control (scaled {row.scaled:.2f}, counted as 1): the controls do not bracket it",
                )
            )
    flags += _control_flags(results, methods or {})
    return flags


def _control_flags(results: pd.DataFrame, methods: dict) -> list[dict]:
    """A ``controls`` flag wherever the solution control is not the best control of a metric."""
    flags = []
    controls = results[(results["method_kind"] == "control_method") & results["value"].notna()]
    for (task, dataset, variant, metric), group in controls.groupby(
        ["task", "dataset", "variant", "metric"], sort=False
    ):
        solution = group[[methods.get(f"{task}/{m}", {}).get("is_solution", False) for m in group["method"]]]
        if solution.empty or len(group) < 2:
            continue
        maximize = bool(group["maximize"].iloc[0])
        value = float(solution["value"].iloc[0])
        best = group["value"].max() if maximize else group["value"].min()
        if (best - value if maximize else value - best) > TOLERANCE * max(1.0, abs(best)):
            winner = group.loc[group["value"] == best, "method"].iloc[0]
            flags.append(
                _flag(
                    "controls",
                    f"{task}/{dataset}/{variant}/{metric}",
                    value,
                    1,
                    f"on {dataset}/{variant} the solution control scores {metric} = {value:.4g}, "
                    f"{winner} {best:.4g}: the controls do not bracket this metric",
                )
            )
    return flags


def results_json(run: Run) -> dict:
    """``{task_info, dataset_info, method_info, metric_info, results, ranks, quality_control}``.

    A result's ``metric_values`` are means over the method's seeds, ``metric_seed_sd`` their
    standard deviations; ``ranks`` is ``ranks.tsv``.
    """
    from scmib.runner.results import method_scores, seed_means

    results, runs = seed_means(run.results), run.runs.set_index("job")
    # The score the leaderboards and scores.tsv give: scored metrics only, each seed clipped.
    scores = method_scores(run.results).set_index(["task", "dataset", "variant", "method"])["mean_score"]
    rows = []
    for (task, dataset, variant, method), group in results.groupby(
        ["task", "dataset", "variant", "method"], sort=False
    ):
        job = f"{task}/{dataset}/{variant}/{method}"
        resources = runs.loc[job] if job in runs.index else None
        rows.append(
            {
                "task_id": task,
                "dataset_id": dataset,
                "variant": variant,
                "method_id": method,
                "method_kind": group["method_kind"].iloc[0],
                "metric_ids": group["metric"].tolist(),
                "metric_values": [_none_if_nan(float(v)) for v in group["value"]],
                "metric_seed_sd": [_none_if_nan(float(v)) for v in group["seed_sd"]],
                "n_seeds": int(group["n_seeds"].max()),
                "scaled_scores": [_none_if_nan(float(v)) for v in group["scaled"]],
                "mean_score": _none_if_nan(float(scores.get((task, dataset, variant, method), np.nan))),
                "run_status": group["status"].iloc[0],
                "resources": None
                if resources is None
                else {
                    "exit_code": _none_if_nan(resources["exit_code"]),
                    "wall_time_s": float(resources["wall_time_s"]),
                    "cpu_time_s": float(resources["cpu_time_s"]),
                    "peak_memory_mb": float(resources["peak_memory_mb"]),
                    "log": resources["log"],
                },
            }
        )
    info = run.info
    return {
        "scmib_version": info.get("scmib_version"),
        "task_info": list(info["tasks"].values()),
        "dataset_info": [{"dataset_id": k, **v} for k, v in info["datasets"].items()],
        "method_info": list(info["methods"].values()),
        "metric_info": list(info["metrics"].values()),
        "results": rows,
        "ranks": [] if run.ranks is None else json.loads(run.ranks.to_json(orient="records")),
        "quality_control": quality_control(results, info["methods"]),
    }

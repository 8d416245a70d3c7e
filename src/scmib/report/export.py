"""Results as JSON shaped like Open Problems' task results, with quality-control flags."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from scmib.report.build import Run

#: A scaled score this far outside [0, 1] means the controls do not bracket the method.
OUT_OF_RANGE = 0.5


def _none_if_nan(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def quality_control(results: pd.DataFrame) -> list[dict]:
    """Missing results, failed runs and scores far outside the control range."""
    flags = []
    for (task, dataset, variant, method), group in results.groupby(
        ["task", "dataset", "variant", "method"], sort=False
    ):
        where = f"{task}/{dataset}/{variant}/{method}"
        status = group["status"].iloc[0]
        if status not in ("success", "cached", "not_applicable"):
            flags.append(
                {
                    "category": "run",
                    "name": where,
                    "value": status,
                    "severity": 2,
                    "message": f"{method} did not finish on {dataset}/{variant} ({status})",
                }
            )
            continue
        missing = group.loc[group["value"].isna() & (status != "not_applicable"), "metric"]
        if len(missing):
            flags.append(
                {
                    "category": "missing",
                    "name": where,
                    "value": len(missing),
                    "severity": 2,
                    "message": f"no value for {', '.join(missing)}",
                }
            )
        outside = group[(group["scaled"] < -OUT_OF_RANGE) | (group["scaled"] > 1 + OUT_OF_RANGE)]
        for row in outside.itertuples():
            flags.append(
                {
                    "category": "scaling",
                    "name": f"{where}/{row.metric}",
                    "value": float(row.scaled),
                    "severity": 1,
                    "message": f"scaled {row.metric} = {row.scaled:.2f}: controls do not "
                    f"bracket {method} on {dataset}/{variant}",
                }
            )
    return flags


def results_json(run: Run) -> dict:
    """``{task_info, dataset_info, method_info, metric_info, results, quality_control}``."""
    results, runs = run.results, run.runs.set_index("job")
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
                "scaled_scores": [_none_if_nan(float(v)) for v in group["scaled"]],
                "mean_score": float(group["scaled"].clip(0, 1).fillna(0).mean()),
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
        "quality_control": quality_control(results),
    }

"""The results table of a run: raw values, control-scaled scores and resources.

Scaling follows Open Problems (benchmark.md): per (task, dataset, variant,
metric), ``(value - worst control) / (best control - worst control)`` with
best and worst taken by the metric's direction; per (dataset, method) the mean
of scaled scores clipped to [0, 1], missing results counting 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scmib.io import describe_h5ad, read_h5ad
from scmib.runner.execute import FAILURES, OK, JobResult, earlier_result
from scmib.runner.plan import Job, load_task_info

RESULT_COLUMNS = [
    "task",
    "dataset",
    "variant",
    "method",
    "method_kind",
    "metric",
    "value",
    "scaled",
    "maximize",
    "status",
    "metric_status",
    "wall_time_s",
    "cpu_time_s",
    "peak_memory_mb",
    "log",
]


def runs_table(jobs: list[Job], results: dict[str, JobResult]) -> pd.DataFrame:
    """One row per job: what ran, its outcome and its resources."""
    rows = []
    for job in jobs:
        result = results[job.id]
        rows.append(
            {
                "job": job.id,
                "stage": job.stage,
                "component": job.spec.id,
                "task": job.task,
                "dataset": job.dataset,
                "variant": job.variant,
                "method": job.method,
                "status": result.status,
                "exit_code": result.exit_code,
                "wall_time_s": result.wall_time_s,
                "cpu_time_s": result.cpu_time_s,
                "peak_memory_mb": result.peak_memory_mb,
                "message": result.message,
                "log": result.log,
            }
        )
    return pd.DataFrame(rows)


def results_table(jobs: list[Job], results: dict[str, JobResult]) -> pd.DataFrame:
    """The long table: one row per (task, dataset, variant, method, metric id).

    Every metric a planned method should have is present; when the method or
    the metric did not succeed the value is NaN and the statuses say why.
    """
    method_jobs = {j.id: j for j in jobs if j.stage in ("method", "control_method")}
    rows = []
    for job in jobs:
        if job.stage != "metric":
            continue
        method_job = job.deps[0]
        method_result, metric_result = results[method_job.id], results[job.id]
        values: dict[str, float] = {}
        not_applicable: dict[str, str] = {}
        if metric_result.status in OK:
            score = read_h5ad(job.outputs["output"], role="score")
            values = dict(zip(score.uns["metric_ids"], score.uns["metric_values"], strict=True))
            not_applicable = dict(score.uns.get("not_applicable", {}))
        for info in job.spec.info.metrics:
            rows.append(
                {
                    "task": job.task,
                    "dataset": job.dataset,
                    "variant": job.variant,
                    "method": job.method,
                    "method_kind": method_jobs[method_job.id].stage,
                    "metric": info.name,
                    "value": float(values.get(info.name, np.nan)),
                    "maximize": info.maximize,
                    "status": method_result.status,
                    "metric_status": (
                        "not_applicable" if info.name in not_applicable else metric_result.status
                    ),
                    "wall_time_s": method_result.wall_time_s,
                    "cpu_time_s": method_result.cpu_time_s,
                    "peak_memory_mb": method_result.peak_memory_mb,
                    "log": metric_result.log if method_result.status in OK else method_result.log,
                }
            )
    table = pd.DataFrame(rows, columns=[c for c in RESULT_COLUMNS if c != "scaled"])
    derived = summary_metric_rows(table)
    if len(derived):
        table = pd.concat([table, derived], ignore_index=True)
    table.insert(RESULT_COLUMNS.index("scaled"), "scaled", scale(table))
    return table


def summary_metrics(task: str) -> dict | None:
    """A task's ``summary_metric`` (name and the metrics it averages), if its task.yaml declares one."""
    return load_task_info(task).get("summary_metric")


def summary_metric_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of each task's summary metric: the plain mean of its metrics' raw values per method.

    The competition ranked joint embeddings by the arithmetic mean of six
    metrics. A metric that does not apply to a dataset (exit 99, e.g. no
    cell-cycle genes) is left out of that dataset's mean; a failed method's mean is NaN.
    """
    rows = []
    for task in table["task"].unique():
        info = summary_metrics(task)
        if not info:
            continue
        part = table[(table["task"] == task) & table["metric"].isin(info["of"])]
        for _, group in part.groupby(["dataset", "variant", "method"], sort=False):
            applicable = group[group["metric_status"] != "not_applicable"]
            first = group.iloc[0]
            rows.append(
                {
                    **first.to_dict(),
                    "metric": info["name"],
                    "value": applicable["value"].mean(skipna=False) if len(applicable) else np.nan,
                    "maximize": True,
                    "metric_status": "derived",
                    "log": f"mean of {', '.join(applicable['metric'])}",
                }
            )
    return pd.DataFrame(rows, columns=table.columns)


def scale(table: pd.DataFrame) -> pd.Series:
    """Control-scaled values (unclipped); NaN where the controls do not span a range."""
    scaled = pd.Series(np.nan, index=table.index, dtype=float)
    for _, group in table.groupby(["task", "dataset", "variant", "metric"], sort=False):
        controls = group.loc[group["method_kind"] == "control_method", "value"].dropna()
        if len(controls) < 2:
            continue
        maximize = bool(group["maximize"].iloc[0])
        best, worst = (controls.max(), controls.min()) if maximize else (controls.min(), controls.max())
        if np.isclose(best, worst):
            continue
        scaled[group.index] = (group["value"] - worst) / (best - worst)
    return scaled


def method_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Mean scaled score per (task, dataset, variant, method), clipped to [0, 1], missing as 0.

    A metric on which the controls do not span a range (every control passes a
    format check, say) cannot be scaled and is left out of the mean rather than counted 0.
    """
    keys = ["task", "dataset", "variant", "metric"]
    # A summary metric only restates its parts; counting it too would weigh them twice.
    table = table[table["metric_status"] != "derived"]
    scalable = table.groupby(keys, sort=False)["scaled"].transform(lambda s: s.notna().any())
    clipped = table[scalable.astype(bool)]
    clipped = clipped.assign(score=clipped["scaled"].clip(0, 1).fillna(0.0))
    return (
        clipped.groupby(["task", "dataset", "variant", "method", "method_kind"], sort=False)
        .agg(
            mean_score=("score", "mean"),
            status=("status", "first"),
            wall_time_s=("wall_time_s", "first"),
            peak_memory_mb=("peak_memory_mb", "first"),
        )
        .reset_index()
    )


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean score over the task's datasets it applies to (a failure counts 0), how many
    ran, failed and did not apply, and typical resources."""
    scores = method_scores(table)
    scores["applicable_score"] = scores["mean_score"].where(scores["status"] != "not_applicable")
    grouped = scores.groupby(["task", "method", "method_kind"], sort=False)
    out = grouped.agg(
        mean_score=("applicable_score", "mean"),
        datasets=("status", "size"),
        succeeded=("status", lambda s: int(s.isin(OK).sum())),
        failed=("status", lambda s: int(s.isin(FAILURES).sum())),
        not_applicable=("status", lambda s: int((s == "not_applicable").sum())),
        median_time_s=("wall_time_s", "median"),
        max_memory_mb=("peak_memory_mb", "max"),
    ).reset_index()
    return out.sort_values(["task", "method_kind", "mean_score"], ascending=[True, False, False])


def run_info(jobs: list[Job]) -> dict:
    """What the report needs to know about the components of a run, taken from their specs."""
    from scmib import __version__
    from scmib.data.filters import FilterLog, read_filters
    from scmib.runner.plan import load_task_info

    def refs(spec) -> dict:
        return {"doi": spec.references.doi, "repository": spec.links.repository}

    datasets, methods, metrics, tasks = {}, {}, {}, {}
    for job in jobs:
        spec = job.spec
        if job.stage == "load":
            info = next(d for d in spec.info.datasets if d.id == job.dataset)
            filters = read_filters(job.outputs["output_rna"])
            datasets[job.dataset] = {
                **info.model_dump(exclude={"args", "profiles"}),
                "loader": spec.id,
                "files": [describe_h5ad(path) for path in job.outputs.values()],
                "filters": filters,
                "warnings": FilterLog(filters).warnings,
            }
        elif job.stage in ("method", "control_method"):
            tasks.setdefault(job.task, load_task_info(job.task))
            methods[f"{job.task}/{spec.name}"] = {
                "task": job.task,
                "name": spec.name,
                "label": spec.label,
                "summary": spec.summary,
                "kind": spec.kind,
                "is_solution": spec.info.is_solution,
                "component": spec.id,
                **refs(spec),
            }
        elif job.stage == "metric":
            for metric in spec.info.metrics:
                metrics[f"{job.task}/{metric.name}"] = {
                    "task": job.task,
                    "component": spec.id,
                    **metric.model_dump(),
                }
    return {
        "scmib_version": __version__,
        "tasks": tasks,
        "datasets": datasets,
        "methods": methods,
        "metrics": metrics,
    }


def with_earlier_results(
    everything: list[Job], results: dict[str, JobResult]
) -> tuple[list[Job], dict[str, JobResult]]:
    """This run's results plus every job of ``everything`` (the unfiltered plan of the same output
    folder and profile) that finished earlier as it is now, so a run of one method never hides the
    others from the results. Jobs that never ran (or ran with other code or parameters) are left out.
    """
    merged = dict(results)
    for job in everything:  # dependencies first
        if job.id in merged or not all(d.id in merged for d in job.deps):
            continue
        if (found := earlier_result(job)) is not None:
            merged[job.id] = found
    return [job for job in everything if job.id in merged], merged


def write_tables(outdir: Path, jobs: list[Job], results: dict[str, JobResult]) -> pd.DataFrame:
    """Write ``results.tsv``/``.parquet``, ``scores.tsv``, ``summary.tsv``, ``runs.tsv`` and
    ``run_info.json`` (specs of the components that ran, for reports)."""
    import json

    folder = outdir / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run_info.json").write_text(json.dumps(run_info(jobs), indent=1, default=str))
    table = results_table(jobs, results)
    table.to_csv(folder / "results.tsv", sep="\t", index=False)
    table.to_parquet(folder / "results.parquet", index=False)
    method_scores(table).to_csv(folder / "scores.tsv", sep="\t", index=False)
    summary(table).to_csv(folder / "summary.tsv", sep="\t", index=False)
    runs_table(jobs, results).to_csv(folder / "runs.tsv", sep="\t", index=False)
    return table

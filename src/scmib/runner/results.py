"""The results table of a run: raw values, control-scaled scores and resources.

Scaling follows Open Problems (benchmark.md): per (task, dataset, variant,
metric), ``(value - worst control) / (best control - worst control)`` with
best and worst taken by the metric's direction; per (dataset, method) the mean
of scaled scores clipped to [0, 1], missing results counting 0.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scmib.contracts import score_values
from scmib.errors import ScmibError
from scmib.io import atomic_path, describe_h5ad, read_h5ad, write_text_atomic, write_tsv_atomic
from scmib.metrics import contributions
from scmib.metrics.contributions import Contributions
from scmib.metrics.summary import summary_value
from scmib.runner.execute import FAILED, FAILURES, NOT_RUN, OK, JobResult, earlier_result
from scmib.runner.plan import Job, load_task_info
from scmib.uncertainty.bootstrap import N_RESAMPLES, interval, resample_counts, stable_seed

RESULT_COLUMNS = [
    "task",
    "dataset",
    "variant",
    "method",
    "method_kind",
    "seed",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "seed_mean",
    "seed_sd",
    "n_seeds",
    "scaled",
    "maximize",
    "scored",
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
                "seed": job.seed,
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


@dataclass
class RunResults:
    """The results table and, by its row index, the bootstrap replicates of each value that has a
    per-cell form (:mod:`scmib.metrics.contributions`; the summary metric's from its parts')."""

    table: pd.DataFrame
    replicates: dict[int, np.ndarray]


def collect_results(jobs: list[Job], results: dict[str, JobResult]) -> RunResults:
    """The long table, one row per (task, dataset, variant, method, seed, metric id), with the
    bootstrap replicates behind its intervals.

    Every metric a planned method should have is present; when the method or
    the metric did not succeed the value is NaN and the statuses say why.
    ``ci_low``/``ci_high`` are the bootstrap interval over test cells of that run's value,
    ``seed_mean``/``seed_sd``/``n_seeds`` its mean and standard deviation over the method's seeds.
    """
    method_jobs = {j.id: j for j in jobs if j.stage in ("method", "control_method")}
    rows = []
    per_cell: dict[int, tuple[pd.Index, Contributions]] = {}
    for job in jobs:
        if job.stage != "metric":
            continue
        method_job = job.deps[0]
        method_result, metric_result = results[method_job.id], results[job.id]
        values: dict[str, float] = {}
        not_applicable: dict[str, str] = {}
        found: dict[str, Contributions] = {}
        metric_status = metric_result.status
        if metric_result.status in OK:
            try:
                score = read_h5ad(job.outputs["output"], role="score")
                values = score_values(score, [m.name for m in job.spec.info.metrics], job.outputs["output"])
            except ScmibError as exc:
                # A recorded success whose score cannot be read now (changed or damaged since):
                # its rows fail, saying why, and the other results stand.
                print(f"scmib: results of {job.id}: {exc}", file=sys.stderr)
                metric_status = FAILED
            else:
                not_applicable = dict(score.uns.get("not_applicable", {}))
                found = contributions.read(score)
        for info in job.spec.info.metrics:
            if info.name in found:
                per_cell[len(rows)] = (score.obs_names, found[info.name])
            rows.append(
                {
                    "task": job.task,
                    "dataset": job.dataset,
                    "variant": job.variant,
                    "method": job.method,
                    "method_kind": method_jobs[method_job.id].stage,
                    "seed": job.seed,
                    "metric": info.name,
                    "value": float(values.get(info.name, np.nan)),
                    "maximize": info.maximize,
                    "scored": info.scored,
                    "status": method_result.status,
                    "metric_status": "not_applicable" if info.name in not_applicable else metric_status,
                    "wall_time_s": method_result.wall_time_s,
                    "cpu_time_s": method_result.cpu_time_s,
                    "peak_memory_mb": method_result.peak_memory_mb,
                    "log": metric_result.log if method_result.status in OK else method_result.log,
                }
            )
    measured = [c for c in RESULT_COLUMNS if c not in DERIVED_COLUMNS]
    table = pd.DataFrame(rows, columns=measured).astype({"seed": "Int64"})
    replicates = bootstrap_rows(table, per_cell)
    derived = summary_metric_rows(table)
    if len(derived):
        first = len(table)
        table = pd.concat([table, derived], ignore_index=True).astype({"seed": "Int64"})
        replicates.update(summary_metric_replicates(table, replicates, range(first, len(table))))
    table["ci_low"], table["ci_high"] = np.nan, np.nan
    for row, draws in replicates.items():
        table.loc[row, ["ci_low", "ci_high"]] = interval(draws)
    seeds = table.groupby(SEEDLESS_KEYS, sort=False, dropna=False)["value"]
    table["seed_mean"] = seeds.transform("mean")
    table["seed_sd"] = seeds.transform(seed_sd)
    table["n_seeds"] = seeds.transform("size")
    table["scaled"] = scale(table)
    return RunResults(table[RESULT_COLUMNS], replicates)


#: A row's identity without its seed: the rows a method's seeds share.
SEEDLESS_KEYS = ["task", "dataset", "variant", "method", "metric"]
#: Columns computed from the measured ones.
DERIVED_COLUMNS = ("ci_low", "ci_high", "seed_mean", "seed_sd", "n_seeds", "scaled")


def seed_sd(values: pd.Series) -> float:
    """Standard deviation over seeds (n - 1 in the denominator); 0 for one run: a deterministic
    method, or one seed; NaN when a seed has no value."""
    return 0.0 if len(values) < 2 else float(values.std(ddof=1, skipna=False))


def bootstrap_rows(
    table: pd.DataFrame, per_cell: dict[int, tuple[pd.Index, Contributions]]
) -> dict[int, np.ndarray]:
    """Bootstrap replicates of every value with contributions, by row: per (task, dataset,
    variant) one set of seeded resamples of its cells, the same for every method and seed."""
    by_group: dict[tuple, list[int]] = {}
    for row in per_cell:
        by_group.setdefault(tuple(table.loc[row, ["task", "dataset", "variant"]]), []).append(row)
    replicates: dict[int, np.ndarray] = {}
    for group, rows in by_group.items():
        cells = pd.Index(pd.unique(np.concatenate([per_cell[row][0].to_numpy() for row in rows])))
        positions = {row: cells.get_indexer(per_cell[row][0]) for row in rows}
        blocks: dict[int, list[np.ndarray]] = {row: [] for row in rows}
        for counts in resample_counts(len(cells), N_RESAMPLES, stable_seed(*map(str, group))):
            for row in rows:
                blocks[row].append(per_cell[row][1].resampled(counts[:, positions[row]]))
        replicates.update({row: np.concatenate(parts) for row, parts in blocks.items()})
    return replicates


def summary_metric_replicates(
    table: pd.DataFrame, replicates: dict[int, np.ndarray], rows: range
) -> dict[int, np.ndarray]:
    """Replicates of summary-metric rows: the mean of their parts' replicates, a part without a
    per-cell form held at its value. Only where some part has replicates."""
    found = {}
    for row in rows:
        derived = table.loc[row]
        info = summary_metrics(str(derived["task"])) or {}
        same = (table.index < rows.start) & (table["metric_status"] != "not_applicable")
        for key in ["task", "dataset", "variant", "method"]:
            same &= table[key] == derived[key]
        same &= table["seed"].isna() if pd.isna(derived["seed"]) else table["seed"] == derived["seed"]
        parts = table.index[same & table["metric"].isin(info.get("of", []))]
        if not any(part in replicates for part in parts):
            continue
        found[row] = np.mean(
            [replicates.get(part, np.full(N_RESAMPLES, table.loc[part, "value"])) for part in parts], axis=0
        )
    return found


def summary_metrics(task: str) -> dict | None:
    """A task's ``summary_metric`` (name and the metrics it averages), if its task.yaml declares one."""
    return load_task_info(task).get("summary_metric")


def summary_metric_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of each task's summary metric: the plain mean of its metrics' raw values per method.

    The competition ranked joint embeddings by the arithmetic mean of six
    metrics. A metric that does not apply to a dataset (exit 99, e.g. no
    cell-cycle genes) is left out of that dataset's mean; a failed method's mean is NaN, and so
    is the mean of a run that did not select every part (``--metrics``).
    """
    rows = []
    for task in table["task"].unique():
        info = summary_metrics(task)
        if not info:
            continue
        part = table[(table["task"] == task) & table["metric"].isin(info["of"])]
        for _, group in part.groupby(["dataset", "variant", "method", "seed"], sort=False, dropna=False):
            applicable = group[group["metric_status"] != "not_applicable"]
            # A part with no row at all was not selected (--metrics): the mean of the others would
            # pass for the competition's score, so there is none.
            unrun = [name for name in info["of"] if name not in set(group["metric"])]
            first = group.iloc[0]
            rows.append(
                {
                    **first.to_dict(),
                    "metric": info["name"],
                    "value": np.nan if unrun else summary_value(applicable["value"].to_numpy()),
                    "maximize": True,
                    "scored": False,  # it restates its parts: counting it too would weigh them twice
                    "metric_status": "derived",
                    "log": f"not run: {', '.join(unrun)}"
                    if unrun
                    else f"mean of {', '.join(applicable['metric'])}",
                }
            )
    return pd.DataFrame(rows, columns=table.columns)


def scale(table: pd.DataFrame) -> pd.Series:
    """Control-scaled values (unclipped); NaN where the controls do not span a range.

    A control run with several seeds counts with its mean over them; a control with no value
    (it failed) is left out, and the metric is scaled by the others if two or more remain.
    """
    scaled = pd.Series(np.nan, index=table.index, dtype=float)
    for _, group in table.groupby(["task", "dataset", "variant", "metric"], sort=False):
        controls = group[group["method_kind"] == "control_method"].groupby("method")["value"].mean().dropna()
        if len(controls) < 2:
            continue
        maximize = bool(group["maximize"].iloc[0])
        best, worst = (controls.max(), controls.min()) if maximize else (controls.min(), controls.max())
        if np.isclose(best, worst):
            continue
        scaled[group.index] = (group["value"] - worst) / (best - worst)
    return scaled


def scored(table: pd.DataFrame) -> pd.Series:
    """Which rows count in a method's scaled score: not a summary metric's (it restates its parts),
    nor a metric whose spec says ``scored: false`` (one the competition did not score, or a part of
    one that is). Tables written before that column existed count every row but the summaries."""
    if "scored" in table:
        return table["scored"].astype(bool)
    return table["metric_status"] != "derived"


def method_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Mean scaled score per (task, dataset, variant, method) over its :func:`scored` metrics,
    clipped to [0, 1], missing as 0.

    A metric on which the controls do not span a range (every control passes a
    format check, say) cannot be scaled and is left out of the mean rather than counted 0;
    where no metric can be (the controls failed), ``mean_score`` is NaN and the summary counts the
    dataset as ``unscaled``. A method that does not apply to the dataset (exit 99) has NaN, not 0.
    With several seeds, each seed's run is scored so; ``mean_score`` is their mean (a failed seed
    counting 0), ``score_sd`` their standard deviation (0 for a deterministic method), ``seeds_ok``
    how many of the ``n_seeds`` succeeded and ``status`` the worst seed's.
    """
    table = table[scored(table)]
    clipped = table.assign(score=_clipped(table))
    # Averaged over every metric that can be scaled on the dataset: one a run lacks counts 0.
    keys = ["task", "dataset", "variant"]
    scalable = clipped[clipped["score"].notna()].groupby(keys, sort=False)["metric"].nunique()
    method = ["task", "dataset", "variant", "method", "method_kind"]
    per_seed = (
        clipped.groupby([*method, "seed"], sort=False, dropna=False)
        .agg(
            score=("score", "sum"),
            status=("status", "first"),
            wall_time_s=("wall_time_s", "first"),
            peak_memory_mb=("peak_memory_mb", "first"),
        )
        .reset_index()
    )
    n_metrics = pd.MultiIndex.from_frame(per_seed[keys]).map(scalable.to_dict().get)
    per_seed["score"] = per_seed["score"] / pd.Series(n_metrics, index=per_seed.index, dtype=float)
    # A method that does not apply to the dataset has no score there (not a 0, as a failure has).
    per_seed["score"] = per_seed["score"].where(per_seed["status"] != "not_applicable")
    return (
        per_seed.groupby(method, sort=False)
        .agg(
            mean_score=("score", "mean"),
            score_sd=("score", seed_sd),
            n_seeds=("score", "size"),
            seeds_ok=("status", lambda statuses: int(statuses.isin(OK).sum())),
            status=("status", worst_status),
            wall_time_s=("wall_time_s", "mean"),
            peak_memory_mb=("peak_memory_mb", "max"),
        )
        .reset_index()
    )


def _clipped(table: pd.DataFrame) -> pd.Series:
    """Each row's scaled value clipped to [0, 1], a missing one 0; NaN where the controls do not
    span a range for its (task, dataset, variant, metric): that metric cannot be scored there."""
    keys = ["task", "dataset", "variant", "metric"]
    scalable = table.groupby(keys, sort=False)["scaled"].transform(lambda s: s.notna().any())
    return table["scaled"].clip(0, 1).fillna(0.0).where(scalable.astype(bool))


def metric_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Per (task, dataset, variant, method, metric) of the :func:`scored` rows: the metric's part of
    the method's score there, as :func:`method_scores` takes it (clipped per seed, a missing value
    0, then averaged over seeds); NaN where it does not apply to the method, no row where the
    controls do not span a range."""
    table = table[scored(table)]
    clipped = _clipped(table)
    applies = (table["status"] != "not_applicable") & (table["metric_status"] != "not_applicable")
    # A seed without a row of this metric counts 0, as in the method's score.
    seeds = table.groupby(["task", "dataset", "variant", "method"], sort=False, dropna=False)["seed"]
    table = table.assign(
        score=clipped.where(applies), n_seeds=seeds.transform(lambda s: s.nunique(dropna=False))
    )
    table = table[clipped.notna()]
    keys = [*SEEDLESS_KEYS, "method_kind"]
    grouped = table.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(score=("score", lambda s: s.sum(min_count=1)), n_seeds=("n_seeds", "first"))
    return out.assign(score=out["score"] / out["n_seeds"]).drop(columns="n_seeds").reset_index()


def seed_means(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, dataset, variant, method, metric): the value and scaled value averaged
    over the method's seeds (its only run for a deterministic one), the worst status, mean resources.

    ``ci_low``/``ci_high`` are kept only where there was one run: intervals over seeds and cells
    together are the scores' (``scores.tsv``), not a metric's.
    """
    keys = [*SEEDLESS_KEYS, "method_kind"]
    grouped = table.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(
        value=("value", "mean"),
        ci_low=("ci_low", "first"),
        ci_high=("ci_high", "first"),
        seed_sd=("seed_sd", "first"),
        n_seeds=("n_seeds", "first"),
        scaled=("scaled", "mean"),
        maximize=("maximize", "first"),
        **({"scored": ("scored", "first")} if "scored" in table else {}),
        status=("status", worst_status),
        metric_status=("metric_status", worst_status),
        wall_time_s=("wall_time_s", "mean"),
        cpu_time_s=("cpu_time_s", "mean"),
        peak_memory_mb=("peak_memory_mb", "max"),
        log=("log", "first"),
    ).reset_index()
    several = out["n_seeds"] > 1
    out.loc[several, ["ci_low", "ci_high"]] = np.nan
    return out


def worst_status(statuses: pd.Series) -> str:
    """A method's status over its seeds: the first that is not a success, else the first."""
    failed = statuses[~statuses.isin(OK)]
    return str(failed.iloc[0] if len(failed) else statuses.iloc[0])


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean score over the task's datasets it applies to (a failure counts 0), how many
    ran, failed, did not apply and could not be scaled (``unscaled``: the controls spanned no
    range there; left out of the mean), and typical resources.

    Its counts are of (dataset, variant) pairs: each direction of a dataset (GEX→ADT, ADT→GEX)
    counts once, as each was its own dataset in the competition.
    """
    scores = method_scores(table)
    applicable = scores["status"] != "not_applicable"
    scores["applicable_score"] = scores["mean_score"].where(applicable)
    scores["unscaled"] = applicable & scores["mean_score"].isna()
    grouped = scores.groupby(["task", "method", "method_kind"], sort=False)
    out = grouped.agg(
        mean_score=("applicable_score", "mean"),
        datasets=("status", "size"),
        succeeded=("status", lambda s: int(s.isin(OK).sum())),
        failed=("status", lambda s: int(s.isin(FAILURES).sum())),
        not_applicable=("status", lambda s: int((s == "not_applicable").sum())),
        unscaled=("unscaled", "sum"),
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

    datasets, methods, metrics, tasks, settings = {}, {}, {}, {}, {}
    for job in jobs:
        spec = job.spec
        if job.settings:
            settings[spec.id] = job.settings
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
                "arguments": job.settings,
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
        # Arguments this run set instead of the specs' defaults (--component_args), by component id.
        "component_args": settings,
    }


def with_earlier_results(
    everything: list[Job], results: dict[str, JobResult]
) -> tuple[list[Job], dict[str, JobResult]]:
    """This run's results plus every job of ``everything`` (the unfiltered plan of the same output
    folder and profile) that finished earlier as it is now, so a run of one method never hides the
    others from the results. Jobs that never ran (or ran with other code or parameters) are left out,
    but for the method and metric jobs that would leave a method in the results scored on fewer
    datasets or metrics than the others: those are ``not_run`` results, scored 0.
    """
    merged = dict(results)
    for job in everything:  # dependencies first
        if job.id in merged or not all(d.id in merged for d in job.deps):
            continue
        if (found := earlier_result(job)) is not None:
            merged[job.id] = found

    # A method in the results that has not run as it is now on a dataset where others have (a run
    # filtered by --datasets, then by --methods) is a result of its own there, scored 0: a method
    # run on the easier datasets alone is not ranked over those alone.
    methods = [job for job in everything if job.stage in ("method", "control_method")]
    in_results = {(job.task, job.method) for job in methods if job.id in merged}
    places = {(job.task, job.dataset, job.variant) for job in methods if job.id in merged}
    ran_there = {(job.task, job.dataset, job.variant, job.method) for job in methods if job.id in merged}
    for job in methods:
        place = (job.task, job.dataset, job.variant)
        if (job.task, job.method) in in_results and place in places and (*place, job.method) not in ran_there:
            why = "not run here as it is now: run without --datasets/--methods filters to complete it"
            merged[job.id] = JobResult(job.id, NOT_RUN, None, 0.0, 0.0, 0.0, job.key, "", why)

    # A metric that scored other methods on a dataset but has not run on one in the results (an
    # interrupted run, then a filtered one) is a result of its own, scored 0: that method is not
    # scored on fewer metrics than the others. A metric that scored nothing there stays out.
    def where(job: Job) -> tuple[str, ...]:
        return (job.task, job.dataset, job.variant, job.spec.id)

    scoring = {where(job) for job in everything if job.stage == "metric" and job.id in merged}
    for job in everything:
        method = merged.get(job.deps[0].id) if job.stage == "metric" else None
        ran = method is not None and (method.status in OK or method.status == NOT_RUN)
        if ran and job.id not in merged and where(job) in scoring:
            why = "not run as it is now: run without --methods/--metrics filters to complete it"
            merged[job.id] = JobResult(job.id, NOT_RUN, None, 0.0, 0.0, 0.0, job.key, "", why)
    return [job for job in everything if job.id in merged], merged


def write_tables(outdir: Path, jobs: list[Job], results: dict[str, JobResult]) -> pd.DataFrame:
    """Write ``results.tsv``/``.parquet``, ``scores.tsv`` (with bootstrap intervals),
    ``summary.tsv``, ``ranks.tsv``, ``runs.tsv`` and ``run_info.json`` (specs of the components
    that ran, for reports)."""
    import json

    from scmib.uncertainty.scores import column_replicates, ranks, score_intervals

    folder = outdir / "results"
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "run_info.json", json.dumps(run_info(jobs), indent=1, default=str))
    collected = collect_results(jobs, results)
    table = collected.table
    write_tsv_atomic(folder / "results.tsv", table)
    with atomic_path(folder / "results.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    replicates = column_replicates(table, collected.replicates)
    scores, totals = method_scores(table), summary(table)
    write_tsv_atomic(folder / "scores.tsv", score_intervals(scores, replicates))
    write_tsv_atomic(folder / "summary.tsv", totals)
    write_tsv_atomic(folder / "ranks.tsv", ranks(scores, totals, replicates))
    write_tsv_atomic(folder / "runs.tsv", runs_table(jobs, results))
    return table

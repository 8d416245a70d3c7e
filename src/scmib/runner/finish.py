"""The results folder of a run (tables and report), rewritten only when what it is made of changed.

Reading every score file, 1,000 bootstrap resamples and the HTML report took most of a resumed
run's time (of the default profile's 33.9 s on 2 cores; 9.8 of a test-profile resume's 12.4 s
under cProfile). What they are made of is known before reading anything: the jobs' records
(status, content key, time and memory) and the scmib code that turns them into tables. Its
digest is stored beside the tables, written last, and removed first when they are written
again, so an interrupted write is redone on the next run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import astuple, replace
from pathlib import Path

import pandas as pd

from scmib.io import write_text_atomic
from scmib.report import write_report
from scmib.runner.execute import CACHED, SUCCESS, JobResult
from scmib.runner.plan import Job, package_digest
from scmib.runner.results import write_tables

#: Digest of the inputs of the results folder, written after everything else in it.
STAMP = ".inputs.sha256"
#: What ``write_tables`` and ``write_report`` leave in ``results/``.
OUTPUTS = ("results.tsv", "results.parquet", "scores.tsv", "summary.tsv", "ranks.tsv", "runs.tsv")
OUTPUTS += ("run_info.json", "report.html", "results.json")


def results_digest(jobs: list[Job], results: dict[str, JobResult]) -> str:
    """SHA-256 of the jobs (in plan order; each has a result), their records (each with its
    content key: the component's files, parameters and inputs) and scmib's code. A job taken from
    the cache counts as the success it was recorded as, so a resume does not rewrite what its
    first run wrote."""
    digest = hashlib.sha256(package_digest().encode())
    for job in jobs:
        result = results[job.id]
        if result.status == CACHED:
            result = replace(result, status=SUCCESS)
        digest.update(json.dumps([job.id, astuple(result)], default=str).encode())
    return digest.hexdigest()


def write_results(outdir: Path, jobs: list[Job], results: dict[str, JobResult]) -> tuple[pd.DataFrame, Path]:
    """Write ``outdir/results`` (tables: :func:`~scmib.runner.results.write_tables`; report:
    :func:`~scmib.report.write_report`) unless it already holds them for exactly these jobs and
    records; return the results table and the report's path."""
    folder = outdir / "results"
    stamp = folder / STAMP
    digest = results_digest(jobs, results)
    current = stamp.is_file() and stamp.read_text() == digest
    if current and all((folder / name).is_file() for name in OUTPUTS):
        return pd.read_parquet(folder / "results.parquet"), folder / "report.html"
    stamp.unlink(missing_ok=True)
    table = write_tables(outdir, jobs, results)
    report = write_report(outdir)["html"]
    write_text_atomic(stamp, digest)
    return table, report

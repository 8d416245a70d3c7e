"""Build the report files of a run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from scmib.errors import ScmibError
from scmib.io import write_text_atomic, write_tsv_atomic
from scmib.report.compare import compare, compare_html
from scmib.report.export import results_json
from scmib.report.html import render_html


@dataclass
class Run:
    """A finished run, as read back from its folder."""

    folder: Path
    results: pd.DataFrame
    runs: pd.DataFrame
    info: dict
    scores: pd.DataFrame | None = None
    """``scores.tsv`` (with bootstrap intervals), where the run wrote one."""
    ranks: pd.DataFrame | None = None
    """``ranks.tsv``, where the run wrote one."""


def load_run(folder: str | Path) -> Run:
    folder = Path(folder)
    paths = {name: folder / "results" / name for name in ("results.tsv", "runs.tsv", "run_info.json")}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise ScmibError(f"{folder} is not a finished scmib run: missing {missing}")
    optional = {
        name: pd.read_csv(path, sep="\t") if (path := folder / "results" / f"{name}.tsv").is_file() else None
        for name in ("scores", "ranks")
    }
    return Run(
        folder=folder,
        results=pd.read_csv(paths["results.tsv"], sep="\t", keep_default_na=True),
        runs=pd.read_csv(paths["runs.tsv"], sep="\t").fillna({"message": "", "log": ""}),
        info=json.loads(paths["run_info.json"].read_text()),
        **optional,
    )


def write_report(folder: str | Path, compare_with: str | Path | None = None) -> dict[str, Path]:
    """Write ``results/report.html`` and ``results/results.json``; return their paths.

    With ``compare_with`` (another finished run, the base), also ``results/compare.tsv`` and
    ``results/compare.html``: each method's rank and score in both runs (see :mod:`.compare`).
    """
    run = load_run(folder)
    out = run.folder / "results"
    html_path, json_path = out / "report.html", out / "results.json"
    write_text_atomic(html_path, render_html(run))
    write_text_atomic(json_path, json.dumps(results_json(run), indent=1, default=str))
    paths = {"html": html_path, "json": json_path}
    if compare_with is not None:
        base = load_run(compare_with)
        table = compare(run, base)
        write_tsv_atomic(out / "compare.tsv", table)
        write_text_atomic(out / "compare.html", compare_html(table, run, base))
        paths |= {"compare": out / "compare.html", "compare_tsv": out / "compare.tsv"}
    return paths

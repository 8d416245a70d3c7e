"""The report of a run that had a failed and a not-applicable method."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from scmib.report.html import colour

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class HeatmapCells(HTMLParser):
    """Rows and columns of the cells of one heatmap SVG in an HTML document."""

    def __init__(self, svg_id: str) -> None:
        super().__init__()
        self.svg_id, self.inside, self.cells = svg_id, False, set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "svg":
            self.inside = attrs.get("id") == self.svg_id
        if self.inside and tag == "g" and attrs.get("class") == "cell":
            self.cells.add((attrs["data-row"], attrs["data-col"]))


def expected_cells(outdir) -> set[tuple[str, str]]:
    table = pd.read_csv(outdir / "results" / "results.tsv", sep="\t")
    return {
        (m, f"{d} {v}") for m, d, v in zip(table["method"], table["dataset"], table["variant"], strict=True)
    }


def test_run_writes_a_complete_report_despite_a_failed_method(first_run):
    outdir, _ = first_run
    html = (outdir / "results" / "report.html").read_text()
    parser = HeatmapCells("summary-heatmap")
    parser.feed(html)
    assert parser.cells == expected_cells(outdir)
    assert ("crashing_method", "neurips2021_starter_cite gex2adt") in parser.cells
    for section in ("overview", "summary", "metrics", "resources", "failures", "reference"):
        assert f"id='{section}'" in html or f'id="{section}"' in html
    assert "deliberate crash" in html  # the failed job's log is in the report
    assert "not_applicable" in html and "inapplicable_method" in html
    assert "Guanlab 0.385" in html  # NeurIPS data: the competition's numbers beside ours


def test_results_json_has_open_problems_shape_and_flags_the_failure(first_run):
    outdir, _ = first_run
    data = json.loads((outdir / "results" / "results.json").read_text())
    assert {"task_info", "dataset_info", "method_info", "metric_info", "results", "quality_control"} <= set(
        data
    )
    assert {m["name"] for m in data["method_info"]} >= {"knn_regression", "solution"}
    knn = next(r for r in data["results"] if r["method_id"] == "knn_regression")
    assert knn["metric_ids"] == ["rmse", "mae"] and knn["run_status"] in ("success", "cached")
    assert knn["resources"]["peak_memory_mb"] > 0
    flagged = {f["name"] for f in data["quality_control"] if f["category"] == "run"}
    assert "predict_modality/neurips2021_starter_cite/gex2adt/crashing_method" in flagged


def test_report_command_rewrites_the_report(first_run, tmp_path):
    outdir, _ = first_run
    (outdir / "results" / "report.html").unlink()
    proc = subprocess.run(
        [sys.executable, "-m", "scmib.cli", "report", str(outdir)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (outdir / "results" / "report.html").is_file()
    proc = subprocess.run(
        [sys.executable, "-m", "scmib.cli", "report", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "not a finished scmib run" in proc.stderr


def _require_chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    return CHROMIUM


def test_heatmap_renders_in_headless_chromium(first_run, tmp_path):
    chromium = _require_chromium()
    outdir, _ = first_run
    url = (outdir / "results" / "report.html").resolve().as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, *profile, "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    parser = HeatmapCells("summary-heatmap")
    parser.feed(dom.stdout)
    assert parser.cells == expected_cells(outdir)  # every method x dataset in the rendered DOM
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *CHROMIUM_FLAGS, *profile, "--window-size=1400,1100", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)

    def count(hex_colour: str) -> int:
        rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(pixels - rgb).sum(axis=1) <= 6).sum())

    # The solution row (score 1), the zeros control (score 0) and the failed method's grey
    # cells are all painted on screen.
    assert count(colour(1.0)) > 1000
    assert count(colour(0.0)) > 1000
    assert count(colour(float("nan"))) > 500

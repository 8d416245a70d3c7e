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


class Leaderboards(HTMLParser):
    """Every leaderboard table of an HTML document: per task, its rows in order as
    ``(method, kind, {column: (data-value or None, shown text, title)})``, and in ``intervals`` the
    interval bar of each cell that has one: ``{(task, method, column): (low, high)}``."""

    def __init__(self) -> None:
        super().__init__()
        self.boards: dict[str, list] = {}
        self.intervals: dict[tuple[str, str, str], tuple[float, float]] = {}
        self.columns: dict[str, list[str]] = {}
        self.task = None
        self.cell = None
        self.header = None
        self.in_row = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("class") == "leaderboard":
            self.task = attrs["id"].removeprefix("leaderboard-")
            self.boards[self.task], self.columns[self.task] = [], []
        elif self.task and tag == "th":
            self.header = ""
        elif self.task and tag == "tr":
            self.in_row = "data-method" in attrs  # not the rule above the controls
            if self.in_row:
                self.boards[self.task].append((attrs["data-method"], attrs["data-kind"], {}))
        elif self.task and tag == "td" and self.in_row:
            self.cell = [attrs.get("data-value"), "", attrs.get("title", "")]
        elif self.cell is not None and tag == "span" and attrs.get("class") == "ci":
            method, _, cells = self.boards[self.task][-1]
            column = self.columns[self.task][len(cells)]
            interval = (float(attrs["data-low"]), float(attrs["data-high"]))
            self.intervals[(self.task, method, column)] = interval

    def handle_data(self, data):
        if self.header is not None:
            self.header += data
        elif self.cell is not None:
            self.cell[1] += data

    def handle_endtag(self, tag):
        if tag == "th" and self.header is not None:
            self.columns[self.task].append(self.header)
            self.header = None
        elif tag == "td" and self.cell is not None:
            _, _, cells = self.boards[self.task][-1]
            cells[self.columns[self.task][len(cells)]] = tuple(self.cell)
            self.cell = None
        elif tag == "table":
            self.task = None


def parse_leaderboards(text: str) -> Leaderboards:
    parser = Leaderboards()
    parser.feed(text)
    return parser


def tables(outdir) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    read = lambda name: pd.read_csv(outdir / "results" / name, sep="\t")  # noqa: E731
    return read("results.tsv"), read("scores.tsv"), read("summary.tsv"), read("ranks.tsv")


def assert_leaderboards_are_the_results_tables(boards: Leaderboards, outdir) -> None:
    """Every number shown on every leaderboard is the results tables' own, rows in their rank order,
    controls under the methods, blanks where a run gave no value (with the reason), never "nan"."""
    results, scores, totals, ranks = tables(outdir)
    assert set(boards.boards) == set(results["task"])
    shown_intervals = dict(boards.intervals)
    for task, rows in boards.boards.items():
        total = totals[totals["task"] == task].set_index("method")
        ranked = ranks[(ranks["task"] == task) & (ranks["dataset"] == "all")].set_index("method")
        kinds = [kind for _, kind, _ in rows]
        assert kinds == sorted(kinds, key=lambda k: k == "control"), "controls must come after methods"
        for kind in ("method", "control"):
            shown = [cells["overall"][0] for _, k, cells in rows if k == kind]
            overall = [float(v) if v is not None else -np.inf for v in shown]
            assert overall == sorted(overall, reverse=True), f"{task} {kind}s are not ranked"
        assert {m for m, _, _ in rows} == set(total.index)
        for method, _, cells in rows:
            expected = {
                "overall": total.loc[method, "mean_score"],
                "wall time (s)": total.loc[method, "median_time_s"],
                "peak memory (MB)": total.loc[method, "max_memory_mb"],
            }
            if method in ranked.index:  # how sure the overall ranking is: ranks.tsv's own numbers
                expected["P(best)"] = ranked.loc[method, "p_best"]
                expected["tied group"] = ranked.loc[method, "tied_group"]
                interval = ranked.loc[method, ["ci_low", "ci_high"]].astype(float)
                shown = shown_intervals.pop((task, method, "overall"))
                assert shown == pytest.approx(tuple(interval), abs=1e-12), (task, method)
            of_method = scores[(scores["task"] == task) & (scores["method"] == method)]
            for row in of_method.itertuples():
                ok = row.seeds_ok > 0  # shown where any seed succeeded (a failed one counts 0)
                column = f"{row.dataset} {row.variant}"
                expected[column] = row.mean_score if ok else np.nan
                if ok and np.isfinite(row.ci_low):
                    shown = shown_intervals.pop((task, method, column))
                    assert shown == pytest.approx((row.ci_low, row.ci_high), abs=1e-12), column
            for column, value in expected.items():
                shown, text, title = cells[column]
                if np.isfinite(value):
                    assert shown is not None and abs(float(shown) - value) < 1e-9, (task, method, column)
                    # The text is the value to the digits it shows (0.15 may show as 0.1 or 0.2).
                    digits = text.strip().partition(".")[2]
                    assert len(digits) <= 3, (method, column, text)
                    assert abs(float(text) - value) <= 0.5 * 10 ** -len(digits) + 1e-9, (method, column, text)
                else:
                    assert shown is None and text == "" and title, (task, method, column)
            for column, (_, text, _) in cells.items():
                assert "nan" not in text.lower(), (task, method, column)
    assert not shown_intervals, f"interval bars the tables do not have: {sorted(shown_intervals)}"


def test_run_writes_a_complete_report_despite_a_failed_method(first_run):
    outdir, _ = first_run
    html = (outdir / "results" / "report.html").read_text()
    boards = parse_leaderboards(html)
    assert_leaderboards_are_the_results_tables(boards, outdir)
    crashed = next(cells for m, _, cells in boards.boards["predict_modality"] if m == "crashing_method")
    assert "deliberate crash" in crashed["neurips2021_starter_cite gex2adt"][2]  # why it is blank
    assert crashed["overall"][0] == "0.0"  # a failure counts 0
    inapplicable = next(
        cells for m, _, cells in boards.boards["predict_modality"] if m == "inapplicable_method"
    )
    assert inapplicable["overall"][0] is None and "applies to no dataset" in inapplicable["overall"][2]
    for section in ("overview", "task-predict_modality", "failures", "reference"):
        assert f"id='{section}'" in html or f'id="{section}"' in html
    assert "deliberate crash" in html  # the failed job's log is in the report
    assert "not_applicable" in html and "inapplicable_method" in html
    # The same reason on both directions is said once.
    problems = html[html.index('id="problems"') : html.index('id="reference"')]
    assert problems.count("not applicable: needs ATAC") == 1
    assert "Guanlab 0.385" in html  # NeurIPS data: the competition's numbers beside ours
    assert "doi.org/10." in html and "doi.org/[" not in html  # a link per DOI of a spec's list


def test_one_failure_on_every_dataset_reads_as_one_reason_and_keeps_its_paths():
    from scmib.report.html import problems_section

    jobs = [f"predict_modality/ds/{v}/broken" for v in ("gex2adt", "adt2gex")]
    runs = pd.DataFrame(
        {
            "job": [*jobs, f"{jobs[0]}/error"],
            "status": ["failed", "failed", "upstream_failed"],
            "message": [f"ContractError: file '/out/{job}/prediction.h5ad': NaN in X" for job in jobs]
            + [f"{jobs[0]}: failed"],
            "log": ["", "", ""],
        }
    )
    section = problems_section(runs)
    assert section.count("ContractError") == 1 and "2 jobs" in section
    assert "&lt;job folder&gt;/prediction.h5ad" in section and "its method/" not in section
    assert "its method: failed" in section


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


def test_leaderboards_render_in_headless_chromium(first_run, tmp_path):
    chromium = _require_chromium()
    outdir, _ = first_run
    url = (outdir / "results" / "report.html").resolve().as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, *profile, "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    # What the browser shows is what the tables say.
    assert_leaderboards_are_the_results_tables(parse_leaderboards(dom.stdout), outdir)
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

    # The solution's cells (score 1) and the zeros control's (score 0) are painted on screen.
    assert count(colour(1.0)) > 500
    assert count(colour(0.0)) > 500


def test_cards_and_pictures_say_what_the_tables_say(first_run):
    outdir, _ = first_run
    html = (outdir / "results" / "report.html").read_text()
    card = html[html.index("id='dataset-neurips2021_starter_cite'") :].split("</div>")[0]
    assert "<dd>600</dd>" in card and "1,000 GEX, 134 ADT" in card and "<dd>2</dd>" in card
    assert 'href="https://doi.org/' in html  # method and dataset references are links
    assert "id='method-predict_modality-knn_regression'" in html
    _, scores, _, _ = tables(outdir)
    ran = scores[scores["status"].isin(["success", "cached"]) & (scores["wall_time_s"] > 0)]
    for task, part in ran.groupby("task"):
        plot = html[html.index(f'id="cost-{task}"') :].split("</svg>")[0]
        assert plot.count('class="point"') == len(part)  # one point per method and dataset


def compared(new, results_dir, keep, tmp_path) -> tuple[pd.DataFrame, str]:
    """``scmib report NEW --compare BASE`` where BASE holds the rows of ``results_dir``'s results
    table that ``keep`` keeps; ``compare.tsv`` and ``compare.html`` as written in NEW."""
    base = tmp_path / "base"
    shutil.copytree(results_dir, base / "results")
    results = pd.read_csv(base / "results" / "results.tsv", sep="\t")
    results[keep(results)].to_csv(base / "results" / "results.tsv", sep="\t", index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "scmib.cli", "report", str(new), "--compare", str(base)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    page = (new / "results" / "compare.html").read_text()
    return pd.read_csv(new / "results" / "compare.tsv", sep="\t"), page


def test_compare_shows_a_method_the_second_run_added(first_run, tmp_path):
    """``scmib report NEW --compare BASE``: the base run lacks kNN, the new one has it."""
    outdir, _ = first_run
    table, page = compared(outdir, outdir / "results", lambda r: r["method"] != "knn_regression", tmp_path)
    knn = table[(table["task"] == "predict_modality") & (table["method"] == "knn_regression")].iloc[0]
    assert knn["what"] == "added" and np.isnan(knn["score_base"]) and knn["rank"] == 1
    _, _, totals, _ = tables(outdir)
    expected = totals.set_index(["task", "method"]).loc[("predict_modality", "knn_regression"), "mean_score"]
    assert knn["score"] == pytest.approx(expected, abs=1e-12)
    same = table[table["method"] == "solution"]
    assert (same["what"] == "same").all() and (same["change"] == 0).all()
    assert 'data-method="knn_regression" data-what="added"' in page


def test_compare_scores_only_the_datasets_both_runs_have(first_run, tmp_path):
    """A base run with one direction fewer: nothing is "worse" for covering another direction; the
    page names what was left out."""
    outdir, _ = first_run
    new = tmp_path / "new"
    shutil.copytree(outdir / "results", new / "results")
    table, page = compared(new, outdir / "results", lambda r: r["variant"] != "adt2gex", tmp_path)
    assert set(table["what"]) <= {"same", "no score"}, table
    assert "predict_modality neurips2021_starter_cite adt2gex (run only)" in page


def test_a_prediction_that_breaks_the_format_is_flagged():
    """``format_ok`` cannot be scaled (every control passes it), so it counts in no score: a method
    that fails it is flagged for the report instead of ranking like a valid one, silently."""
    from scmib.report.export import quality_control

    rows = [
        {"task": "match_modalities", "dataset": "d", "variant": "gex2adt", "method": method,
         "method_kind": kind, "metric": "format_ok", "value": value, "scaled": np.nan, "maximize": True,
         "status": "success", "metric_status": "success"}
        for method, kind, value in [
            ("good", "method", 1.0), ("dense", "method", 0.0), ("solution", "control_method", 1.0)
        ]
    ]  # fmt: skip
    flags = [f for f in quality_control(pd.DataFrame(rows)) if f["category"] == "format"]
    assert [(f["name"], f["severity"]) for f in flags] == [("match_modalities/d/gex2adt/dense/format_ok", 2)]
    assert "breaks the competition's format" in flags[0]["message"]


def test_equal_scores_are_numbered_in_name_order_as_ranks_tsv_does(monkeypatch):
    """Two methods that fail everywhere (0.0): compare.tsv numbers them as ranks.tsv does (score,
    then name), not both 2nd."""
    from scmib.report import compare
    from scmib.uncertainty.ranks import rank_table

    table = pd.DataFrame({
        "task": "t", "method": ["zz", "good", "aa", "ctl"], "mean_score": [0.0, 0.7, 0.0, 1.0],
        "method_kind": ["method", "method", "method", "control_method"],
    })  # fmt: skip
    monkeypatch.setattr(compare, "summary", lambda results: table.copy())
    numbered = compare.ranked(pd.DataFrame()).set_index("method")["rank"].to_dict()
    assert numbered == {"good": 1, "aa": 2, "zz": 3, "ctl": 1}
    methods = table[table["method_kind"] == "method"].set_index("method")["mean_score"].to_dict()
    flat = {name: np.full(10, value) for name, value in methods.items()}
    assert rank_table(methods, flat).set_index("method")["rank"].to_dict() == {"good": 1, "aa": 2, "zz": 3}


def test_a_score_is_the_scaling_rule_worked_by_hand(first_run):
    """kNN's score on each starter CITE direction, computed here from the raw values of
    ``results.tsv`` by the README's rule, equals ``scores.tsv``'s: per metric, (value - worst
    control) / (best control - worst control), clipped to [0, 1], averaged over the scored metrics."""
    outdir, _ = first_run
    results = pd.read_csv(outdir / "results" / "results.tsv", sep="\t")
    scores = pd.read_csv(outdir / "results" / "scores.tsv", sep="\t").set_index(["variant", "method"])
    for variant in ("gex2adt", "adt2gex"):
        rows = results[(results["variant"] == variant) & results["scored"]]
        parts = []
        for _, group in rows.groupby("metric"):
            controls = group[group["method_kind"] == "control_method"].groupby("method")["value"].mean()
            low, high = controls.min(), controls.max()
            best, worst = (high, low) if group["maximize"].iloc[0] else (low, high)
            knn = group.loc[group["method"] == "knn_regression", "value"].mean()
            parts.append(min(max((knn - worst) / (best - worst), 0.0), 1.0))
        assert len(parts) == 2  # rmse and mae, the metrics of this run
        expected = pytest.approx(np.mean(parts), abs=1e-12)
        assert scores.loc[(variant, "knn_regression"), "mean_score"] == expected


def test_a_long_failure_keeps_its_component_and_what_was_expected():
    from scmib.report.leaderboard import _why_missing, last_line

    line = (
        "[datasets/user: /loaders/local_file] error: input file 'x.h5ad': " + "z" * 400 + " expected counts"
    )
    short = last_line(f"Traceback ...\n{line}")
    assert len(short) == 300 and short.startswith("[datasets/user: /loaders/local_file] error")
    assert short.endswith("expected counts") and " … " in short
    assert _why_missing("failed", line).startswith("failed: error: input file 'x.h5ad'")

"""The ``scmib`` command line: ``run``, ``lint``, ``list`` and ``validate``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

from scmib.errors import ScmibError


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def cmd_run(args: argparse.Namespace) -> int:
    from scmib.data.cache import MIRROR_ENV
    from scmib.report import write_report
    from scmib.runner.execute import OK, execute
    from scmib.runner.plan import RUNNABLE_TASKS, Selection, plan
    from scmib.runner.results import summary, write_tables
    from scmib.spec import find_repo_root

    repo = find_repo_root()
    outdir = Path(args.outdir).resolve()
    tasks = _csv(args.task) or list(RUNNABLE_TASKS)
    unknown = sorted(set(tasks) - set(RUNNABLE_TASKS))
    if unknown:
        raise ScmibError(f"unknown or not yet runnable tasks {unknown}; choose from {RUNNABLE_TASKS}")
    mirror = args.data_mirror or os.environ.get(MIRROR_ENV)
    selection = Selection(
        tasks=tasks,
        profile=args.profile,
        datasets=_csv(args.datasets),
        methods=_csv(args.methods),
        metrics=_csv(args.metrics),
        data_mirror=str(Path(mirror).resolve()) if mirror else None,
        cache_dir=args.cache_dir,
    )
    jobs = plan(repo, outdir, selection)
    print(f"scmib: {len(jobs)} jobs, profile '{args.profile}', output in {outdir}", file=sys.stderr)
    start = time.perf_counter()
    results = execute(jobs, n_jobs=args.jobs, progress=not args.no_progress)
    table = write_tables(outdir, jobs, results)
    report = write_report(outdir)
    elapsed = time.perf_counter() - start
    bad = [r for r in results.values() if r.status not in (*OK, "not_applicable")]
    with pd.option_context(
        "display.width", 160, "display.max_rows", 200, "display.float_format", "{:.3f}".format
    ):
        print(summary(table).to_string(index=False))
    print(
        f"\n{len(results) - len(bad)}/{len(results)} jobs ok in {elapsed:.1f} s; "
        f"results in {outdir / 'results'}; report {report['html']}",
        file=sys.stderr,
    )
    for result in bad:
        print(f"  {result.status}: {result.job_id} ({result.log})", file=sys.stderr)
    return 1 if bad and args.strict else 0


def cmd_report(args: argparse.Namespace) -> int:
    from scmib.report import write_report

    paths = write_report(args.run_dir)
    print(f"report: {paths['html']}\nresults: {paths['json']}")
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    from scmib.lint import lint
    from scmib.spec import find_repo_root

    components = Path(args.components) if args.components else find_repo_root() / "components"
    problems = lint(components)
    for problem in problems:
        print(problem, file=sys.stderr)
    n_specs = len(list(components.glob("*/*/*/config.yaml")))
    print(f"scmib lint: {n_specs} specs, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


def cmd_list(args: argparse.Namespace) -> int:
    from scmib.spec import discover, find_repo_root

    for spec in discover(find_repo_root() / "components"):
        print(f"{spec.id:55s} {spec.label}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from scmib.contracts import check_file, load_contract
    from scmib.io import read_h5ad

    check_file(read_h5ad(args.file), load_contract(args.contract), args.file)
    print(f"{args.file}: follows {args.contract}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scmib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the benchmark locally (datasets x methods x metrics)")
    run.add_argument("--task", help="comma-separated tasks (default: all runnable)")
    run.add_argument(
        "--profile",
        default="default",
        choices=["test", "default", "full"],
        help="test: starter cells and small parameters; default: starter, Triana "
        "and SNARE-seq2; full: also the GEO NeurIPS data (large download)",
    )
    run.add_argument("--datasets", help="comma-separated dataset ids or shell patterns")
    run.add_argument("--methods", help="comma-separated methods or patterns (controls always run)")
    run.add_argument("--metrics", help="comma-separated metric components or patterns")
    run.add_argument("--outdir", default="scmib_output", help="output folder (default: %(default)s)")
    run.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="components run in parallel (default: CPU count)",
    )
    run.add_argument(
        "--data_mirror",
        help="folder with copies of the source data "
        "(default: $SCMIB_DATA_MIRROR); otherwise files are downloaded",
    )
    run.add_argument("--cache_dir", help="download cache (default: $SCMIB_CACHE_DIR or ~/.cache/scmib)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--strict", action="store_true", help="exit 1 if any component failed")
    run.set_defaults(func=cmd_run)

    report = sub.add_parser("report", help="write the HTML report and JSON results of a finished run")
    report.add_argument("run_dir", help="the --outdir of a finished scmib run")
    report.set_defaults(func=cmd_report)

    lint = sub.add_parser("lint", help="validate every component spec")
    lint.add_argument("--components", help="components folder (default: the repository's)")
    lint.set_defaults(func=cmd_lint)

    listing = sub.add_parser("list", help="list the components")
    listing.set_defaults(func=cmd_list)

    validate = sub.add_parser("validate", help="check a file against a file contract")
    validate.add_argument("file")
    validate.add_argument("--contract", required=True, help="e.g. predict_modality/prediction")
    validate.set_defaults(func=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ScmibError as exc:
        print(f"scmib: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

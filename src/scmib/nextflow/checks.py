"""``scmib nf-check``: the Nextflow workflow checked against Nextflow's parser and against the specs.

Each function returns a list of problems (empty when all is well), each naming
the file it is about, so a contributor sees what to fix:

- :func:`syntax_problems`: Nextflow's own strict parser and type checker (the
  language server) on every ``.nf`` and ``.config`` file: syntax errors,
  misspelt directives or config options, undefined names.
- :func:`stage_problems`: every stage the planner produces is routed to a
  workflow step that exists and is called.
- :func:`reachability_problems`: every component spec is planned on some
  dataset in the ``full`` profile, so the workflow reaches it.
- :func:`command_problems`: every ``scmib`` command the workflow's processes
  run uses options the ``scmib`` command line has.
- :func:`schema_problems`: ``nextflow_schema.json`` describes exactly the
  parameters of ``nextflow.config``, with the same defaults.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from scmib.errors import ScmibError
from scmib.nextflow.language_server import diagnostics, workflow_files
from scmib.runner.plan import RUNNABLE_TASKS, STAGES, Selection, plan
from scmib.spec import discover

WORKFLOW = "workflows/scmib.nf"
JOB_MODULE = "workflows/modules/scmib_job.nf"


def syntax_problems(repo: Path, jar: Path | None = None) -> list[str]:
    """Errors and warnings of Nextflow's language server on the repository's scripts and configs."""
    files = workflow_files(repo)
    if not (repo / "main.nf").is_file():
        return [f"{repo / 'main.nf'}: missing"]
    return [str(d) for d in diagnostics(repo, files, jar) if d.severity in ("error", "warning")]


def _stage_steps(text: str) -> dict[str, str]:
    body = re.search(r"def stageSteps\(\)\s*\{(.*?)\n\}", text, re.S)
    return dict(re.findall(r"\[\s*'(\w+)'\s*,\s*'(\w+)'\s*\]", body.group(1))) if body else {}


def stage_problems(repo: Path) -> list[str]:
    """Each planned stage maps to a ``SCMIB_JOB`` alias that the workflow includes and calls."""
    path = repo / WORKFLOW
    if not path.is_file():
        return [f"{WORKFLOW}: missing"]
    text = path.read_text()
    steps = _stage_steps(text)
    if not steps:
        return [f"{WORKFLOW}: no stageSteps() mapping of planned stages to workflow steps"]
    aliases = set(re.findall(r"include\s*\{\s*SCMIB_JOB\s+as\s+(\w+)\s*\}", text))
    problems = [
        f"{WORKFLOW}: stage '{stage}' of the planner has no workflow step in stageSteps(), "
        "so its components would never run"
        for stage in STAGES
        if stage not in steps
    ]
    for stage, step in steps.items():
        if stage not in STAGES:
            problems.append(
                f"{WORKFLOW}: stageSteps() names stage '{stage}', which the planner never produces"
            )
        if step not in aliases:
            problems.append(f"{WORKFLOW}: step {step} (stage '{stage}') is not an include of SCMIB_JOB")
        elif not re.search(rf"^\s*{step}\(", text, re.M):
            problems.append(f"{WORKFLOW}: step {step} (stage '{stage}') is never called in the workflow")
    return problems


def reachability_problems(repo: Path) -> list[str]:
    """Components the workflow never runs: their task is not runnable, or no dataset variant fits them."""
    specs = discover(repo / "components")
    try:
        jobs = plan(repo, Path("scmib_output"), Selection(tasks=list(RUNNABLE_TASKS), profile="full"))
    except ScmibError as exc:
        return [f"the full plan fails, so the workflow cannot run: {exc}"]
    planned = {job.spec.id for job in jobs}
    problems = []
    for spec in specs:
        if spec.id in planned:
            continue
        if spec.task != "datasets" and spec.task not in RUNNABLE_TASKS:
            why = f"its task '{spec.task}' is not runnable (scmib.runner.plan.RUNNABLE_TASKS)"
        elif spec.kind == "dataset_loader":
            why = "it declares no dataset in any profile"
        else:
            why = "no dataset variant matches it (check info.modality_pairs and the task's variants)"
        problems.append(f"components/{spec.id}: the workflow cannot reach this component: {why}")
    return problems


def _subcommand_options() -> dict[str, set[str]]:
    from scmib.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: set(p._option_string_actions) for name, p in sub.choices.items()}


def command_problems(repo: Path) -> list[str]:
    """``scmib <command> --option`` lines in the workflow's scripts, checked against the CLI."""
    known = _subcommand_options()
    problems = []
    for path in sorted((repo / "workflows").rglob("*.nf")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = re.match(r"\s*scmib\s+([\w-]+)(.*)", line)
            if not match:
                continue
            command, rest = match.groups()
            where = f"{path.relative_to(repo)}:{number}"
            if command not in known:
                problems.append(f"{where}: 'scmib {command}' is not an scmib command ({sorted(known)})")
                continue
            for option in re.findall(r"(?<![\w$])(--[\w-]+)", rest):
                if option not in known[command]:
                    problems.append(f"{where}: 'scmib {command}' has no option {option}")
    return problems


def config_params(text: str) -> dict[str, Any]:
    """``name = value`` lines of the top-level ``params { }`` block (values as JSON where they parse)."""
    block = re.search(r"^params\s*\{(.*?)^\}", text, re.M | re.S)
    if not block:
        return {}
    values: dict[str, Any] = {}
    for name, raw in re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", block.group(1), re.M):
        raw = raw.strip()
        if raw == "null":
            values[name] = None
        elif raw[0] in "'\"":
            values[name] = raw[1:-1]
        else:
            try:
                values[name] = json.loads(raw)
            except json.JSONDecodeError:
                values[name] = raw
    return values


def schema_problems(repo: Path) -> list[str]:
    schema_path, config_path = repo / "nextflow_schema.json", repo / "nextflow.config"
    if not schema_path.is_file() or not config_path.is_file():
        return [f"{p.name}: missing" for p in (schema_path, config_path) if not p.is_file()]
    try:
        schema = json.loads(schema_path.read_text())
    except json.JSONDecodeError as exc:
        return [f"nextflow_schema.json: not valid JSON: {exc}"]
    properties: dict[str, dict[str, Any]] = {}
    for group in schema.get("$defs", {}).values():
        properties.update(group.get("properties", {}))
    params = config_params(config_path.read_text())
    problems = [
        f"nextflow.config: parameter '{name}' is not described in nextflow_schema.json"
        for name in params
        if name not in properties
    ]
    for name, prop in properties.items():
        if name not in params:
            problems.append(f"nextflow_schema.json: '{name}' is not a parameter in nextflow.config")
            continue
        if not prop.get("description"):
            problems.append(f"nextflow_schema.json: '{name}' has no description")
        if prop.get("default") != params[name]:
            problems.append(
                f"nextflow_schema.json: default of '{name}' is {prop.get('default')!r}, "
                f"nextflow.config says {params[name]!r}"
            )
    return problems


def all_problems(repo: Path, jar: Path | None = None) -> list[str]:
    return (
        syntax_problems(repo, jar)
        + stage_problems(repo)
        + reachability_problems(repo)
        + command_problems(repo)
        + schema_problems(repo)
    )

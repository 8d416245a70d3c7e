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
  typed parameters of ``main.nf``, with the same types and defaults.
- :func:`selector_problems`: every ``withName``/``withLabel`` selector of the
  configuration matches a process (a misspelt one is silently ignored by Nextflow).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scmib.errors import ScmibError
from scmib.nextflow.language_server import diagnostics, workflow_files
from scmib.nextflow.params import schema_properties
from scmib.nextflow.trace import JOB_STEPS
from scmib.runner.plan import PROFILES, RUNNABLE_TASKS, STAGES, Selection, plan
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
        elif not re.search(rf"\b{step}\.out\.record\b", text):
            problems.append(f"{WORKFLOW}: the records of step {step} never reach SCMIB_COLLECT")
    if set(steps.values()) != set(JOB_STEPS):
        problems.append(
            f"{WORKFLOW}: the job steps {sorted(set(steps.values()))} differ from those `scmib check-run` "
            f"reads in the trace ({sorted(JOB_STEPS)}, scmib.nextflow.trace.JOB_STEPS)"
        )
    return problems


def reachability_problems(repo: Path) -> list[str]:
    """Components the workflow never runs: their task is not runnable, or no dataset variant fits them."""
    specs = discover(repo / "components")
    planned = set()
    for profile in PROFILES:  # a component runs if any profile's plan has it (scale: synthetic data only)
        try:
            jobs = plan(repo, Path("scmib_output"), Selection(tasks=list(RUNNABLE_TASKS), profile=profile))
        except ScmibError as exc:
            return [f"the {profile} plan fails, so the workflow cannot run: {exc}"]
        planned |= {job.spec.id for job in jobs}
    problems = []
    for spec in specs:
        # The generic loader runs a user's own file (`scmib run --data`), never a declared dataset.
        if spec.id in planned or spec.info.user_data:
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


def _script_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) with shell continuation lines (ending in a backslash) joined to the first."""
    joined: list[tuple[int, str]] = []
    continued = False
    for number, line in enumerate(text.splitlines(), 1):
        if continued:
            joined[-1] = (joined[-1][0], joined[-1][1] + " " + line.strip())
        else:
            joined.append((number, line))
        continued = line.rstrip().endswith("\\")
        if continued:
            joined[-1] = (joined[-1][0], joined[-1][1].rstrip().rstrip("\\"))
    return joined


def command_problems(repo: Path) -> list[str]:
    """``scmib <command> --option`` lines in the workflow's scripts, checked against the CLI."""
    known = _subcommand_options()
    problems = []
    for path in sorted((repo / "workflows").rglob("*.nf")):
        for number, line in _script_lines(path.read_text()):
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


def _literal(raw: str) -> Any:
    raw = raw.strip()
    if raw == "null":
        return None
    if raw[0] in "'\"":
        return raw[1:-1]
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def config_params(text: str) -> dict[str, Any]:
    """``name = value`` lines of the top-level ``params { }`` block (values as JSON where they parse)."""
    block = re.search(r"^params\s*\{(.*?)^\}", text, re.M | re.S)
    if not block:
        return {}
    return {
        name: _literal(raw) for name, raw in re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", block.group(1), re.M)
    }


@dataclass(frozen=True)
class ScriptParam:
    """One declaration of main.nf's typed ``params { }`` block: ``name: Type[?] [= default]``."""

    type: str
    optional: bool
    default: Any = None
    has_default: bool = False


#: Nextflow parameter types and the JSON schema types they correspond to.
SCHEMA_TYPES = {"String": "string", "Integer": "integer", "Boolean": "boolean", "Float": "number"}


def script_params(text: str) -> dict[str, ScriptParam]:
    """The typed parameter declarations of a script (``main.nf``)."""
    block = re.search(r"^params\s*\{(.*?)^\}", text, re.M | re.S)
    if not block:
        return {}
    found = {}
    pattern = r"^\s*(\w+)\s*:\s*(\w+)(\?)?\s*(?:=\s*(.+?))?\s*$"
    for name, kind, optional, default in re.findall(pattern, block.group(1), re.M):
        found[name] = ScriptParam(kind, bool(optional), _literal(default) if default else None, bool(default))
    return found


def schema_problems(repo: Path) -> list[str]:
    """``nextflow_schema.json`` describes exactly the parameters main.nf declares, with their types and
    defaults (a default may come from nextflow.config instead, where the configuration needs it)."""
    paths = [repo / "nextflow_schema.json", repo / "main.nf", repo / "nextflow.config"]
    if not all(p.is_file() for p in paths):
        return [f"{p.name}: missing" for p in paths if not p.is_file()]
    try:
        schema = json.loads(paths[0].read_text())
    except json.JSONDecodeError as exc:
        return [f"nextflow_schema.json: not valid JSON: {exc}"]
    properties = schema_properties(schema)
    declared = script_params(paths[1].read_text())
    config = config_params(paths[2].read_text())
    problems = [
        f"nextflow.config: parameter '{n}' is not declared in main.nf" for n in config if n not in declared
    ]
    problems += [
        f"main.nf: parameter '{name}' is not described in nextflow_schema.json"
        for name in declared
        if name not in properties
    ]
    for name, prop in properties.items():
        if name not in declared:
            problems.append(f"nextflow_schema.json: '{name}' is not a parameter declared in main.nf")
            continue
        param = declared[name]
        if not prop.get("description"):
            problems.append(f"nextflow_schema.json: '{name}' has no description")
        if SCHEMA_TYPES.get(param.type) != prop.get("type"):
            problems.append(
                f"nextflow_schema.json: '{name}' has type {prop.get('type')!r}, main.nf declares {param.type}"
            )
        default = config.get(name, param.default)
        if prop.get("default") != default:
            where = "nextflow.config" if name in config else "main.nf"
            problems.append(
                f"nextflow_schema.json: default of '{name}' is {prop.get('default')!r}, "
                f"{where} says {default!r}"
            )
        if not (param.optional or param.has_default or name in config):
            problems.append(
                f"main.nf: parameter '{name}' has no default and is not optional ('{param.type}?')"
            )
    return problems


def _process_names(repo: Path) -> tuple[set[str], set[str]]:
    """Names a ``withName`` selector can match (processes, aliases, ``WORKFLOW:ALIAS``), and labels."""
    names: set[str] = set()
    labels: set[str] = set()
    workflows: set[str] = set()
    for path in [repo / "main.nf", *sorted((repo / "workflows").rglob("*.nf"))]:
        if not path.is_file():
            continue
        text = path.read_text()
        names |= set(re.findall(r"^process\s+(\w+)", text, re.M))
        labels |= set(re.findall(r"^\s*label\s+['\"]([^'\"]+)['\"]", text, re.M))
        names |= set(re.findall(r"include\s*\{\s*\w+\s+as\s+(\w+)\s*\}", text))
        workflows |= set(re.findall(r"^workflow\s+(\w+)", text, re.M))
    return names | {f"{w}:{n}" for w in workflows for n in names}, labels


def selector_problems(repo: Path) -> list[str]:
    """``withName``/``withLabel`` selectors in the configuration that match no process (a silent no-op)."""
    names, labels = _process_names(repo)
    problems = []
    for path in [repo / "nextflow.config", *sorted((repo / "conf").rglob("*.config"))]:
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for kind, selector in re.findall(r"(withName|withLabel)\s*:\s*['\"]([^'\"]+)['\"]", line):
                pattern = selector.removeprefix("!")
                pool = names if kind == "withName" else labels
                try:
                    matched = any(re.fullmatch(pattern, name) for name in pool)
                except re.error as exc:
                    problems.append(
                        f"{path.relative_to(repo)}:{number}: {kind} '{selector}' is not a pattern: {exc}"
                    )
                    continue
                if not matched:
                    what = "process" if kind == "withName" else "process label"
                    problems.append(
                        f"{path.relative_to(repo)}:{number}: {kind} '{selector}' matches no {what} "
                        f"(known: {', '.join(sorted(pool)) or 'none'})"
                    )
    return problems


def all_problems(repo: Path, jar: Path | None = None) -> list[str]:
    return (
        syntax_problems(repo, jar)
        + stage_problems(repo)
        + reachability_problems(repo)
        + command_problems(repo)
        + schema_problems(repo)
        + selector_problems(repo)
    )

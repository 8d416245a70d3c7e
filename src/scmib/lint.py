"""``scmib lint``: every component spec is valid, unique and matches its script."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import yaml

from scmib.containers import package_name
from scmib.errors import SpecError
from scmib.spec import KIND_FOLDERS, ComponentSpec, discover_spec_files, load_spec

#: ``run.<method>("name")`` calls in scripts and the kind of argument each needs.
_ACCESSORS = {"read": "input file", "write": "output file", "path": "file", "has": "file"}


def _script_problems(spec: ComponentSpec) -> list[str]:
    """Check that the script starts through ``run_component`` and uses only declared arguments."""
    path = spec.script_path
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError as exc:
        return [f"{path}:{exc.lineno}: syntax error: {exc.msg}"]
    problems = []
    args = spec.argument_map
    calls_runtime = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            calls_runtime |= node.func.id == "run_component"
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _ACCESSORS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            name, need = node.args[0].value, _ACCESSORS[node.func.attr]
            arg = args.get(name)
            ok = arg is not None and arg.type == "file" and (need == "file" or need.startswith(arg.direction))
            if not ok:
                problems.append(
                    f"{path}:{node.lineno}: run.{node.func.attr}('{name}') but the spec "
                    f"declares no {need} argument '{name}'"
                )
        parameter = None
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "par"
            and isinstance(node.slice, ast.Constant)
        ):
            parameter, use = node.slice.value, f"run.par['{node.slice.value}']"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "at_most"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            parameter, use = node.args[0].value, f"run.at_most('{node.args[0].value}')"
        if parameter is not None and (parameter not in args or args[parameter].type == "file"):
            problems.append(f"{path}:{node.lineno}: {use} but the spec declares no parameter '{parameter}'")
    # A scaffolded script works but is a placeholder until its TODOs are done: a stub is not a method.
    if re.search(r"\bTODO\b", ast.get_docstring(tree) or ""):
        problems.append(f"{path}: its docstring still has the scaffold's TODO: say what the component does")
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        todo = re.match(r"#:?\s*TODO\b:?\s*(.*)", line.strip())
        if todo:
            problems.append(f"{path}:{number}: a TODO is left in the script: {todo.group(1)}")
    if not calls_runtime:
        problems.append(
            f"{path}: does not start through scmib.component.run_component, so its "
            "command line would not follow its spec"
        )
    return problems


def _todo_fields(value: object, field: str = "") -> list[str]:
    """Dotted names of the string fields in a parsed spec that start with "TODO"."""
    if isinstance(value, str):
        return [field] if value.lstrip().startswith("TODO") else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    names = []
    for key, item in items:
        name = f"{field}[{key}]" if isinstance(key, int) else f"{field}.{key}".lstrip(".")
        names += _todo_fields(item, name)
    return names


def _spec_problems(spec: ComponentSpec, config: Path, components_dir: Path) -> list[str]:
    problems = []
    expected = components_dir / spec.task / KIND_FOLDERS[spec.kind] / spec.name
    if config.parent.resolve() != expected.resolve():
        problems.append(
            f"{config}: fields 'task', 'kind', 'name' say the folder should be "
            f"{expected.relative_to(components_dir.parent)}"
        )
    for field, filename in (("script", spec.script), ("container.dockerfile", spec.container.dockerfile)):
        if not (spec.folder / filename).is_file():
            problems.append(f"{config}: field '{field}': file {spec.folder / filename} not found")
    problems += [
        f"{config}: field '{field}' is still the scaffold's TODO: say it in your own words"
        for field in _todo_fields(yaml.safe_load(config.read_text()))
    ]
    if spec.kind == "metric" and not spec.info.metrics:
        problems.append(f"{config}: field 'info.metrics': a metric must declare its metric ids")
    if spec.kind == "dataset_loader" and not spec.info.datasets and not spec.info.user_data:
        problems.append(f"{config}: field 'info.datasets': a loader must declare its datasets")
    # A torch component chooses its device with ``--device auto``, but an
    # executor only lends a GPU to jobs labelled ``gpu`` (``--gpu``): the
    # two must go together or ``--gpu`` gives the component nothing to use.
    has_device = "device" in spec.argument_map
    if has_device != ("gpu" in spec.resources):
        problems.append(
            f"{config}: field 'resources': "
            + (
                "a component with a 'device' argument needs the 'gpu' label, "
                "or runs with --gpu would not lend it one"
                if has_device
                else "the 'gpu' label needs a 'device' argument (auto, cpu, cuda) to use it"
            )
        )
    for arg in spec.arguments:
        if arg.type == "file" and not arg.contract:
            problems.append(f"{config}: argument '{arg.name}': file arguments need a 'contract'")
        # Checked before any job runs (and by the script itself), so a value the component cannot
        # use stops the run with the argument's name, not a library's traceback in one job.
        if arg.type in ("integer", "double") and arg.min is None:
            problems.append(
                f"{config}: argument '{arg.name}': a number needs a 'min' (the smallest value the "
                "component can use; 'exclusive_min: true' where that value itself is not allowed)"
            )
    if (spec.folder / spec.script).is_file():
        problems += _script_problems(spec) + _requirement_problems(spec)
    return problems


def _requirement_problems(spec: ComponentSpec) -> list[str]:
    """Packages the script imports (itself or through scmib's modules) that its image would lack."""
    from scmib.containers import base_for, provided_by
    from scmib.imports import missing_requirements

    provided = provided_by(base_for(spec).name) | {package_name(r) for r in spec.requirements.python}
    try:
        missing = missing_requirements(spec.script_path, provided)
    except SyntaxError:
        return []  # _script_problems names it
    return [
        f"{spec.script_path}: imports '{module}'"
        + (f" (through {' -> '.join(chain)})" if chain else "")
        + f", which its image would not have: add '{distribution}' to requirements.python in config.yaml"
        for module, chain, distribution in missing
    ]


def lint(components_dir: Path) -> list[str]:
    """All problems found in the specs under ``components_dir`` (empty when everything is fine)."""
    problems: list[str] = []
    specs: list[ComponentSpec] = []
    configs = discover_spec_files(components_dir)
    if not configs:
        return [f"{components_dir}: no component specs found (components/<task>/<kind>/<name>/)"]
    for config in configs:
        try:
            spec = load_spec(config)
        except SpecError as exc:
            problems.append(str(exc))
            continue
        specs.append(spec)
        problems += _spec_problems(spec, config, components_dir)
    for (task, name), count in Counter((s.task, s.name) for s in specs).items():
        if count > 1:
            problems.append(f"component name '{name}' is used {count} times in task '{task}'")
    dataset_ids = Counter(d.id for s in specs for d in s.info.datasets)
    problems += [f"dataset id '{d}' is declared {n} times" for d, n in dataset_ids.items() if n > 1]
    return problems

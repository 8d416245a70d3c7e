"""The workflow's parameters, checked against ``nextflow_schema.json`` before any job runs.

Nextflow converts each command-line value to the type ``main.nf`` declares and
rejects undeclared names, but checks no value: ``--max_attempts 0``,
``--scmib_profile fast`` or ``--max_memory lots`` would pass. The workflow's
first task hands every parameter to ``scmib plan`` (``--param name=value``):
each is converted to its schema type (strings and typed values alike) and
checked (enum, minimum, maximum, pattern), and an unknown name is an error with
the closest known name, so a wrong value stops the run before any job runs.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

from scmib.errors import ScmibError

SCHEMA = "nextflow_schema.json"


def schema_properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every parameter of an nf-core style schema (``$defs`` groups and top-level ``properties``)."""
    properties: dict[str, dict[str, Any]] = dict(schema.get("properties", {}))
    for group in schema.get("$defs", {}).values():
        properties.update(group.get("properties", {}))
    return properties


def load_schema(repo: Path) -> dict[str, Any]:
    path = repo / SCHEMA
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ScmibError(f"{path}: cannot read the parameter schema: {exc}") from exc


def _convert(name: str, value: Any, prop: dict[str, Any]) -> Any:
    """``value`` as the schema's type, or a ``ValueError`` saying what was expected."""
    kind = prop.get("type", "string")
    if value is None or (value == "" and kind != "string"):
        return None
    if kind == "integer":
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("+-").isdigit())
        ):
            raise ValueError(f"--{name} must be a whole number, not {value!r}")
        value = int(value)
    elif kind == "number":
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"--{name} must be a number, not {value!r}") from None
    elif kind == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise ValueError(f"--{name} must be true or false, not {value!r}")
    elif isinstance(value, (bool, dict, list)):
        raise ValueError(f"--{name} must be a string, not {value!r}")
    else:
        value = str(value)
    if "enum" in prop and value not in prop["enum"]:
        raise ValueError(f"--{name} must be one of {prop['enum']}, not {value!r}")
    if "minimum" in prop and value < prop["minimum"]:
        raise ValueError(f"--{name} must be at least {prop['minimum']}, not {value!r}")
    if "maximum" in prop and value > prop["maximum"]:
        raise ValueError(f"--{name} must be at most {prop['maximum']}, not {value!r}")
    if (pattern := prop.get("pattern")) and isinstance(value, str) and not re.fullmatch(pattern, value):
        raise ValueError(f"--{name} must match {pattern}, not {value!r}")
    return value


def validate_params(given: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Every schema parameter with its typed value (defaults filled in); raises listing every problem."""
    properties = schema_properties(schema)
    problems = []
    for name in sorted(set(given) - set(properties)):
        close = difflib.get_close_matches(name.replace("-", "_"), properties, n=1, cutoff=0.6)
        hint = f" (did you mean --{close[0]}?)" if close else ""
        problems.append(f"unknown parameter --{name}{hint}")
    typed: dict[str, Any] = {}
    for name, prop in properties.items():
        try:
            typed[name] = _convert(name, given.get(name, prop.get("default")), prop)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        listed = "\n".join(f"  {p}" for p in problems)
        raise ScmibError(f"the workflow's parameters do not follow {SCHEMA}:\n{listed}")
    return typed

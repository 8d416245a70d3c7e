"""``scmib new-component``: a new component folder from templates, ready to run and to edit.

The folder holds ``config.yaml`` (the spec, reusing the task's shared API),
``script.py`` (from ``scmib/templates/<task>/<kind>.py.txt``: a working
placeholder that reads and writes the right files) and ``Dockerfile``
(generated from the spec, as ``scmib docker-check`` expects). The spec's summary and
description and the script's ``# TODO`` comment say what is left to write; ``scmib lint``
fails until they are replaced.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from scmib.containers import REGISTRY, component_dockerfile
from scmib.contracts import api_root
from scmib.errors import ScmibError
from scmib.spec import KIND_FOLDERS, load_spec


def _template(task: str, kind: str) -> Path:
    return Path(__file__).parent / "templates" / task / f"{kind}.py.txt"


def new_component(
    components: Path, task: str, kind: str, name: str, label: str | None = None, summary: str | None = None
) -> Path:
    """Create ``components/<task>/<kind folder>/<name>/`` and return its path.

    ``kind`` is a spec kind (``method``, ``metric``, ``dataset_loader``, ...) or its
    folder's singular (``loader`` for the ``datasets`` task).
    """
    kind = {"loader": "dataset_loader", "processor": "dataset_processor"}.get(kind, kind)
    # The shared API files of the datasets task are named by the folder's singular (comp_loader).
    api_name = {"dataset_loader": "loader", "dataset_processor": "processor"}.get(kind, kind)
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ScmibError(f"component name '{name}' must be lower_snake_case (letters, digits, _)")
    template = _template(task, kind)
    if kind not in KIND_FOLDERS or not template.is_file():
        root = Path(__file__).parent / "templates"
        available = sorted(f"{p.parent.name} {p.name.split('.')[0]}" for p in root.glob("*/*.py.txt"))
        raise ScmibError(f"no template for a {kind} of task '{task}'; templates exist for: {available}")
    folder = components / task / KIND_FOLDERS[kind] / name
    if folder.exists():
        raise ScmibError(f"{folder} already exists")
    label = label or name.replace("_", " ").capitalize()
    summary = summary or f"TODO: one sentence on what {label} does."
    component_id = f"{task}/{KIND_FOLDERS[kind]}/{name}"
    spec = {
        "name": name,
        "kind": kind,
        "task": task,
        "api": f"{task}/comp_{api_name}",
        "label": label,
        "summary": summary,
        "description": "TODO: how it works, and where it comes from.",
        "references": {"doi": []},
        "links": {"repository": None},
        # A seed only where the placeholder uses one: a component with a seed runs once per --seeds
        # seed (the templates say how to add one).
        "arguments": [
            {"name": "seed", "type": "integer", "min": 0, "default": 0, "description": "Random seed"}
        ]
        if any('run.par["seed"]' in line.split("#")[0] for line in template.read_text().splitlines())
        else [],
        "resources": ["lowcpu", "lowmem", "lowtime"],
        "requirements": {"python": []},
        "container": {"image": f"{REGISTRY}/{component_id}"},
    }
    if kind == "dataset_loader":
        spec["arguments"] = []
        spec["requirements"] = {"python": []}
        spec["info"] = {
            "datasets": [
                {
                    "id": name,
                    "label": label,
                    "summary": summary,
                    "modalities": ["GEX", "ADT"],
                    "organism": "human",
                    "profiles": ["default"],
                }
            ]
        }
    if kind == "metric":
        spec["arguments"] = []
        spec["info"] = {
            "metrics": [
                {"name": name, "label": label, "summary": summary, "min": 0, "max": ".inf", "maximize": False}
            ]
        }
    if not (api_root() / task / f"comp_{api_name}.yaml").is_file():
        raise ScmibError(
            f"task '{task}' has no shared API for a {kind} (scmib/api/{task}/comp_{api_name}.yaml)"
        )
    folder.mkdir(parents=True)
    try:
        text = yaml.safe_dump(spec, sort_keys=False, width=100)
        (folder / "config.yaml").write_text(text.replace("'.inf'", ".inf"))  # YAML's infinity, unquoted
        (folder / "script.py").write_text(
            template.read_text().format(label=label, summary=summary, name=name)
        )
        (folder / "Dockerfile").write_text(component_dockerfile(load_spec(folder / "config.yaml")))
    except Exception:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        raise
    return folder

"""Which components a change touches (``scmib changed``), so CI lints, builds and runs only those."""

from __future__ import annotations

import subprocess
from pathlib import Path

from scmib.errors import ScmibError
from scmib.spec import ComponentSpec, discover

#: Paths whose change can affect every component.
SHARED = ("src/", "pyproject.toml", "docker/")


def changed_paths(repo: Path, base: str) -> list[str]:
    """Files changed between ``base`` and the working tree (committed or not)."""
    done = subprocess.run(
        ["git", "diff", "--name-only", f"{base}...HEAD"], cwd=repo, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise ScmibError(f"git diff against '{base}' failed: {done.stderr.strip()}")
    local = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True)
    paths = set(done.stdout.split()) | {line[3:].strip() for line in local.stdout.splitlines()}
    return sorted(paths)


def changed_components(repo: Path, base: str) -> list[ComponentSpec]:
    """Components with a changed file; every component when shared code changed."""
    specs = discover(repo / "components")
    paths = changed_paths(repo, base)
    if any(path.startswith(SHARED) for path in paths):
        return specs
    return [s for s in specs if any(p.startswith(f"components/{s.id}/") for p in paths)]


def run_arguments(specs: list[ComponentSpec], everything: list[ComponentSpec] | None = None) -> list[str]:
    """``scmib run`` options that run these components (and what they need) on the test profile.

    A changed prediction processor (e.g. ``knn_graph``) runs through the metrics
    that read its output: those of ``everything`` (all components) whose input
    contracts include one of its outputs.
    """
    methods = sorted(s.name for s in specs if s.kind == "method")
    made = {str(a.contract) for s in specs if s.kind == "prediction_processor" for a in s.files("output")}
    readers = [
        m
        for m in everything or []
        if m.kind == "metric" and made & {str(a.contract) for a in m.files("input")}
    ]
    metrics = sorted({s.name for s in [*specs, *readers] if s.kind == "metric"})
    datasets = sorted(
        d.id for s in specs if s.kind == "dataset_loader" for d in s.info.datasets if "test" in d.profiles
    )
    args = []
    for option, names in (("--methods", methods), ("--metrics", metrics), ("--datasets", datasets)):
        if names:
            args += [option, ",".join(names)]
    return args

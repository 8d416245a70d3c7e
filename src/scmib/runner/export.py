"""A run plan as a JSON document, and jobs rebuilt from it.

This is how the Nextflow workflow reuses the local runner instead of
re-implementing it: ``scmib plan`` writes the document (the same
:func:`~scmib.runner.plan.plan` the local runner uses), the workflow fans its
jobs out as Nextflow tasks that each run ``scmib job`` (the same
:func:`~scmib.runner.execute.run_job`), and ``scmib collect`` rebuilds the jobs
from the document to write the same results tables and report.

In a workflow every job writes into one folder named :func:`job_folder_name`,
and reads its inputs from its upstream jobs' folders, staged beside it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scmib import __version__
from scmib.containers import image_ref
from scmib.errors import ScmibError
from scmib.nextflow.execution import Execution, task_options
from scmib.resources import requests
from scmib.runner.plan import Job, Selection
from scmib.spec import ComponentSpec, load_spec

FORMAT = "scmib-plan/1"


def job_folder_name(job_id: str) -> str:
    """A file name unique per job: ``task/dataset/variant/method`` -> ``task__dataset__variant__method``."""
    return job_id.replace("/", "__")


def _entry(job: Job, producers: dict[Path, Job], images: Images, execution: Execution) -> dict[str, Any]:
    inputs = {}
    for arg, path in job.inputs.items():
        producer = producers.get(path)
        if producer is None:
            raise ScmibError(f"{job.id}: input '{arg}' ({path}) is not the output of a planned job")
        inputs[arg] = {"job": producer.id, "file": path.name}
    sources = sorted({spec["job"] for spec in inputs.values()})
    entry = {
        "id": job.id,
        "folder": job_folder_name(job.id),
        "component": job.spec.id,
        "container": image_ref(job.spec, images.registry, images.tag),
        "stage": job.stage,
        "task": job.task,
        "dataset": job.dataset,
        "variant": job.variant,
        "method": job.method,
        "seed": job.seed,
        "key": job.key,
        "deps": [dep.id for dep in job.deps],
        "sources": sources,
        "inputs": inputs,
        "outputs": {arg: path.name for arg, path in job.outputs.items()},
        "params": job.params,
        "settings": job.settings,
        # Only loaders fetch data; everything else runs without network (as the competition did).
        "network": job.stage == "load",
    }
    resources = requests(job.spec.resources)
    entry.update(asdict(resources))
    entry.update(task_options(execution, network=entry["network"], wants_gpu=resources.gpu))
    # The task writes this into its folder for `scmib job` (JSON needs no quoting in a here-document).
    entry["entry_json"] = json.dumps(entry, separators=(",", ":"), default=str)
    return entry


@dataclass(frozen=True)
class Images:
    """The registry and tag of the component images (None: as each spec names it)."""

    registry: str | None = None
    tag: str | None = None


def plan_document(
    jobs: list[Job], selection: Selection, images: Images | None = None, execution: Execution | None = None
) -> dict[str, Any]:
    """The JSON-ready plan: the selection it came from and one entry per job, dependencies first.

    Each entry is all a workflow task needs besides its component folder and its
    upstream jobs' folders (see :mod:`scmib.runner.workflow`); images come from
    ``images`` (see :func:`scmib.containers.image_ref`), container and cluster
    options from ``execution`` (see :mod:`scmib.nextflow.execution`).
    """
    images, execution = images or Images(), execution or Execution()
    producers = {path: job for job in jobs for path in job.outputs.values()}
    return {
        "format": FORMAT,
        "scmib_version": __version__,
        "selection": asdict(selection),
        "execution": asdict(execution),
        "images": asdict(images),
        "jobs": [_entry(job, producers, images, execution) for job in jobs],
    }


def read_plan(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ScmibError(f"{path}: cannot read the plan: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ScmibError(f"{path}: not an scmib plan (expected 'format: {FORMAT}')")
    return document


def job_from_entry(entry: dict[str, Any], spec: ComponentSpec, jobs_dir: Path, deps: list[Job]) -> Job:
    """One job of a plan, working in ``jobs_dir/<folder>`` and reading its upstream jobs' folders there."""
    workdir = jobs_dir / entry["folder"]
    return Job(
        id=entry["id"],
        spec=spec,
        stage=entry["stage"],
        workdir=workdir,
        inputs={
            arg: jobs_dir / job_folder_name(src["job"]) / src["file"] for arg, src in entry["inputs"].items()
        },
        outputs={arg: workdir / name for arg, name in entry["outputs"].items()},
        params=entry["params"],
        deps=deps,
        task=entry["task"],
        dataset=entry["dataset"],
        variant=entry["variant"],
        method=entry["method"],
        seed=entry.get("seed"),
        settings=entry.get("settings", {}),
    )


def component_spec(repo: Path, component: str) -> ComponentSpec:
    return load_spec(repo / "components" / component / "config.yaml")


def jobs_from_plan(document: dict[str, Any], repo: Path, jobs_dir: Path) -> list[Job]:
    """Rebuild every job of a plan, with specs from ``repo`` and folders under ``jobs_dir``."""
    specs: dict[str, ComponentSpec] = {}
    jobs: dict[str, Job] = {}
    for entry in document["jobs"]:
        component = entry["component"]
        if component not in specs:
            specs[component] = component_spec(repo, component)
        deps = [jobs[dep] for dep in entry["deps"]]
        jobs[entry["id"]] = job_from_entry(entry, specs[component], jobs_dir, deps)
    return list(jobs.values())

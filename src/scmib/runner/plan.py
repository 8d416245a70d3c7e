"""Plan a benchmark run: which component runs on which files, and in what order.

Files are wired by their contracts: a processor's outputs are the task files of
one (dataset, variant); a method's inputs are the task files whose contracts
its arguments name; a metric reads the prediction plus the task files. So a
new component folder is picked up with no change here.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scmib import __version__
from scmib.contracts import api_root
from scmib.data.user_options import DataOptions
from scmib.errors import ScmibError
from scmib.resources import time_limit_s
from scmib.runner.component_args import parse_component_args, resolve_component_args
from scmib.spec import ComponentSpec, DatasetInfo, discover

#: Tasks with a ``task.yaml`` that the runner can plan.
RUNNABLE_TASKS = ("predict_modality", "match_modalities", "joint_embedding")
#: ``scale`` is synthetic data of the competition's size only (``benchmarks/competition_scale.py``).
PROFILES = ("test", "default", "full", "scale")
#: Seeds per stochastic method and control when a run does not say (``--seeds``).
DEFAULT_SEEDS = {"test": 1, "default": 3, "full": 3, "scale": 1}
#: Stages in the order results are reported.
STAGES = ("load", "process", "control_method", "method", "prepare", "metric")


@dataclass
class Job:
    """One component invocation."""

    id: str
    spec: ComponentSpec
    stage: str
    workdir: Path
    inputs: dict[str, Path] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    deps: list[Job] = field(default_factory=list)
    task: str = "datasets"
    dataset: str = ""
    variant: str = ""
    method: str = ""
    seed: int | None = None
    """The ``seed`` a stochastic method or control runs with (and its metrics score); None otherwise."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The arguments this run set for the component (``--component_args``), also in ``params``
    (a set ``seed`` is the first of its seeds: ``params`` holds this job's own)."""

    @property
    def argv_values(self) -> dict[str, Any]:
        return {
            **{k: str(v) for k, v in self.inputs.items()},
            **{k: str(v) for k, v in self.outputs.items()},
            **self.params,
        }

    @property
    def output_params(self) -> dict[str, Any]:
        """The parameters that decide the output (not, say, which mirror the data is read from)."""
        arguments = self.spec.argument_map
        return {k: v for k, v in self.params.items() if k not in arguments or arguments[k].affects_output}

    @property
    def key(self) -> str:
        """Content key: the component's files, the scmib code it runs on, its parameters and its
        inputs' keys (like -resume)."""
        digest = hashlib.sha256(__version__.encode())
        digest.update(package_digest().encode())
        digest.update(component_digest(self.spec).encode())
        digest.update(json.dumps(self.output_params, sort_keys=True, default=str).encode())
        for dep in sorted(self.deps, key=lambda d: d.id):
            digest.update(dep.key.encode())
        if not self.deps:
            # A job reading files no job made (a user's own data, `scmib run --data`): a changed
            # file is a new input. Other jobs' inputs are known by their makers' keys.
            for name, path in sorted(self.inputs.items()):
                if Path(path).is_file():
                    stat = Path(path).stat()
                    digest.update(f"{name}:{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()


_DIGESTS: dict[Path, str] = {}


@functools.cache
def package_digest() -> str:
    """Hash of the scmib package's files: components run on its shared code (a changed LSI changes
    every output made from it), so a run made with other code is not taken for this one's."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def component_digest(spec: ComponentSpec) -> str:
    """Hash of every file in the component folder plus its merged spec (api arguments included)."""
    if spec.folder not in _DIGESTS:
        # Fields at their defaults are left out, so a new optional spec field does not re-run every job.
        digest = hashlib.sha256(spec.model_dump_json(exclude_defaults=True).encode())
        for path in sorted(p for p in spec.folder.rglob("*") if p.is_file()):
            if "__pycache__" not in path.parts:
                digest.update(path.relative_to(spec.folder).as_posix().encode())
                digest.update(path.read_bytes())
        _DIGESTS[spec.folder] = digest.hexdigest()
    return _DIGESTS[spec.folder]


def load_task_info(task: str) -> dict[str, Any]:
    path = api_root() / task / "task.yaml"
    if not path.is_file():
        raise ScmibError(f"unknown task '{task}' (no {path})")
    return yaml.safe_load(path.read_text())


def _matches(name: str, patterns: list[str] | None) -> bool:
    """Whether ``name`` is selected: it matches an include pattern (if any) and no ``!``-exclude pattern."""
    patterns = patterns or []
    includes = [p for p in patterns if not p.startswith("!")]
    excludes = [p[1:] for p in patterns if p.startswith("!")]
    included = not includes or any(fnmatch.fnmatch(name, p) for p in includes)
    return included and not any(fnmatch.fnmatch(name, p) for p in excludes)


def in_profile(spec: ComponentSpec, selection: Selection) -> bool:
    """Whether a run includes method ``spec``: its profile is one of the method's
    (``info.profiles``), or ``--methods`` names it (an include pattern matches it)."""
    if spec.info.profiles is None or selection.profile in spec.info.profiles:
        return True
    includes = [p for p in selection.methods or [] if not p.startswith("!")]
    return any(fnmatch.fnmatch(spec.name, p) for p in includes)


def outside_profile(repo: Path, selection: Selection) -> list[str]:
    """What a run leaves out because its profile is not the method's (:func:`in_profile`), and how
    to run it: said, so that no method is dropped silently."""
    said = []
    for spec in discover(repo / "components"):
        wanted = spec.kind == "method" and spec.task in selection.tasks
        if wanted and _matches(spec.name, selection.methods) and not in_profile(spec, selection):
            said.append(
                f"method '{spec.name}' is not in profile '{selection.profile}' (its profiles: "
                f"{', '.join(spec.info.profiles)}): '--methods {spec.name}' runs it"
            )
    return said


def check_patterns(what: str, patterns: list[str] | None, names: set[str]) -> None:
    """Every pattern of a filter matches one of ``names``; else an error with the closest names.

    A filter that matches nothing would otherwise run everything else without a word.
    """
    unmatched = []
    for pattern in patterns or []:
        bare = pattern.removeprefix("!")
        if not any(fnmatch.fnmatch(name, bare) for name in names):
            close = difflib.get_close_matches(bare, sorted(names), n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            unmatched.append(f"'{bare}'{hint}")
    if unmatched:
        raise ScmibError(f"no {what} is called {', '.join(unmatched)}; known: {', '.join(sorted(names))}")


@dataclass
class Selection:
    """What to run: tasks, profile and name filters.

    Filters are shell patterns; one starting with ``!`` excludes (``["*", "!guanlab*"]``);
    None or only excludes means everything else.
    """

    tasks: list[str] = field(default_factory=lambda: list(RUNNABLE_TASKS))
    profile: str = "default"
    datasets: list[str] | None = None
    methods: list[str] | None = None
    metrics: list[str] | None = None
    data_mirror: str | None = None
    cache_dir: str | None = None
    user_data: list[DataOptions] = field(default_factory=list)
    """A user's own datasets (``scmib run --data``): planned instead of the bundled ones."""
    seeds: int | None = None
    """Runs per stochastic method and control, with seeds ``seed``, ``seed + 1``, ...
    (None: the profile's, :data:`DEFAULT_SEEDS`)."""
    component_args: list[str] = field(default_factory=list)
    """``COMPONENT.ARGUMENT=VALUE`` settings that replace spec defaults (see
    :mod:`scmib.runner.component_args`)."""

    @property
    def n_seeds(self) -> int:
        return self.seeds if self.seeds is not None else DEFAULT_SEEDS[self.profile]


@dataclass(frozen=True)
class Parameters:
    """Where a job's parameter values come from: its spec's defaults (``test_default`` under the
    test profile), then the run's ``--component_args`` (by component id), then what the plan fixes
    for the job (a dataset's loader arguments, the task variant, the seed)."""

    profile: str
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __call__(self, spec: ComponentSpec, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for arg in spec.parameters():
            test = self.profile == "test" and arg.test_default is not None
            value = arg.test_default if test else arg.default
            if value is not None:
                values[arg.name] = value
        settings = self.settings.get(spec.id, {})
        values.update(settings)
        fixed = {k: v for k, v in (fixed or {}).items() if k in spec.argument_map and v is not None}
        # A set seed is where a stochastic component's seeds start; anything else the plan fixes wins
        # over nothing silently.
        for name in sorted(fixed.keys() & settings.keys() - {"seed"}):
            if fixed[name] != settings[name]:
                raise ScmibError(
                    f"--component_args {spec.name}.{name}={settings[name]}: the plan sets '{name}' to "
                    f"{fixed[name]!r} for one of its jobs (a dataset's or a task variant's own value)"
                )
        values.update(fixed)
        return values


def _outputs(spec: ComponentSpec, workdir: Path) -> dict[str, Path]:
    """Output paths named after their contracts (``.../prediction.h5ad``, ``.../score.h5ad``)."""
    return {
        arg.name: workdir / f"{str(arg.contract).rpartition('/')[2]}.h5ad" for arg in spec.files("output")
    }


def _wire_inputs(spec: ComponentSpec, files: dict[str, Path]) -> dict[str, Path]:
    """Input paths by argument, looked up by the argument's contract."""
    inputs = {}
    for arg in spec.files("input"):
        if arg.contract in files:
            inputs[arg.name] = files[arg.contract]
        elif arg.required:
            raise ScmibError(
                f"{spec.id}: no file follows contract '{arg.contract}' for its input '{arg.name}'"
            )
    return inputs


def plan(repo: Path, outdir: Path, selection: Selection) -> list[Job]:
    """Every job of a run, dependencies before dependents."""
    if selection.profile not in PROFILES:
        raise ScmibError(f"unknown profile '{selection.profile}'; choose from {PROFILES}")
    if selection.n_seeds < 1:
        raise ScmibError(f"--seeds must be at least 1, not {selection.n_seeds}")
    specs = discover(repo / "components")
    by_kind: dict[tuple[str, str], list[ComponentSpec]] = {}
    for spec in specs:
        by_kind.setdefault((spec.task, spec.kind), []).append(spec)

    loaders = by_kind.get(("datasets", "dataset_loader"), [])
    if selection.user_data:
        loaders = [_user_data_loader(loaders, selection)]
    datasets = {info.id for loader in loaders for info in loader.info.datasets}
    check_patterns("dataset", selection.datasets, datasets)
    kinds = ("method", "control_method")
    check_patterns(
        "method",
        selection.methods,
        {s.name for t in selection.tasks for k in kinds for s in by_kind.get((t, k), [])},
    )
    check_patterns(
        "metric", selection.metrics, {s.name for t in selection.tasks for s in by_kind.get((t, "metric"), [])}
    )
    settings = resolve_component_args(parse_component_args(selection.component_args), specs)
    params = Parameters(selection.profile, settings)
    jobs: list[Job] = []
    loads: list[tuple[Job, DatasetInfo]] = []
    profiles = {
        "test": {"test"},
        "default": {"test", "default"},
        "full": {"test", "default", "full"},
        "scale": {"scale"},
    }
    for loader in loaders:
        for info in loader.info.datasets:
            if not profiles[selection.profile] & set(info.profiles):
                continue
            if not _matches(info.id, selection.datasets):
                continue
            workdir = outdir / "datasets" / info.id
            fixed = {**info.args, "data_mirror": selection.data_mirror, "cache_dir": selection.cache_dir}
            values = params(loader, fixed)
            job = Job(
                id=f"datasets/{info.id}",
                spec=loader,
                stage="load",
                workdir=workdir,
                inputs={a.name: Path(values.pop(a.name)) for a in loader.files("input") if a.name in values},
                outputs=_outputs(loader, workdir),
                params=values,
                dataset=info.id,
            )
            jobs.append(job)
            loads.append((job, info))
    if not loads:
        raise ScmibError(f"no dataset matches {selection.datasets} in profile '{selection.profile}'")

    for task in selection.tasks:
        jobs += _plan_task(task, loads, by_kind, outdir, selection, params)
    for job in jobs:
        job.settings = settings.get(job.spec.id, {})
    return jobs


def idle_filters(selection: Selection, jobs: list[Job]) -> list[str]:
    """What each name filter of ``selection`` that selects nothing in ``jobs`` did not do, and why.

    Every pattern names a known component or dataset (:func:`check_patterns`), yet it
    may select no job: a dataset outside the profile, a method whose modality pairs no
    selected dataset has, an exclusion of a control (controls always run: the scores
    are scaled between them). Said, so that nothing asked for is dropped silently.
    """
    chosen = {
        "dataset": {job.dataset for job in jobs if job.stage == "load"},
        "method": {job.method for job in jobs if job.stage == "method"},
        "metric": {job.spec.name for job in jobs if job.stage == "metric"},
    }
    controls = {job.method for job in jobs if job.stage == "control_method"}
    reasons = {
        "dataset": f"none of profile '{selection.profile}' matches it",
        "method": "none that matches it applies to a task variant of the selected datasets",
        "metric": "none that matches it scores a selected task",
    }
    said = []
    for what, patterns in (
        ("dataset", selection.datasets),
        ("method", selection.methods),
        ("metric", selection.metrics),
    ):
        for pattern in patterns or []:
            bare = pattern.removeprefix("!")
            if bare != pattern:
                if what == "method" and any(fnmatch.fnmatch(name, bare) for name in controls):
                    said.append(f"--exclude_methods '{bare}': controls always run (they scale the scores)")
            elif not any(fnmatch.fnmatch(name, pattern) for name in chosen[what]):
                names_control = what == "method" and any(fnmatch.fnmatch(name, pattern) for name in controls)
                reason = "it names a control, and controls always run" if names_control else reasons[what]
                said.append(f"--{what}s '{pattern}' selects no {what}: {reason}")
    return said


def _user_data_loader(loaders: list[ComponentSpec], selection: Selection) -> ComponentSpec:
    """The generic loader (``info.user_data``), declaring the user's datasets as its own."""
    from scmib.data.user import dataset_info

    generic = [loader for loader in loaders if loader.info.user_data]
    if len(generic) != 1:
        raise ScmibError(f"--data needs exactly one loader with info.user_data, found {len(generic)}")
    component_digest(generic[0])  # the folder's key, before its datasets are filled in
    infos = [dataset_info(options) for options in selection.user_data]
    return generic[0].model_copy(update={"info": generic[0].info.model_copy(update={"datasets": infos})})


def _plan_task(
    task: str,
    loads: list[tuple[Job, DatasetInfo]],
    by_kind: dict[tuple[str, str], list[ComponentSpec]],
    outdir: Path,
    selection: Selection,
    params: Parameters,
) -> list[Job]:
    info = load_task_info(task)
    variant_arg = info["processor_argument"]
    processors = by_kind.get((task, "dataset_processor"), [])
    if len(processors) != 1:
        raise ScmibError(f"task '{task}' needs exactly one processor, found {len(processors)}")
    processor = processors[0]
    controls = by_kind.get((task, "control_method"), [])
    methods = [
        m
        for m in by_kind.get((task, "method"), [])
        if _matches(m.name, selection.methods) and in_profile(m, selection)
    ]
    metrics = [m for m in by_kind.get((task, "metric"), []) if _matches(m.name, selection.metrics)]
    # Prediction processors run once per prediction, only where a selected metric reads their output.
    read_by_metrics = {arg.contract for m in metrics for arg in m.files("input")}
    preparers = [
        p
        for p in by_kind.get((task, "prediction_processor"), [])
        if {arg.contract for arg in p.files("output")} & read_by_metrics
    ]
    jobs: list[Job] = []
    for load, dataset in loads:
        for variant, modalities in info["variants"].items():
            if not set(modalities.values()) <= set(dataset.modalities):
                continue
            base = outdir / task / dataset.id / variant
            common = {"task": task, "dataset": dataset.id, "variant": variant}
            loaded = {arg.contract: load.outputs[arg.name] for arg in load.spec.files("output")}
            proc = Job(
                id=f"{task}/{dataset.id}/{variant}/data",
                spec=processor,
                stage="process",
                workdir=base / "data",
                inputs=_wire_inputs(processor, loaded),
                outputs=_outputs(processor, base / "data"),
                params=params(processor, {variant_arg: variant}),
                deps=[load],
                **common,
            )
            jobs.append(proc)
            files = {arg.contract: proc.outputs[arg.name] for arg in processor.files("output")}
            for spec, seed in _seeded(controls + methods, selection.n_seeds, params):
                if not spec.applies_to(variant):
                    continue
                # The spec's own first seed keeps the unseeded names, so a one-seed run is laid out as
                # before, and a set first seed (--component_args x.seed=7) never takes its folder.
                own_seed = _base_seed(spec, Parameters(params.profile))
                suffix = f"/seed{seed}" if seed is not None and seed != own_seed else ""
                workdir = base / f"{spec.name}{suffix}"
                method_job = Job(
                    id=f"{task}/{dataset.id}/{variant}/{spec.name}{suffix}",
                    spec=spec,
                    stage=spec.kind,
                    workdir=workdir,
                    inputs=_wire_inputs(spec, files),
                    outputs=_outputs(spec, workdir),
                    params=params(spec, {} if seed is None else {"seed": seed}),
                    deps=[proc],
                    method=spec.name,
                    seed=seed,
                    **common,
                )
                jobs.append(method_job)
                prediction = {f"{task}/prediction": method_job.outputs["output"]}
                # Contract -> (file, the job that writes it) for what the prediction processors make.
                prepared: dict[str, tuple[Path, Job]] = {}
                for preparer in preparers:
                    prep_dir = workdir / "prepared" / preparer.name
                    prep_job = Job(
                        id=f"{method_job.id}/prepared/{preparer.name}",
                        spec=preparer,
                        stage="prepare",
                        workdir=prep_dir,
                        inputs=_wire_inputs(preparer, {**files, **prediction}),
                        outputs=_outputs(preparer, prep_dir),
                        params=params(preparer),
                        deps=[method_job],
                        method=spec.name,
                        seed=seed,
                        **common,
                    )
                    jobs.append(prep_job)
                    for arg in preparer.files("output"):
                        prepared[str(arg.contract)] = (prep_job.outputs[arg.name], prep_job)
                for metric in metrics:
                    metric_dir = workdir / "scores" / metric.name
                    reads = {str(arg.contract) for arg in metric.files("input")}
                    jobs.append(
                        Job(
                            id=f"{method_job.id}/{metric.name}",
                            spec=metric,
                            stage="metric",
                            workdir=metric_dir,
                            inputs=_wire_inputs(
                                metric, {**files, **prediction, **{c: f for c, (f, _) in prepared.items()}}
                            ),
                            outputs=_outputs(metric, metric_dir),
                            params=params(metric),
                            deps=[method_job, *(job for c, (_, job) in prepared.items() if c in reads)],
                            method=spec.name,
                            seed=seed,
                            **common,
                        )
                    )
    return jobs


def _base_seed(spec: ComponentSpec, params: Parameters) -> int:
    """The seed a stochastic component runs with first (its ``seed`` default, or the run's setting)."""
    return int(params(spec).get("seed", 0))


def _seeded(
    specs: list[ComponentSpec], n_seeds: int, params: Parameters
) -> list[tuple[ComponentSpec, int | None]]:
    """Each spec with the seeds it runs with: ``n_seeds`` consecutive ones from its first for a
    stochastic component, one run without a seed for a deterministic one."""
    pairs: list[tuple[ComponentSpec, int | None]] = []
    for spec in specs:
        if spec.stochastic:
            base = _base_seed(spec, params)
            pairs += [(spec, base + i) for i in range(n_seeds)]
        else:
            pairs.append((spec, None))
    return pairs


def start_order(jobs: list[Job]) -> list[Job]:
    """``jobs`` in the order to start them as they become ready: first the jobs on the way to a long
    one, then the plan's order.

    A job's rank is the longest time label (:func:`scmib.resources.time_limit_s`) among itself and
    every job that depends on it, so a dataset's loader and processor and a ``hightime`` method
    (MultiVI, totalVI) run before the short metric jobs planned ahead of them. In plan order the
    longest training started near the end and ran on one core while the other idled (simulated
    from a one-seed default run's job times: 2,482 s against 2,279 s, the 2-core bound). The order
    changes no result: every job reads only its dependencies' files.
    """
    own_limit = {job.id: time_limit_s(job.spec.resources) for job in jobs}
    dependents: dict[str, list[str]] = {}
    for job in jobs:
        for dep in job.deps:
            dependents.setdefault(dep.id, []).append(job.id)

    @functools.cache
    def rank(job_id: str) -> int:
        return max([own_limit[job_id], *(rank(d) for d in dependents.get(job_id, []))])

    return sorted(jobs, key=lambda job: -rank(job.id))  # stable: plan order among equals

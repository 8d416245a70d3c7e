"""Component specs: one ``config.yaml`` per component folder, validated by a schema.

A component lives in ``components/<task>/<kind folder>/<name>/`` with a
``config.yaml`` (this spec), a ``script.py`` and a ``Dockerfile``. A spec may
name a shared ``api`` (``<task>/comp_<kind>``, from ``scmib/api``) whose
arguments it inherits, so every method of a task takes the same files.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from scmib.contracts import api_root, load_contract
from scmib.errors import SpecError
from scmib.resources import LABELS

Kind = Literal[
    "dataset_loader", "dataset_processor", "control_method", "method", "prediction_processor", "metric"
]
#: Folder that holds each kind of component inside ``components/<task>/``.
KIND_FOLDERS: dict[str, str] = {
    "dataset_loader": "loaders",
    "dataset_processor": "processors",
    "control_method": "control_methods",
    "method": "methods",
    "prediction_processor": "prediction_processors",
    "metric": "metrics",
}
TASKS = ("datasets", "predict_modality", "match_modalities", "joint_embedding")
#: Names that reach file paths, job ids, command lines and workflow task scripts: nothing a shell
#: or a path would read specially.
NAME_PATTERN = re.compile(r"[a-z0-9_]+")


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it is lower-case letters, digits and underscores, else a ``ValueError`` saying so."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{what} '{name}' must be lower-case letters, digits and '_' only ([a-z0-9_]+)")
    return name


ArgType = Literal["file", "integer", "double", "string", "boolean"]
#: The Python types a value of each argument type may have (a whole number is a fine double).
PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "double": (int, float),
    "boolean": (bool,),
    "string": (str,),
    "file": (str,),
}
#: What a boolean argument may be written as on a command line.
BOOLEAN_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Argument(Strict):
    """One command-line argument of a component (``--name value``)."""

    name: str
    type: ArgType
    description: str = ""
    required: bool = False
    default: Any = None
    test_default: Any = None
    """A smaller value the ``test`` profile passes instead of ``default``."""
    choices: list[Any] | None = None
    direction: Literal["input", "output"] = "input"
    contract: str | None = None
    """For files: the file contract (``<task>/<name>``) the file follows."""
    min: float | None = None
    max: float | None = None
    """For numbers: the smallest and largest value allowed (checked for defaults and on the command line)."""
    exclusive_min: bool = False
    """For numbers: ``min`` itself is not allowed (a length scale, a learning rate: above 0)."""
    affects_output: bool = True
    """False for where inputs come from (a mirror folder, a cache), not what the output is: left out
    of the job's cache key, so pointing at another copy of the same data re-runs nothing."""

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        return check_name(name, "argument name")

    @model_validator(mode="after")
    def _exclusive_of_a_min(self) -> Argument:
        if self.exclusive_min and self.min is None:
            raise ValueError(f"'{self.name}': exclusive_min needs a min")
        return self

    @model_validator(mode="after")
    def _defaults_fit(self) -> Argument:
        for field in ("default", "test_default"):
            value = getattr(self, field)
            if value is not None and (problem := self.value_problem(value)):
                raise ValueError(f"{field} of '{self.name}': {problem}")
        return self

    def parse(self, text: str) -> Any:
        """The value of this argument written as ``text`` on a command line; a ``ValueError`` says
        why it does not fit (its type, range and choices)."""
        if self.type == "boolean":
            lowered = text.strip().lower()
            if lowered not in BOOLEAN_WORDS:
                raise ValueError(f"expected true or false, got '{text}'")
            value: Any = BOOLEAN_WORDS[lowered]
        elif self.type in ("integer", "double"):
            try:
                value = int(text) if self.type == "integer" else float(text)
            except ValueError:
                article = "an" if self.type == "integer" else "a"
                raise ValueError(f"'{text}' is not {article} {self.type}") from None
            if value != value:  # NaN passes every range check
                raise ValueError(f"'{text}' is not a number")
        else:
            value = text
        if problem := self.value_problem(value):
            raise ValueError(problem)
        return value

    def value_problem(self, value: Any) -> str | None:
        """Why ``value`` does not fit this argument (its type, range and choices), or None."""
        wrong_bool = isinstance(value, bool) and self.type != "boolean"
        if wrong_bool or not isinstance(value, PYTHON_TYPES[self.type]):
            return f"{value!r} is not a{'n' if self.type == 'integer' else ''} {self.type}"
        if self.min is not None and value < self.min:
            return f"{value!r} is below its minimum {self.min:g}"
        if self.min is not None and self.exclusive_min and value == self.min:
            return f"{value!r} is not above {self.min:g}"
        if self.max is not None and value > self.max:
            return f"{value!r} is above its maximum {self.max:g}"
        if self.choices is not None and value not in self.choices:
            return f"{value!r} is not one of {self.choices}"
        return None


class MetricInfo(Strict):
    name: str
    label: str
    summary: str
    min: float
    max: float
    maximize: bool
    scored: bool = True
    """False: reported in the results but not counted in the method's scaled score (a metric the
    competition did not score, or the part of one that is)."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        return check_name(name, "metric name")


class DatasetInfo(Strict):
    """A dataset a loader produces: its id, the loader arguments and the profiles it belongs to."""

    id: str
    label: str
    summary: str
    modalities: list[Literal["GEX", "ADT", "ATAC"]]
    organism: Literal["human", "mouse"]
    args: dict[str, Any] = Field(default_factory=dict)
    profiles: list[str] = Field(default_factory=lambda: ["default"])

    @field_validator("id")
    @classmethod
    def _safe_id(cls, id_: str) -> str:
        return check_name(id_, "dataset id")


class Info(Strict):
    preferred_normalization: str | None = None
    modality_pairs: list[str] | None = None
    """For methods and controls: the task variants (e.g. ``gex2adt``) they support; None = all."""
    metrics: list[MetricInfo] = Field(default_factory=list)
    datasets: list[DatasetInfo] = Field(default_factory=list)
    is_solution: bool = False
    """For controls: the control that is handed the solution (scores perfectly)."""
    user_data: bool = False
    """For loaders: reads a user's own file (``scmib run --data``) instead of declaring datasets."""
    stochastic: bool | None = None
    """For methods and controls: whether the output depends on the ``seed`` argument, so the runner
    runs it with several seeds (``--seeds``). None: stochastic exactly when it has a ``seed`` argument."""
    profiles: list[Literal["test", "default", "full", "scale"]] | None = None
    """For methods: the profiles whose runs include it unasked (None: every profile); a run of
    another profile includes it only when ``--methods`` names it. For a method that needs a GPU
    to finish the ``default`` profile's datasets in reasonable time."""


class References(Strict):
    doi: list[str] = Field(default_factory=list)
    bibtex: list[str] = Field(default_factory=list)


class Links(Strict):
    repository: str | None = None
    documentation: str | None = None
    homepage: str | None = None


class Container(Strict):
    # Image names and tags as Docker spells them (no spaces, quotes or shell characters).
    image: str = Field(pattern=r"^[a-z0-9][a-z0-9._/-]*$")
    tag: str = Field(default="0.1.0", pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
    dockerfile: str = "Dockerfile"


class Requirements(Strict):
    python: list[str] = Field(default_factory=list)
    apt: list[str] = Field(default_factory=list)


class ComponentSpec(Strict):
    """The schema of a component's ``config.yaml``."""

    name: str
    kind: Kind
    task: Literal["datasets", "predict_modality", "match_modalities", "joint_embedding"]
    label: str
    summary: str
    description: str
    api: str | None = None
    references: References = Field(default_factory=References)
    links: Links = Field(default_factory=Links)
    info: Info = Field(default_factory=Info)
    arguments: list[Argument] = Field(default_factory=list)
    resources: list[str] = Field(default_factory=lambda: ["lowcpu", "lowmem", "lowtime"])
    container: Container
    requirements: Requirements = Field(default_factory=Requirements)
    script: str = "script.py"
    folder: Path = Field(default=Path("."), exclude=True)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        return check_name(name)

    @field_validator("resources")
    @classmethod
    def _known_labels(cls, labels: list[str]) -> list[str]:
        unknown = sorted(set(labels) - set(LABELS))
        if unknown:
            raise ValueError(f"unknown resource labels {unknown}; known: {sorted(LABELS)}")
        return labels

    @model_validator(mode="after")
    def _profiles_of_methods_only(self) -> ComponentSpec:
        # Controls always run (they scale the scores); other kinds run where their task does.
        if self.info.profiles is not None and self.kind != "method":
            raise ValueError(f"info.profiles is for methods, not a {self.kind}")
        return self

    @property
    def id(self) -> str:
        """``<task>/<kind folder>/<name>``, unique across the repository."""
        return f"{self.task}/{KIND_FOLDERS[self.kind]}/{self.name}"

    @property
    def script_path(self) -> Path:
        return self.folder / self.script

    @cached_property
    def argument_map(self) -> dict[str, Argument]:
        return {arg.name: arg for arg in self.arguments}

    def files(self, direction: str) -> list[Argument]:
        return [a for a in self.arguments if a.type == "file" and a.direction == direction]

    def parameters(self) -> list[Argument]:
        return [a for a in self.arguments if a.type != "file"]

    def applies_to(self, variant: str) -> bool:
        pairs = self.info.modality_pairs
        return pairs is None or variant in pairs

    @property
    def stochastic(self) -> bool:
        """A method or control whose results vary with its ``seed`` argument (see ``Info.stochastic``)."""
        if self.kind not in ("method", "control_method"):
            return False
        declared = self.info.stochastic
        return "seed" in self.argument_map if declared is None else declared

    @model_validator(mode="after")
    def _seeded_if_stochastic(self) -> ComponentSpec:
        if self.info.stochastic and "seed" not in self.argument_map:
            raise ValueError("info.stochastic is true but there is no 'seed' argument for the runner to vary")
        return self

    @model_validator(mode="after")
    def _arguments_named_once(self) -> ComponentSpec:
        names = [arg.name for arg in self.arguments]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"arguments {twice} are declared more than once")
        return self

    @model_validator(mode="after")
    def _dataset_args_fit(self) -> ComponentSpec:
        """A dataset's ``args`` are this loader's arguments, with values they accept: a misspelt
        name would otherwise be dropped when planning, and the loader run with its default."""
        for i, dataset in enumerate(self.info.datasets):
            for name, value in dataset.args.items():
                arg = self.argument_map.get(name)
                problem = (
                    f"not an argument of this loader (known: {sorted(self.argument_map)})"
                    if arg is None
                    else arg.value_problem(value)
                )
                if problem:
                    raise ValueError(f"info.datasets[{i}] ('{dataset.id}'): args '{name}': {problem}")
        return self


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        # libyaml's parser where PyYAML was built with it: planning reads ~100 specs and their APIs.
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    return data


def load_api(api_id: str) -> dict[str, Any]:
    """Load a shared component API (``<task>/comp_<kind>``) from ``scmib/api``."""
    task, _, name = api_id.partition("/")
    path = api_root() / task / f"{name}.yaml"
    if not path.is_file():
        raise SpecError(f"unknown component api '{api_id}' (expected file {path})")
    return _load_yaml(path)


def _format_validation_error(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown field (misspelt?)" if err["type"] == "extra_forbidden" else err["msg"]
        if err["type"] == "string_pattern_mismatch":
            msg += f", not {err['input']!r}"
        lines.append(f"{path}: field '{field}': {msg}")
    return "\n".join(lines)


def load_spec(path: str | Path) -> ComponentSpec:
    """Load and validate a component spec, merging the arguments of its ``api``.

    Raises :class:`SpecError` naming the file and the field on any problem.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "config.yaml"
    if not path.is_file():
        raise SpecError(f"{path}: component spec not found")
    data = _load_yaml(path)
    if api_id := data.get("api"):
        api = load_api(api_id)
        if api.get("kind") != data.get("kind"):
            raise SpecError(
                f"{path}: field 'kind': '{data.get('kind')}' does not match "
                f"api '{api_id}' (kind '{api.get('kind')}')"
            )
        arguments = data.get("arguments") or []
        if not isinstance(arguments, list) or not all(isinstance(a, dict) for a in arguments):
            raise SpecError(f"{path}: field 'arguments': expected a list of mappings (name, type, ...)")
        names = [str(a.get("name")) for a in arguments]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise SpecError(f"{path}: field 'arguments': {twice} declared more than once")
        own = {a.get("name"): a for a in arguments}
        merged = [{**arg, **own.pop(arg["name"], {})} for arg in api.get("arguments", [])]
        data["arguments"] = merged + list(own.values())
    try:
        spec = ComponentSpec(**data, folder=path.parent.resolve())
    except ValidationError as exc:
        raise SpecError(_format_validation_error(path, exc)) from exc
    for arg in spec.arguments:
        if arg.type == "file" and arg.contract:
            try:
                load_contract(arg.contract)
            except SpecError as exc:
                raise SpecError(f"{path}: argument '{arg.name}': {exc}") from exc
    return spec


def find_repo_root(start: Path | None = None) -> Path:
    """The folder holding ``components/``: ``$SCMIB_REPO``, else the nearest parent of ``start``
    (the working directory) that has one, else the checkout scmib itself is installed from
    (``pip install -e .``), so ``scmib run`` works from any folder."""
    if env := os.environ.get("SCMIB_REPO"):
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "components").is_dir():
            return folder
    checkout = Path(__file__).resolve().parents[2]  # src/scmib/spec.py in a checkout
    if (checkout / "components").is_dir() and (checkout / "src" / "scmib").is_dir():
        return checkout
    raise SpecError(
        f"no 'components/' folder found in {here} or its parents, nor beside the installed scmib "
        "(run it in a checkout of the repository, or set SCMIB_REPO to one)"
    )


def discover_spec_files(components_dir: Path) -> list[Path]:
    return sorted(components_dir.glob("*/*/*/config.yaml"))


def discover(components_dir: Path) -> list[ComponentSpec]:
    """Load every component spec under ``components_dir`` (raises on the first broken one)."""
    return [load_spec(path) for path in discover_spec_files(components_dir)]

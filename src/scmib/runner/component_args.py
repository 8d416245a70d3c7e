"""Component arguments set for one run: ``--component_args multivi.max_epochs=200``.

Every job takes its arguments from its component's spec (the defaults; ``test_default`` under the
test profile). A run may set others, for example more epochs where there is a GPU, a method's
neighbour count for a sensitivity study, or a metric's option: ``COMPONENT.ARGUMENT=VALUE``, where
COMPONENT is a component's name (``multivi``) or, where a name is shared between tasks, its id
(``predict_modality/control_methods/solution``). The value is checked like the component's own
command line (type, range, choices) before any job runs, and it enters the jobs' content keys, so
the jobs it changes (and only those, with everything downstream of them) run again.

Several settings may share one string, separated by spaces or ``;`` (Nextflow passes one string):
a new setting starts wherever ``name.argument=`` follows a space or ``;``, so values may hold
commas and spaces.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from scmib.errors import ScmibError
from scmib.spec import ComponentSpec

#: Where one setting starts: a component (name or id), a dot, an argument name and ``=``.
_SETTING = re.compile(r"(?:^|(?<=[\s;]))([a-z0-9_]+(?:/[a-z0-9_]+)*)\.([a-z0-9_]+)=")
#: Arguments that the run's own options set.
RUN_OPTIONS = {"data_mirror": "--data_mirror", "cache_dir": "--cache_dir"}
EXAMPLE = "COMPONENT.ARGUMENT=VALUE, e.g. multivi.max_epochs=200"


@dataclass(frozen=True)
class Setting:
    """One ``COMPONENT.ARGUMENT=VALUE`` as given (the value still text)."""

    component: str
    argument: str
    text: str

    def __str__(self) -> str:
        return f"{self.component}.{self.argument}={self.text}"


def parse_component_args(texts: list[str]) -> list[Setting]:
    """The settings in ``texts`` (each one or more ``COMPONENT.ARGUMENT=VALUE``), in order."""
    settings = []
    for text in texts:
        starts = list(_SETTING.finditer(text))
        if not starts or text[: starts[0].start()].strip(" \t\n;"):
            raise ScmibError(f"--component_args {text!r}: expected {EXAMPLE}")
        for start, following in zip(starts, [*starts[1:], None], strict=True):
            value = text[start.end() : following.start() if following else len(text)].strip(" \t\n;")
            settings.append(Setting(start.group(1), start.group(2), value))
    return settings


def _component(name: str, specs: list[ComponentSpec]) -> ComponentSpec:
    found = [spec for spec in specs if name in (spec.name, spec.id)]
    if len(found) > 1:
        ids = ", ".join(sorted(spec.id for spec in found))
        raise ScmibError(f"--component_args: '{name}' names {len(found)} components ({ids}); give its id")
    if not found:
        names = sorted({spec.name for spec in specs} | {spec.id for spec in specs})
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ScmibError(f"--component_args: no component is named '{name}'{hint}")
    return found[0]


def resolve_component_args(settings: list[Setting], specs: list[ComponentSpec]) -> dict[str, dict[str, Any]]:
    """The typed values of ``settings`` by component id, checked against the components' specs.

    Raises :class:`~scmib.errors.ScmibError` naming the setting for an unknown component or
    argument, a file argument (files are wired by the plan), an argument that has its own run
    option, a value that does not fit the argument, or one argument set twice to different values.
    """
    values: dict[str, dict[str, Any]] = {}
    for setting in settings:
        spec = _component(setting.component, specs)
        if spec.info.user_data:
            raise ScmibError(
                f"--component_args {setting}: your own data is described by scmib run's --data options "
                "(--batch_key, --cell_type_key, ...) or a datasets YAML, checked before any job runs"
            )
        arg = spec.argument_map.get(setting.argument)
        if arg is None:
            known = [a.name for a in spec.parameters() if a.name not in RUN_OPTIONS]
            raise ScmibError(
                f"--component_args {setting}: {spec.id} has no argument '{setting.argument}'; "
                f"it takes {', '.join(known) or 'none'}"
            )
        if arg.type == "file":
            raise ScmibError(f"--component_args {setting}: '{arg.name}' is a file: the run wires files")
        if arg.name in RUN_OPTIONS:
            raise ScmibError(f"--component_args {setting}: use the run's {RUN_OPTIONS[arg.name]} option")
        try:
            value = arg.parse(setting.text)
        except ValueError as exc:
            raise ScmibError(f"--component_args {setting}: {exc}") from None
        given = values.setdefault(spec.id, {})
        if arg.name in given and given[arg.name] != value:
            raise ScmibError(
                f"--component_args sets {spec.id}'s '{arg.name}' twice: {given[arg.name]!r} and {value!r}"
            )
        given[arg.name] = value
    return values

"""The runtime every component script starts through.

A component script holds only its logic::

    from scmib.component import ComponentRun, run_component

    def main(run: ComponentRun) -> None:
        train = run.read("input_train_mod1")          # validated against its contract
        ...
        run.write("output", prediction)               # validated, then written atomically

    if __name__ == "__main__":
        run_component(__file__, main)

The command line is built from the spec beside the script (``config.yaml``), so
the runner, Nextflow and a person at a shell all call it the same way:
``python script.py --input_train_mod1 a.h5ad ... --output pred.h5ad``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import pandas as pd

from scmib.contracts import (
    FileContract,
    check_file,
    check_layer,
    load_contract,
    score_values,
    shared_axis_problems,
)
from scmib.errors import EXIT_NOT_APPLICABLE, ContractError, NotApplicable, ScmibError
from scmib.io import keep_layers, read_h5ad, write_h5ad_atomic
from scmib.spec import Argument, ComponentSpec, load_spec


def _checked(arg: Argument) -> Callable[[str], Any]:
    """The converter of an argument's command-line text, checking its type, range and choices."""

    def convert(text: str) -> Any:
        try:
            return arg.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = arg.type  # argparse names the type in its error message
    return convert


def build_parser(spec: ComponentSpec) -> argparse.ArgumentParser:
    """An argparse parser with one ``--name`` option per argument of ``spec``."""
    parser = argparse.ArgumentParser(
        prog=f"{spec.id}/{spec.script}", description=f"{spec.label}: {spec.summary}"
    )
    for arg in spec.arguments:
        required = arg.required and arg.default is None
        help_text = arg.description or arg.name
        if arg.contract:
            help_text += f" [{arg.direction} file, contract {arg.contract}]"
        parser.add_argument(
            f"--{arg.name}",
            type=_checked(arg),
            required=required,
            default=arg.default,
            choices=arg.choices,
            help=help_text,
        )
    return parser


def command_line(spec: ComponentSpec, values: dict[str, Any]) -> list[str]:
    """The argv (after ``python script.py``) that passes ``values`` to a component."""
    argv: list[str] = []
    for name, value in values.items():
        if name not in spec.argument_map:
            raise ScmibError(f"{spec.id}: no argument named '{name}'")
        if value is None:
            continue
        # One "--name=value" word: a value starting with "-" (a batch key "-donor", a negative
        # number) would otherwise be read by argparse as an option of its own.
        argv.append(f"--{name}={str(value).lower() if isinstance(value, bool) else value}")
    return argv


class ComponentRun:
    """Arguments of one component invocation, with validated readers and writers for its files."""

    def __init__(self, spec: ComponentSpec, values: dict[str, Any]) -> None:
        self.spec = spec
        self.values = values
        #: Files read so far, with their contracts, to check the axes their contracts share.
        # Only the axes of what was read: holding the files would keep every input in memory.
        self._seen: list[tuple[Axes, FileContract, str]] = []

    def _check_shared_axes(self, adata: ad.AnnData, contract: FileContract, path: str) -> None:
        problems = [p for seen in self._seen for p in shared_axis_problems(*seen, adata, contract, path)]
        if problems:
            raise ContractError("\n".join(problems))

    @property
    def par(self) -> dict[str, Any]:
        """The non-file parameters (e.g. ``{"n_neighbors": 25, "seed": 0}``)."""
        return {a.name: self.values[a.name] for a in self.spec.parameters()}

    def at_most(self, name: str, limit: int, what: str) -> int:
        """Parameter ``name``, or ``limit`` where it asks for more (``what`` says of what: "600
        training cells"); the job's log says when the limit applies, so no setting changes unseen."""
        value = self.par[name]
        if value > limit:
            print(f"{name}: {value:,} asked, but there are only {what}: {limit:,} used")
            return limit
        return value

    def _file_arg(self, name: str, direction: str) -> Argument:
        arg = self.spec.argument_map.get(name)
        if arg is None or arg.type != "file" or arg.direction != direction:
            raise ScmibError(f"{self.spec.id}: '{name}' is not an {direction} file argument")
        return arg

    def has(self, name: str) -> bool:
        """Whether an optional file argument was given."""
        return self.values.get(name) is not None

    def path(self, name: str) -> Path:
        return Path(self.values[name])

    def read(self, name: str, lazy: bool = False, layers: Collection[str] | None = None) -> ad.AnnData:
        """Read the input file ``name`` and validate it against its contract.

        With ``lazy`` its sparse matrices stay on disk (see :func:`scmib.io.read_h5ad`).
        With ``layers``, only those layers are read into memory, the others (and ``X``)
        are dropped unread once the file is validated (``layers=()``: the annotations only).
        """
        arg = self._file_arg(name, "input")
        if self.values.get(name) is None:
            raise ContractError(f"{self.spec.id}: input '--{name}' was not given")
        adata = read_h5ad(self.values[name], role=f"input '--{name}'", lazy=lazy or layers is not None)
        if arg.contract:
            contract = load_contract(arg.contract)
            check_file(adata, contract, self.values[name])
            self._check_shared_axes(adata, contract, str(self.values[name]))
            self._seen.append((Axes(adata.obs_names, adata.var_names), contract, str(self.values[name])))
        return adata if layers is None else keep_layers(adata, layers)

    def write(
        self, name: str, adata: ad.AnnData, layers: Mapping[str, Callable[[], Any]] | None = None
    ) -> Path:
        """Validate ``adata`` against the output contract of ``name`` and write it atomically.

        ``layers`` are made one at a time as the file is written (each by calling
        it), and validated then: a file too large to hold twice is never held whole
        (a task processor's, see :class:`scmib.processing.common.TaskFile`).
        For methods and controls, ``uns['method_id']`` is set to the component's name
        when absent, so a prediction always says who made it. A metric's score file must
        hold exactly the metrics its spec declares (:func:`~scmib.contracts.score_values`).
        """
        arg = self._file_arg(name, "output")
        if self.spec.kind in ("method", "control_method"):
            adata.uns.setdefault("method_id", self.spec.name)
        path = self.values[name]
        layers = dict(layers or {})
        if arg.contract:
            contract = load_contract(arg.contract)
            where = f"{path} (output '--{name}')"
            check_file(adata, contract, where, deferred=layers)
            self._check_shared_axes(adata, contract, where)
            if self.spec.kind == "metric":
                score_values(adata, [metric.name for metric in self.spec.info.metrics], where)

            def checked(layer: str, make: Callable[[], Any]) -> Callable[[], Any]:
                def make_and_check() -> Any:
                    matrix = make()
                    check_layer(matrix, layer, contract, where)
                    return matrix

                return make_and_check

            layers = {layer: checked(layer, make) for layer, make in layers.items()}
        return write_h5ad_atomic(adata, path, layers)


@dataclass(frozen=True)
class Axes:
    """The cell and feature names of a file read earlier (what shared-axis checks compare)."""

    obs_names: pd.Index
    var_names: pd.Index


def run_component(
    script_file: str | os.PathLike,
    main: Callable[[ComponentRun], None],
    argv: Sequence[str] | None = None,
) -> None:
    """Parse the command line from the spec beside ``script_file`` and call ``main``.

    Exit codes: 0 done, 99 not applicable (:class:`NotApplicable`), 2 bad input or
    spec (:class:`ScmibError`, message on stderr), 1 any other failure (traceback).
    """
    spec = load_spec(Path(script_file).resolve().parent)
    values = vars(build_parser(spec).parse_args(argv))
    try:
        main(ComponentRun(spec, values))
    except NotApplicable as exc:
        print(f"[{spec.id}] not applicable: {exc}", file=sys.stderr)
        sys.exit(EXIT_NOT_APPLICABLE)
    except ScmibError as exc:
        print(f"[{spec.id}] error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception:
        traceback.print_exc()
        sys.exit(1)

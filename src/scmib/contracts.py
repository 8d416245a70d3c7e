"""File contracts: which slots an AnnData file holds, written once per task in YAML.

A contract lives in ``scmib/api/<task>/file_<name>.yaml`` and is referred to as
``<task>/<name>`` (e.g. ``predict_modality/train_mod1``). Its ``slots`` list the
``X``, ``layers``, ``obs``, ``var``, ``obsm`` and ``uns`` entries a file has,
each with a ``type`` and whether it is ``required``. Component scripts validate
every input they read and every output they write against its contract, so a
method never discovers a missing field half-way through a run.

A layer may declare ``fallback: X``: files that keep those values in ``.X``
(as the NeurIPS 2021 organisers' files do) are accepted unchanged, and the
reader fills the layer from ``.X`` in memory.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scmib.errors import ContractError, SpecError
from scmib.io import stored_values

SlotType = Literal["integer", "double", "boolean", "string", "category", "any"]
MATRIX_SLOTS = ("layers", "obsm", "obsp")
FRAME_SLOTS = ("obs", "var")


class Slot(BaseModel):
    """One entry of a file contract."""

    model_config = ConfigDict(extra="forbid")
    name: str
    type: SlotType = "any"
    required: bool = True
    description: str = ""
    multiple: bool = False
    """For ``uns``: the value is a list or 1-d array of ``type``."""
    fallback: Literal["X"] | None = None
    """For ``layers``: read the values from ``.X`` when the layer is absent."""
    finite: bool = True
    """For matrices: every value must be finite (no NaN or infinity)."""
    min_columns: int | None = None
    max_columns: int | None = None
    """For matrices: how many columns (dimensions) are allowed."""


class XSlot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: SlotType = "double"
    required: bool = False
    description: str = ""
    finite: bool = True
    min_columns: int | None = None
    max_columns: int | None = None


class Slots(BaseModel):
    model_config = ConfigDict(extra="forbid")
    X: XSlot | None = None
    layers: list[Slot] = Field(default_factory=list)
    obs: list[Slot] = Field(default_factory=list)
    var: list[Slot] = Field(default_factory=list)
    obsm: list[Slot] = Field(default_factory=list)
    obsp: list[Slot] = Field(default_factory=list)
    """Cells x cells matrices (a neighbour graph's connectivities and distances)."""
    uns: list[Slot] = Field(default_factory=list)


class FileContract(BaseModel):
    """A file contract as written in ``api/<task>/file_<name>.yaml``."""

    model_config = ConfigDict(extra="forbid")
    label: str
    summary: str
    description: str = ""
    format: Literal["h5ad"] = "h5ad"
    slots: Slots = Field(default_factory=Slots)
    same_obs_as: list[str] = Field(default_factory=list)
    """Contracts whose files have the same cells, in the same order (checked by name)."""
    same_var_as: list[str] = Field(default_factory=list)
    """Contracts whose files have the same features, in the same order (checked by name)."""
    id: str = ""


def shared_axis_problems(
    first: ad.AnnData, first_contract: FileContract, first_path: str | Path,
    second: ad.AnnData, second_contract: FileContract, second_path: str | Path,
) -> list[str]:  # fmt: skip
    """Axes two files must share by their contracts (cells or features, by name and order), and how
    they differ: a method pairs rows and columns by position, so a permuted or renamed axis would
    give a silently wrong result."""
    problems = []
    for axis, what in (("obs", "cells"), ("var", "features")):
        declared = getattr(first_contract, f"same_{axis}_as") + getattr(second_contract, f"same_{axis}_as")
        if second_contract.id not in declared and first_contract.id not in declared:
            continue
        a, b = getattr(first, f"{axis}_names"), getattr(second, f"{axis}_names")
        if len(a) == len(b) and (a == b).all():
            continue
        if len(a) != len(b):
            detail = f"{len(a)} vs {len(b)} {what}"
        elif set(a) == set(b):
            detail = (
                f"the same {what} in another order (first difference at position {int((a != b).argmax())})"
            )
        else:
            only = sorted(set(a) - set(b))[:3]
            detail = f"{len(set(a) - set(b))} {what} of the first are not in the second, e.g. {only}"
        problems.append(
            f"'{first_path}' ({first_contract.id}) and '{second_path}' ({second_contract.id}) must have "
            f"the same {what} ({axis}_names) in the same order: {detail}"
        )
    return problems


def api_root() -> Path:
    """Folder holding the packaged task APIs (contracts, shared component APIs, task info)."""
    return Path(str(resources.files("scmib") / "api"))


def contract_path(contract_id: str) -> Path:
    task, _, name = contract_id.partition("/")
    return api_root() / task / f"file_{name}.yaml"


@cache
def load_contract(contract_id: str) -> FileContract:
    """Load the contract named ``<task>/<name>``; raises :class:`SpecError` if unknown or malformed."""
    path = contract_path(contract_id)
    if "/" not in contract_id or not path.is_file():
        raise SpecError(f"unknown file contract '{contract_id}' (expected file {path})")
    try:
        data = yaml.safe_load(path.read_text())
        return FileContract(**data, id=contract_id)
    except (ValidationError, yaml.YAMLError, TypeError) as exc:
        raise SpecError(f"{path}: malformed file contract: {exc}") from exc


def _matrix_problems(value: Any, where: str, slot: Slot | XSlot) -> list[str]:
    """What is wrong with a matrix (in memory or on disk) for ``slot``; its values are looked at a
    part at a time, so checking a large file costs little memory."""
    dtype = np.dtype(value.dtype) if hasattr(value, "dtype") else np.asarray(value).dtype
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        return [f"{where}: expected a numeric matrix, found dtype {dtype}"]
    problems = []
    n_columns = value.shape[1] if len(value.shape) > 1 else 1
    if slot.min_columns is not None and n_columns < slot.min_columns:
        problems.append(f"{where}: expected at least {slot.min_columns} columns, found {n_columns}")
    if slot.max_columns is not None and n_columns > slot.max_columns:
        problems.append(f"{where}: expected at most {slot.max_columns} columns, found {n_columns}")
    if slot.type == "integer":
        problems += [f"{where}: expected {problem}" for problem in count_problems(value)]
    if slot.finite and np.issubdtype(dtype, np.inexact):
        n_bad = sum(int(np.size(chunk) - np.isfinite(chunk).sum()) for chunk in stored_values(value))
        if n_bad:
            problems.append(f"{where}: expected finite values, found {n_bad} NaN or infinite entries")
    return problems


def count_problems(matrix: Any) -> list[str]:
    """Why ``matrix`` (dense or sparse, in memory or on disk) cannot be raw counts: each as
    "whole-number counts, found ..." or "non-negative counts, found ..."; empty when it can."""
    dtype = np.dtype(matrix.dtype) if hasattr(matrix, "dtype") else np.asarray(matrix).dtype
    if np.issubdtype(dtype, np.bool_):
        return []
    if not np.issubdtype(dtype, np.number):
        return [f"whole-number counts, found values of type {dtype}"]
    fractional, n_negative = None, 0
    for chunk in stored_values(matrix):
        if fractional is None and np.issubdtype(dtype, np.inexact):
            odd = chunk[~np.equal(np.mod(chunk, 1), 0)]
            fractional = odd.flat[0] if odd.size else None
        n_negative += int((chunk < 0).sum())
    problems = []
    if fractional is not None:
        problems.append(f"whole-number counts, found fractional values (e.g. {fractional:.4g})")
    if n_negative:
        problems.append(f"non-negative counts, found {n_negative} negative values")
    return problems


def _column_problems(column: pd.Series, where: str, slot: Slot) -> list[str]:
    kind = column.dtype
    if slot.type in ("string", "category"):
        ok = (
            isinstance(kind, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(kind)
            or pd.api.types.is_object_dtype(kind)
        )
    elif slot.type == "integer":
        ok = pd.api.types.is_integer_dtype(kind)
    elif slot.type == "double":
        ok = pd.api.types.is_numeric_dtype(kind) and not pd.api.types.is_bool_dtype(kind)
    elif slot.type == "boolean":
        ok = pd.api.types.is_bool_dtype(kind)
    else:
        ok = True
    return [] if ok else [f"{where}: expected {slot.type} values, found dtype {kind}"]


def _uns_problems(value: Any, where: str, slot: Slot) -> list[str]:
    values = list(np.ravel(value)) if slot.multiple else [value]
    if slot.multiple and np.ndim(value) != 1 and not isinstance(value, list):
        return [f"{where}: expected a list of {slot.type}, found {type(value).__name__}"]
    checks = {
        "string": lambda v: isinstance(v, str | np.str_),
        "integer": lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool),
        "double": lambda v: isinstance(v, int | float | np.integer | np.floating),
        "boolean": lambda v: isinstance(v, bool | np.bool_),
    }
    check = checks.get(slot.type, lambda v: True)
    if all(check(v) for v in values):
        return []
    return [f"{where}: expected {slot.type}{' list' if slot.multiple else ''}, found {value!r:.60}"]


def check_file(
    adata: ad.AnnData, contract: FileContract, path: str | Path, deferred: Collection[str] = ()
) -> ad.AnnData:
    """Validate ``adata`` (read from ``path``) against ``contract``; return it with fallbacks filled.

    Layers named in ``deferred`` are not looked for: they are made as the file is
    written and checked then (:func:`check_layer`). Raises
    :class:`ContractError` listing every problem, each naming the file and the slot.
    """
    problems: list[str] = []
    label = f"file '{path}' ({contract.id})"
    slots = contract.slots
    if slots.X is not None:
        if adata.X is None:
            if slots.X.required:
                problems.append(f"{label}: slot X is missing")
        else:
            problems += _matrix_problems(adata.X, f"{label}: X", slots.X)
    for slot in slots.layers:
        where = f"{label}: layers['{slot.name}']"
        if slot.name in deferred:
            continue
        if slot.name not in adata.layers:
            if slot.fallback == "X" and adata.X is not None:
                adata.layers[slot.name] = adata.X
            elif slot.required:
                fallback = " (nor .X as a fallback)" if slot.fallback else ""
                problems.append(f"{where} is missing{fallback}: {slot.description}".rstrip(": "))
                continue
            else:
                continue
        problems += _matrix_problems(adata.layers[slot.name], where, slot)
    for axis in FRAME_SLOTS:
        frame: pd.DataFrame = getattr(adata, axis)
        for slot in getattr(slots, axis):
            where = f"{label}: {axis}['{slot.name}']"
            if slot.name not in frame.columns:
                if slot.required:
                    problems.append(f"{where} is missing: {slot.description}".rstrip(": "))
                continue
            problems += _column_problems(frame[slot.name], where, slot)
    for axis in ("obsm", "obsp"):  # anndata itself checks that their rows (and obsp columns) are cells
        for slot in getattr(slots, axis):
            where = f"{label}: {axis}['{slot.name}']"
            if slot.name not in getattr(adata, axis):
                if slot.required:
                    problems.append(f"{where} is missing: {slot.description}".rstrip(": "))
                continue
            problems += _matrix_problems(getattr(adata, axis)[slot.name], where, slot)
    for slot in slots.uns:
        where = f"{label}: uns['{slot.name}']"
        if slot.name not in adata.uns:
            if slot.required:
                problems.append(f"{where} is missing: {slot.description}".rstrip(": "))
            continue
        problems += _uns_problems(adata.uns[slot.name], where, slot)
    if problems:
        raise ContractError("\n".join(problems))
    return adata


def check_layer(matrix: Any, name: str, contract: FileContract, path: str | Path) -> None:
    """Validate layer ``name`` of a file being written to ``path`` against ``contract``."""
    slot = next((s for s in contract.slots.layers if s.name == name), None)
    where = f"file '{path}' ({contract.id}): layers['{name}']"
    if slot is not None and (problems := _matrix_problems(matrix, where, slot)):
        raise ContractError("\n".join(problems))


def score_values(score: ad.AnnData, metric_names: Collection[str], path: str | Path) -> dict[str, float]:
    """The ``{metric id: value}`` of a score file (``<task>/score``) whose metric component
    declares ``metric_names`` (its spec's ``info.metrics``).

    The contract checks the types; this checks what types cannot: one value per id,
    no id twice, and exactly the declared ids (a metric that does not apply writes
    NaN and says so in ``uns['not_applicable']``), so no value is dropped or misread.
    Raises :class:`ContractError` naming the file.
    """
    if missing := [key for key in ("metric_ids", "metric_values") if key not in score.uns]:
        raise ContractError(f"file '{path}': not a score file (no uns{missing})")
    ids = [str(name) for name in np.ravel(score.uns["metric_ids"])]
    try:
        values = [float(value) for value in np.ravel(score.uns["metric_values"])]
    except (TypeError, ValueError) as exc:
        raise ContractError(f"file '{path}': uns['metric_values']: expected numbers ({exc})") from exc
    where = f"file '{path}': uns['metric_ids']"
    problems = []
    if len(ids) != len(values):
        problems.append(f"{where}: {len(ids)} ids but {len(values)} uns['metric_values']")
    if twice := sorted({name for name in ids if ids.count(name) > 1}):
        problems.append(f"{where}: {twice} given more than once")
    if set(ids) != set(metric_names):
        problems.append(
            f"{where}: expected the component's metrics {sorted(metric_names)}, found {sorted(set(ids))}"
        )
    if problems:
        raise ContractError("\n".join(problems))
    return dict(zip(ids, values, strict=True))

"""Options of a user's own dataset (``scmib run --data``), from the command line or a datasets YAML.

A dataset is one ``.h5mu`` (MuData: the RNA and the second modality are two of
its modalities), a pair of ``.h5ad`` files (GEX and ADT or ATAC of the same
cells), or one ``.h5ad`` whose second modality is an ``obsm`` entry. A YAML
lists several::

    datasets:
      - path: pbmc_teaseq.h5mu
        id: teaseq_pbmc
        cell_type_key: celltype_l1
      - path: kidney_rna.h5ad
        mod2_path: kidney_atac.h5ad
        organism: mouse
        gene_symbols_key: gene_short_name

Relative paths in a YAML are relative to the YAML's folder. Every key left
out is guessed from the file, and the guess is printed (see
:mod:`scmib.data.user`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError, field_validator, model_validator

from scmib.errors import ScmibError
from scmib.spec import Strict, check_name

#: File endings of data files (anything else given to ``--data`` must be a datasets YAML).
DATA_SUFFIXES = (".h5mu", ".h5ad")


class DataOptions(Strict):
    """One user dataset: its file(s), its id and the keys that name its parts (None: guess)."""

    path: str
    mod2_path: str | None = None
    id: str | None = None
    name: str | None = None
    rna_key: str | None = None
    mod2_key: str | None = None
    mod2_modality: Literal["ADT", "ATAC"] | None = None
    batch_key: str | None = None
    cell_type_key: str | None = None
    split_key: str | None = None
    organism: Literal["human", "mouse"] | None = None
    counts_layer: str | None = None
    mod2_counts_layer: str | None = None
    gene_symbols_key: str | None = None
    min_cells_per_peak: int | None = None
    lineage: list[str] | None = None
    pseudotime_key: str | None = None

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "dataset id")

    @model_validator(mode="after")
    def _pair_of_h5ad(self) -> DataOptions:
        if self.mod2_path is not None and not (
            self.path.endswith(".h5ad") and self.mod2_path.endswith(".h5ad")
        ):
            raise ValueError("path and mod2_path must both be .h5ad files (one per modality)")
        if self.mod2_path is not None and Path(self.path).resolve() == Path(self.mod2_path).resolve():
            raise ValueError(f"path and mod2_path are one file ({self.path}); give one file per modality")
        return self

    @property
    def dataset_id(self) -> str:
        """``id``, else the file's name in lower case with anything but letters and digits as ``_``."""
        if self.id:
            return self.id
        stem = Path(self.path).name
        for suffix in DATA_SUFFIXES:
            stem = stem.removesuffix(suffix)
        cleaned = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
        return cleaned if cleaned and cleaned[0].isalpha() else f"data_{cleaned}"

    def loader_args(self) -> dict[str, Any]:
        """The generic loader's arguments (``input``, ``input_mod2``, ``dataset_id``, the keys)."""
        args: dict[str, Any] = {"input": self.path, "dataset_id": self.dataset_id}
        if self.mod2_path:
            args["input_mod2"] = self.mod2_path
        for key, value in self.model_dump(exclude={"path", "mod2_path", "id"}).items():
            if value is not None:
                # A lineage travels as JSON: cell-type names may hold commas.
                args[key] = json.dumps(value) if key == "lineage" else value
        return args


def _resolve(path: str, folder: Path) -> str:
    # Absolute, but not through symbolic links: the dataset id comes from the name the user gave.
    resolved = Path(os.path.abspath(folder / Path(path).expanduser()))
    if not resolved.is_file():
        raise ScmibError(f"data file '{path}' does not exist (looked for {resolved})")
    if not resolved.name.endswith(DATA_SUFFIXES):
        raise ScmibError(f"data file '{path}': expected a .h5mu or .h5ad file")
    return str(resolved)


def _options(values: dict[str, Any], where: str) -> DataOptions:
    try:
        return DataOptions(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
        raise ScmibError(f"{where}: {problems}") from exc


def data_options(data: list[str], overrides: dict[str, Any] | None = None) -> list[DataOptions]:
    """The datasets named by ``--data``: one datasets YAML, or one or two data files.

    ``overrides`` (the command line's ``--batch_key`` and friends) apply to a
    dataset given as files; with a YAML they are an error (say them in the YAML).
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if len(data) == 1 and data[0].endswith((".yaml", ".yml")):
        if overrides:
            raise ScmibError(f"options {sorted(overrides)} go into {data[0]}, one entry per dataset")
        yaml_path = Path(data[0]).expanduser().resolve()
        if not yaml_path.is_file():
            raise ScmibError(f"datasets file '{data[0]}' does not exist")
        content = yaml.safe_load(yaml_path.read_text()) or {}
        entries = content.get("datasets") if isinstance(content, dict) else content
        if not isinstance(entries, list) or not entries:
            raise ScmibError(f"{yaml_path}: expected 'datasets:' followed by a list of datasets")
        options = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "path" not in entry:
                raise ScmibError(f"{yaml_path}: datasets[{i}] needs at least 'path'")
            entry = {**entry, "path": _resolve(str(entry["path"]), yaml_path.parent)}
            if entry.get("mod2_path"):
                entry["mod2_path"] = _resolve(str(entry["mod2_path"]), yaml_path.parent)
            options.append(_options(entry, f"{yaml_path}: datasets[{i}]"))
    elif 1 <= len(data) <= 2:
        paths = [_resolve(p, Path.cwd()) for p in data]
        entry = {"path": paths[0], "mod2_path": paths[1] if len(paths) == 2 else None, **overrides}
        options = [_options(entry, "--data")]
    else:
        raise ScmibError(
            "--data takes one .h5mu or .h5ad file, two .h5ad files (one per modality) or one datasets YAML"
        )
    ids = [o.dataset_id for o in options]
    if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
        raise ScmibError(f"dataset ids must differ; give each an 'id' ({duplicates} appear twice)")
    return options

"""Every filter a loader applies, said aloud and kept with the data.

Nothing is dropped silently: a loader records each filter (what it removed,
of how many, and why) in a :class:`FilterLog`, which prints one line per
filter as it goes (the job's log) and is stored in the common dataset's
``uns["filters"]`` (column-wise, so it survives ``.h5ad``) for the results and
the report. Removing more than half of a modality is also a warning.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Removing more than this share of cells or features is a warning in the log and the report.
WARN_SHARE = 0.5


@dataclass
class FilterLog:
    """The filters of one dataset, in the order they ran."""

    steps: list[dict[str, Any]] = field(default_factory=list)

    def record(self, what: str, before: int, removed: int, why: str) -> None:
        """Note that ``removed`` of ``before`` ``what`` (e.g. "ATAC peaks") were dropped because ``why``."""
        step = {"what": what, "why": why, "before": int(before), "removed": int(removed)}
        self.steps.append(step)
        line = f"filter: {_said(step)}"
        print(f"WARNING: {line}: more than half of them" if _too_many(step) else line, file=sys.stderr)

    @property
    def warnings(self) -> list[str]:
        return [_said(step) for step in self.steps if _too_many(step)]

    def to_uns(self) -> dict[str, list]:
        """Column-wise (``{"what": [...], "why": [...], "before": [...], "removed": [...]}``) for ``uns``."""
        return {key: [step[key] for step in self.steps] for key in ("what", "why", "before", "removed")}


def _said(step: dict[str, Any]) -> str:
    return f"removed {step['removed']:,} of {step['before']:,} {step['what']} ({step['why']})"


def _too_many(step: dict[str, Any]) -> bool:
    return bool(step["before"]) and step["removed"] / step["before"] > WARN_SHARE


def filters_from_uns(uns: dict) -> list[dict[str, Any]]:
    """The filter steps stored by :meth:`FilterLog.to_uns` (an empty list when there are none)."""
    columns = uns.get("filters")
    if not columns or "what" not in columns:
        return []
    whats = list(columns["what"])
    return [
        {
            "what": str(whats[i]),
            "why": str(columns["why"][i]),
            "before": int(columns["before"][i]),
            "removed": int(columns["removed"][i]),
        }
        for i in range(len(whats))
    ]


def read_filters(path: str | Path) -> list[dict[str, Any]]:
    """The filter steps stored in a common-dataset file (read without loading its matrices)."""
    import h5py
    from anndata.io import read_elem

    path = Path(path)
    if not path.is_file():
        return []
    with h5py.File(path, "r") as handle:
        node = handle.get("uns/filters")
        return filters_from_uns({"filters": read_elem(node)}) if node is not None else []

"""Checks and alignment shared by metric components."""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import scipy.sparse as sp

from scmib.errors import ContractError
from scmib.metrics.contributions import Contributions, attach


def name_order(names: np.ndarray, expected: np.ndarray) -> np.ndarray | None:
    """Positions that put ``names`` in the order of ``expected`` when they are a rearrangement of
    it (unique, the same set, another order); None otherwise (in order already, or other names)."""
    if len(names) != len(expected) or np.array_equal(names, expected):
        return None
    known = set(names)
    if len(known) == len(names) and known == set(expected):
        index = {name: i for i, name in enumerate(names)}
        return np.array([index[name] for name in expected])
    return None


def reorder(names: np.ndarray, expected: np.ndarray, axis: str, path: str) -> np.ndarray | None:
    """Positions that put ``names`` in the order of ``expected``; None if already in order.
    Raises :class:`ContractError` naming ``path`` when they are other names."""
    order = name_order(names, expected)
    if order is not None or np.array_equal(names, expected):
        return order
    known = set(names)
    missing = [n for n in expected if n not in known][:3]
    raise ContractError(
        f"prediction '{path}': {axis} names differ from the solution's (e.g. missing {missing})"
    )


def aligned_layers(
    prediction: ad.AnnData, solution: ad.AnnData, path: str, layer: str = "normalized"
) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``(solution, prediction)`` values with the prediction's rows and columns in the
    solution's order. Raises :class:`ContractError` naming ``path`` on a shape or name mismatch."""
    if prediction.shape != solution.shape:
        raise ContractError(
            f"prediction '{path}': shape {prediction.shape}, expected the solution's {solution.shape}"
        )
    rows = reorder(prediction.obs_names.to_numpy(), solution.obs_names.to_numpy(), "obs", path)
    cols = reorder(prediction.var_names.to_numpy(), solution.var_names.to_numpy(), "var", path)
    values = prediction.layers[layer]
    values = values.toarray() if sp.issparse(values) else np.asarray(values)
    if rows is not None:
        values = values[rows]
    if cols is not None:
        values = values[:, cols]
    truth = solution.layers[layer]
    truth = truth.toarray() if sp.issparse(truth) else np.asarray(truth)
    return truth.astype(np.float64), values.astype(np.float64)


def score_file(
    prediction: ad.AnnData,
    values: dict[str, float],
    not_applicable: dict[str, str] | None = None,
    contributions: dict[str, Contributions] | None = None,
    cells: Sequence[str] | None = None,
) -> ad.AnnData:
    """A score file (contract ``<task>/score``) for the metric ``values`` of one prediction.

    ``not_applicable`` maps metric ids that do not apply to this dataset (one
    batch: nothing to mix) to the reason; their values are NaN and the results
    table marks them ``not_applicable`` rather than a NaN that succeeded.
    ``contributions`` (by metric id) are the per-cell forms of metrics that have one, over
    ``cells`` (the solution's cell names, in order); see :mod:`scmib.metrics.contributions`.
    """
    not_applicable = not_applicable or {}
    values = {**values, **{name: np.nan for name in not_applicable}}
    out = ad.AnnData()
    out.uns.update(
        dataset_id=str(prediction.uns["dataset_id"]),
        method_id=str(prediction.uns["method_id"]),
        metric_ids=list(values),
        metric_values=[float(v) for v in values.values()],
    )
    if not_applicable:
        out.uns["not_applicable"] = dict(not_applicable)
    if contributions:
        if cells is None:
            raise ValueError("contributions need the names of the cells they are over")
        out = attach(out, cells, contributions, values)
    return out

"""``ti_cons_batch``: does diffusion pseudotime on the embedding keep the given trajectory order?

scib's ``trajectory_conservation`` with ``batch_key``: on the cells that have a
given pseudotime, take the largest connected part of the embedding's kNN graph
(restricted to those cells), root diffusion pseudotime at a cell of the type
with the lowest mean given pseudotime, chosen by votes over the first three
diffusion components, and report ``(mean Spearman over batches + 1) / 2``.
Cells outside the largest part get pseudotime 0, as in scib.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy.sparse.csgraph import connected_components

#: Diffusion components that vote for the root cell (scib's ``dpt_dim``).
ROOT_VOTE_COMPONENTS = 3


def trajectory_columns(obs: pd.DataFrame) -> tuple[str, str] | None:
    """A solution's two trajectory orders: ``pseudotime_order_GEX`` and the other modality's
    (``pseudotime_order_ADT`` or ``_ATAC``); None when either is missing."""
    mod2 = next((f"pseudotime_order_{m}" for m in ("ADT", "ATAC") if f"pseudotime_order_{m}" in obs), None)
    return ("pseudotime_order_GEX", mod2) if mod2 and "pseudotime_order_GEX" in obs else None


def _root(graph: ad.AnnData, start: np.ndarray) -> int | None:
    """Index (within ``graph``) of the root cell among the ``start`` cells, by scib's vote."""
    sc.tl.diffmap(graph)
    votes = np.zeros(start.sum())
    components = graph.obsm["X_diffmap"]
    for dim in range(ROOT_VOTE_COMPONENTS):
        values = components[start, dim]
        choose = np.argmin if values.mean() < components[:, dim].mean() else np.argmax
        votes[choose(values)] += 1
    return int(np.flatnonzero(start)[np.argmax(votes)])


def trajectory_conservation(
    graph: ad.AnnData, pseudotime: np.ndarray, labels: np.ndarray, batches: np.ndarray
) -> float:
    """Per-batch trajectory conservation of the embedding whose kNN graph is ``graph``.

    ``pseudotime`` is the given order (NaN off the trajectory); ``labels`` the
    cell types; ``batches`` the batches. Returns 0 when no start-type cell lies
    in the largest connected part (scib's "no root cell").
    """
    pseudotime = np.asarray(pseudotime, dtype=np.float64)
    on_path = ~np.isnan(pseudotime)
    sub = graph[on_path].copy()
    given = pd.Series(pseudotime[on_path])
    labels, batches = np.asarray(labels).astype(str)[on_path], np.asarray(batches).astype(str)[on_path]
    start_type = given.groupby(labels).mean().idxmin()

    _, parts = connected_components(sub.obsp["connectivities"], directed=False)
    largest = parts == np.bincount(parts).argmax()
    if not np.any(labels[largest] == start_type):
        # A plain 0 would read as a trajectory lost; say it is scib's rule (printed in the job's log).
        print(
            f"trajectory conservation: none of the {int((labels == start_type).sum())} {start_type} cells "
            f"(the trajectory's start) is in the largest connected part of the embedding's graph "
            f"({int(largest.sum())} of the {len(labels)} cells on the trajectory): 0, as scib scores it"
        )
        return 0.0
    core = sub[largest].copy()
    core.uns["iroot"] = _root(core, labels[largest] == start_type)
    sc.tl.dpt(core)
    after = np.zeros(on_path.sum())
    dpt = core.obs["dpt_pseudotime"].to_numpy(dtype=np.float64)
    dpt[dpt > 1] = 0  # scib: unreachable cells (infinite pseudotime) count 0
    after[largest] = np.nan_to_num(dpt, nan=0.0)

    correlations = [
        given[batches == batch].corr(
            pd.Series(after[batches == batch], index=given.index[batches == batch]), method="spearman"
        )
        for batch in pd.unique(batches)
    ]
    return float((np.nanmean(correlations) + 1) / 2) if not np.all(np.isnan(correlations)) else float("nan")

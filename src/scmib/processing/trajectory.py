"""Diffusion pseudotime on an annotated lineage, for datasets that ship none.

The organisers gave each NeurIPS cell on the erythroid trajectory a pseudotime
per modality (``pseudotime_order_GEX`` / ``_ADT`` / ``_ATAC``, in [0, 1], NaN
elsewhere). For other data the processor rebuilds that once: it takes the cells
of the first lineage below whose cell types the dataset has, reduces each
modality on all cells (GEX and ADT: PCA of the normalised values; ATAC: LSI of
the counts without its depth component), builds scanpy's 15-neighbour graph of
the lineage cells in that reduction and runs diffusion
pseudotime rooted at an earliest-type cell at the far end of the diffusion
component that best separates the earliest from the latest type. Cells
outside the lineage get NaN.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc

from scmib.methods.embedding import modality_reduction
from scmib.metrics.embedding.graph import knn_graph

#: Lineages as ordered cell-type names (earliest first); the first one a dataset has is used.
LINEAGES: dict[str, tuple[str, ...]] = {
    # NeurIPS 2021 BMMC annotation (the organisers' own trajectory).
    "erythroid_neurips": (
        "HSC",
        "MK/E prog",
        "Proerythroblast",
        "Erythroblast",
        "Normoblast",
        "Reticulocyte",
    ),
    # Triana et al. 2021 bone marrow annotation.
    "erythroid_triana": (
        "HSCs & MPPs",
        "Erythro-myeloid progenitors",
        "Early erythroid progenitor",
        "Late erythroid progenitor",
    ),
    # Mouse cortex (BICCN SNARE-seq2 clusters): OPC -> intermediate -> mature oligodendrocytes.
    "oligodendrocyte_mop": ("OPC", "OliI", "OliM"),
}
MIN_LINEAGE_CELLS = 30
N_NEIGHBORS = 15


def find_lineage(
    cell_types: pd.Series, lineages: dict[str, tuple[str, ...]] | None = None
) -> tuple[str, tuple[str, ...]] | None:
    """The first of ``lineages`` (default :data:`LINEAGES`) with at least two of its types and
    :data:`MIN_LINEAGE_CELLS` cells."""
    counts = cell_types.astype(str).value_counts()
    for name, types in (lineages or LINEAGES).items():
        present = tuple(t for t in types if t in counts.index)
        if len(present) >= 2 and counts[list(present)].sum() >= MIN_LINEAGE_CELLS:
            return name, present
    return None


def diffusion_pseudotime(embedding: np.ndarray, stage: np.ndarray, seed: int = 0) -> np.ndarray:
    """Diffusion pseudotime in [0, 1] of cells embedded as ``embedding``; NaN where unreachable.

    ``stage`` is each cell's position on the lineage (0 = earliest type). The
    root is an earliest-type cell at the far end of the diffusion component
    (of the first five) that best separates the earliest from the latest type,
    so an outlying group of cells cannot take the first component.
    """
    adata = knn_graph(embedding, n_neighbors=min(N_NEIGHBORS, len(embedding) - 1), seed=seed)
    sc.tl.diffmap(adata, random_state=seed)  # 15 components, as dpt expects
    components = adata.obsm["X_diffmap"][:, 1:6]  # component 0 is the trivial one
    early, late = stage == 0, stage == stage.max()
    gap = components[early].mean(axis=0) - components[late].mean(axis=0)
    best = int(np.argmax(np.abs(gap) / (components.std(axis=0) + 1e-12)))
    candidates = np.flatnonzero(early)
    values = components[candidates, best]
    adata.uns["iroot"] = int(candidates[np.argmin(values) if gap[best] < 0 else np.argmax(values)])
    sc.tl.dpt(adata)
    pseudotime = adata.obs["dpt_pseudotime"].to_numpy(dtype=np.float64)
    pseudotime[~np.isfinite(pseudotime)] = np.nan
    return pseudotime


def lineage_pseudotime(
    modalities: dict[str, ad.AnnData],
    cell_types: pd.Series,
    seed: int = 0,
    n_components: int = 30,
    lineages: dict[str, tuple[str, ...]] | None = None,
) -> pd.DataFrame | None:
    """``pseudotime_order_<modality>`` columns for every cell (NaN off the lineage), or None.

    ``modalities`` maps ``GEX``/``ADT``/``ATAC`` to files of the same cells with
    ``layers["normalized"]`` (and ``layers["counts"]`` for ATAC). ``lineages``
    (e.g. a user's own) replace :data:`LINEAGES`.
    """
    found = find_lineage(cell_types, lineages)
    if found is None:
        return None
    _, types = found
    labels = cell_types.astype(str).to_numpy()
    on_lineage = np.isin(labels, types)
    out = pd.DataFrame(index=cell_types.index)
    for modality, adata in modalities.items():
        # Reduce on every cell (better-informed components, above all for sparse ATAC); graph the lineage.
        embedding = modality_reduction(adata, n_components, seed)[on_lineage]
        column = np.full(len(labels), np.nan)
        stage = pd.Categorical(labels[on_lineage], categories=types).codes
        column[on_lineage] = diffusion_pseudotime(embedding, stage, seed)
        out[f"pseudotime_order_{modality}"] = column
    return out

"""Build the common dataset format: one AnnData per modality, same cells, same order.

See the contracts ``datasets/rna`` and ``datasets/mod2`` (``scmib/api/datasets``).
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scmib.data import normalize
from scmib.data.filters import FilterLog


@dataclass(frozen=True)
class DatasetMeta:
    """What the ``uns`` of a common dataset says about where it came from."""

    dataset_id: str
    dataset_name: str
    organism: str
    source: str
    reference: str


def as_counts(matrix) -> sp.csr_matrix:
    """Counts as CSR float32 with no stored zeros (the common format's ``layers["counts"]``)."""
    counts = sp.csr_matrix(matrix, dtype=np.float32)
    counts.eliminate_zeros()
    return counts


def _clean_obs(obs: pd.DataFrame) -> pd.DataFrame:
    obs = obs.copy()
    for column in ("batch", "cell_type", "site", "donor"):
        if column in obs:
            # A missing value stays missing (never the category "nan").
            values = obs[column]
            obs[column] = pd.Categorical(values.astype(str).where(values.notna()))
    return obs


def drop_closed_peaks(
    counts: sp.csr_matrix,
    var: pd.DataFrame,
    min_cells: int,
    filters: FilterLog,
    cells: np.ndarray | None = None,
) -> tuple[sp.csr_matrix, pd.DataFrame]:
    """``(counts, var)`` without the ATAC peaks open in fewer than ``min_cells`` of ``cells``
    (a boolean mask of rows; default all), as the organisers filtered them; recorded in ``filters``."""
    open_peaks = normalize.peaks_open_in(counts if cells is None else counts[cells], min_cells)
    closed = int((~open_peaks).sum())
    filters.record("ATAC peaks", len(open_peaks), closed, f"open in fewer than {min_cells} cells")
    return counts[:, open_peaks], var.iloc[open_peaks]


def make_common(
    *,
    rna_counts,
    mod2_counts,
    obs: pd.DataFrame,
    rna_var: pd.DataFrame,
    mod2_var: pd.DataFrame,
    mod2_modality: str,
    meta: DatasetMeta,
    size_factors: np.ndarray | None = None,
    min_cells_per_peak: int | None = normalize.MIN_CELLS_PER_PEAK,
    filters: FilterLog | None = None,
) -> tuple[ad.AnnData, ad.AnnData]:
    """The ``(rna, mod2)`` pair in the common format from raw counts (cells x features).

    ``obs`` must hold ``batch`` (and may hold ``cell_type``, ``site``, ``donor``,
    ``is_train`` and any other per-cell annotation). ``size_factors`` default to
    library-size factors. ATAC peaks open in fewer than ``min_cells_per_peak``
    cells are dropped, as the organisers did (None: the caller filtered them).
    Every filter (that one, and those in ``filters``, the loader's own) is
    printed and kept in ``uns["filters"]``.
    """
    if "batch" not in obs:
        raise ValueError("obs must have a 'batch' column")
    if mod2_modality not in ("ADT", "ATAC"):
        raise ValueError(f"mod2_modality must be ADT or ATAC, not {mod2_modality!r}")
    rna_counts, mod2_counts = as_counts(rna_counts), as_counts(mod2_counts)
    filters = filters or FilterLog()
    if mod2_modality == "ATAC" and min_cells_per_peak is not None:
        mod2_counts, mod2_var = drop_closed_peaks(mod2_counts, mod2_var, min_cells_per_peak, filters)
    if size_factors is None:
        size_factors = normalize.library_size_factors(rna_counts)
    obs = _clean_obs(obs)
    obs["size_factors"] = np.asarray(size_factors, dtype=np.float64)

    rna = ad.AnnData(X=None, obs=obs, var=rna_var.assign(feature_types="GEX"))
    rna.layers["counts"] = rna_counts
    rna.layers["normalized"] = normalize.log_normalize(rna_counts, obs["size_factors"].to_numpy())
    mod2_norm = normalize.clr(mod2_counts) if mod2_modality == "ADT" else normalize.binarize(mod2_counts)
    mod2 = ad.AnnData(
        X=None,
        obs=obs.drop(columns=["size_factors"]),
        var=mod2_var.assign(feature_types=mod2_modality),
    )
    mod2.layers["counts"] = mod2_counts
    mod2.layers["normalized"] = mod2_norm
    rna.var_names_make_unique()
    mod2.var_names_make_unique()
    common_uns = {"dataset_id": meta.dataset_id, "organism": meta.organism, "filters": filters.to_uns()}
    rna.uns.update(
        common_uns,
        modality="GEX",
        dataset_name=meta.dataset_name,
        source=meta.source,
        reference=meta.reference,
    )
    mod2.uns.update(
        common_uns,
        modality=mod2_modality,
        dataset_name=meta.dataset_name,
        source=meta.source,
        reference=meta.reference,
    )
    return rna, mod2


def split_neurips_batch(batch: pd.Series) -> pd.DataFrame:
    """Site and donor from NeurIPS 2021 batch names (``s1d2`` -> site ``s1``, donor ``d2``)."""
    parts = batch.astype(str).str.extract(r"^(s\d+)(d\d+)$")
    if parts.isna().any().any():
        bad = batch[parts.isna().any(axis=1)].unique()[:5]
        raise ValueError(f"batch names not of the form s<site>d<donor>: {list(bad)}")
    return parts.set_axis(["site", "donor"], axis=1)

"""Make the joint-embedding task files (``mod1``, ``mod2``, ``solution``) from a common dataset."""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scmib.errors import NotApplicable
from scmib.metrics.embedding.cell_cycle import variance_before
from scmib.processing.cell_cycle import cell_cycle_scores
from scmib.processing.common import TaskFile, paired_modalities, task_subset
from scmib.processing.trajectory import lineage_pseudotime

#: Modalities of each pair (mod1 is always GEX, as in the competition).
PAIRS: dict[str, tuple[str, str]] = {"gex_adt": ("GEX", "ADT"), "gex_atac": ("GEX", "ATAC")}


@dataclass
class JointEmbeddingFiles:
    mod1: TaskFile
    mod2: TaskFile
    solution: ad.AnnData


def _given_pseudotime(obs: pd.DataFrame, modalities: tuple[str, str]) -> pd.DataFrame | None:
    columns = [f"pseudotime_order_{m}" for m in modalities]
    if all(c in obs and obs[c].notna().any() for c in columns):
        return obs[columns].astype(np.float64)
    return None


def make_joint_embedding(
    rna: ad.AnnData, mod2: ad.AnnData, pair: str, seed: int = 0, n_cells: int = 0
) -> JointEmbeddingFiles:
    """Task files of every cell: unlabelled ``mod1``/``mod2`` and the labelled ``solution``.

    The solution's ``X`` is the log-normalised GEX; ``obs`` holds batch, cell
    type, site (where known), the pseudotime of each modality on one trajectory
    (the source's own, else computed, see :mod:`scmib.processing.trajectory`)
    and S/G2M scores (see :mod:`scmib.processing.cell_cycle`; left out when too
    few cell-cycle genes were measured). ``n_cells`` > 0 keeps a seeded
    random subset of that many cells (for quick runs; the task is all cells).
    Raises :class:`NotApplicable` when the dataset lacks the pair's second
    modality or cell types.
    """
    first, second = PAIRS[pair]
    rna, mod2 = paired_modalities(rna, mod2, (first, second), pair)
    if "cell_type" not in rna.obs:
        raise NotApplicable("the metrics need cell types; the dataset has none (rna obs 'cell_type')")
    dataset_id = f"{rna.uns['dataset_id']}_{pair}"
    if 0 < n_cells < rna.n_obs:
        keep = np.sort(np.random.default_rng(seed).choice(rna.n_obs, size=n_cells, replace=False))
        rna, mod2 = rna[keep].copy(), mod2[keep].copy()
    cells = np.arange(rna.n_obs)
    mod1_file = task_subset(rna, cells, dataset_id=dataset_id, keep_labels=False)
    mod2_file = task_subset(mod2, cells, dataset_id=dataset_id, keep_labels=False)

    organism = rna.uns.get("organism", "unknown")
    obs = rna.obs[["batch", "cell_type"] + (["site"] if "site" in rna.obs else [])].copy()
    pseudotime = _given_pseudotime(rna.obs, (first, second))
    if pseudotime is None:
        lineage = rna.uns.get("lineage")  # a user's own (checked by the loader), else the known ones
        pseudotime = lineage_pseudotime(
            {first: rna, second: mod2},
            rna.obs["cell_type"],
            seed=seed,
            lineages={"user": tuple(str(t) for t in lineage)} if lineage is not None else None,
        )
    if pseudotime is not None:
        obs = obs.join(pseudotime)
    solution = ad.AnnData(
        X=sp.csr_matrix(rna.layers["normalized"]), obs=obs, var=rna.var[["feature_types"]].copy()
    )
    solution.uns = {"dataset_id": dataset_id, "organism": organism}
    if organism in ("human", "mouse"):
        scores = cell_cycle_scores(solution, obs["batch"], organism, rna.var.get("gene_symbol"))
        if scores is not None:
            solution.obs = solution.obs.join(scores)
            # cc_cons compares every embedding with this; it depends on the data only, so compute it once.
            before = variance_before(solution.X, obs["batch"].to_numpy(), scores.to_numpy())
            solution.uns["cc_batches"] = list(before)
            solution.uns["cc_variance_before"] = list(before.values())
    return JointEmbeddingFiles(mod1_file, mod2_file, solution)

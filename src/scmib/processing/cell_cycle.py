"""Cell-cycle scores from the Tirosh et al. 2016 S and G2/M gene lists.

The processor scores cells once, per batch, so ``cc_cons`` compares every
embedding with the same reference (scib recomputes them inside the metric).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc

#: Fewer measured genes than this per phase and the scores are mostly noise: no scores then.
MIN_GENES_PER_PHASE = 5


@cache
def tirosh_genes(organism: str) -> dict[str, list[str]]:
    """``{"S": [...], "G2M": [...]}`` gene symbols; mouse symbols are the human ones title-cased."""
    with resources.files("scmib").joinpath("genesets/tirosh2016_human.tsv").open() as handle:
        table = pd.read_csv(handle, sep="\t", comment="#")
    if organism == "mouse":
        table["gene"] = table["gene"].str.capitalize()
    elif organism != "human":
        raise ValueError(f"cell-cycle genes are known for human and mouse, not '{organism}'")
    return {phase: group["gene"].tolist() for phase, group in table.groupby("phase")}


def measured_cell_cycle_genes(var_names: pd.Index, organism: str) -> dict[str, list[str]] | None:
    """The S and G2M genes present in ``var_names``, or None when a phase has too few."""
    present = {phase: [g for g in genes if g in var_names] for phase, genes in tirosh_genes(organism).items()}
    if min(len(genes) for genes in present.values()) < MIN_GENES_PER_PHASE:
        return None
    return present


def cell_cycle_scores(
    gex: ad.AnnData, batches: pd.Series, organism: str, symbols: pd.Series | None = None
) -> pd.DataFrame | None:
    """``S_score`` and ``G2M_score`` per cell, scored within each batch by scanpy's method.

    ``gex.X`` is log-normalised expression. Genes are matched on ``symbols``
    (one per gene, e.g. the common format's ``var["gene_symbol"]`` where var
    names are Ensembl ids), else on ``var_names``. Returns None when fewer than
    :data:`MIN_GENES_PER_PHASE` genes of a phase were measured.
    """
    names = gex.var_names if symbols is None else pd.Index(np.asarray(symbols, dtype=str))
    genes = measured_cell_cycle_genes(names, organism)
    if genes is None:
        return None
    var = pd.DataFrame(index=ad.utils.make_index_unique(names.copy()))
    scores = pd.DataFrame(index=gex.obs_names, columns=["S_score", "G2M_score"], dtype=np.float64)
    for batch in pd.unique(batches.astype(str)):
        cells = (batches.astype(str) == batch).to_numpy()
        subset = ad.AnnData(X=gex.X[cells], obs=pd.DataFrame(index=gex.obs_names[cells]), var=var)
        sc.tl.score_genes_cell_cycle(subset, s_genes=genes["S"], g2m_genes=genes["G2M"], random_state=0)
        scores.loc[subset.obs_names] = subset.obs[["S_score", "G2M_score"]].to_numpy()
    return scores

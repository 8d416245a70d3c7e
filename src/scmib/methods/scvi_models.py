"""totalVI (CITE-seq) and MultiVI (Multiome) latent spaces from scvi-tools, on raw counts.

Both models take the counts of every cell with ``obs.batch`` as the batch
covariate and return the posterior mean of the latent space. scvi-tools is
imported inside the functions, so only the components that use it need it.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp


def _accelerator(device: str) -> str:
    import torch

    if device == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return "gpu" if device.startswith("cuda") else "cpu"


def variable_genes(gex: ad.AnnData, n_genes: int) -> np.ndarray:
    """Boolean mask of the ``n_genes`` most variable genes (scanpy's Seurat flavour, per batch)."""
    if gex.n_vars <= n_genes:
        return np.ones(gex.n_vars, dtype=bool)
    view = ad.AnnData(X=sp.csr_matrix(gex.layers["normalized"]), obs=gex.obs[["batch"]].copy())
    sc.pp.highly_variable_genes(view, n_top_genes=n_genes, batch_key="batch")
    return view.var["highly_variable"].to_numpy()


def _counts(adata: ad.AnnData) -> sp.csr_matrix:
    return sp.csr_matrix(adata.layers["counts"], dtype=np.float32)


def totalvi_latent(
    gex: ad.AnnData, adt: ad.AnnData, n_genes: int, n_latent: int, max_epochs: int, device: str, seed: int
) -> np.ndarray:
    """totalVI latent mean (cells x ``n_latent``) of GEX counts (variable genes) and ADT counts."""
    import scvi

    scvi.settings.seed = seed
    genes = variable_genes(gex, n_genes)
    adata = ad.AnnData(X=_counts(gex)[:, genes], obs=gex.obs[["batch"]].astype(str).copy())
    adata.obsm["protein_expression"] = _counts(adt).toarray()
    scvi.model.TOTALVI.setup_anndata(
        adata, batch_key="batch", protein_expression_obsm_key="protein_expression"
    )
    model = scvi.model.TOTALVI(adata, n_latent=n_latent)
    model.train(max_epochs=max_epochs, accelerator=_accelerator(device), early_stopping=True)
    return np.asarray(model.get_latent_representation())


def multivi_latent(
    gex: ad.AnnData, atac: ad.AnnData, n_genes: int, n_latent: int, max_epochs: int, device: str, seed: int
) -> np.ndarray:
    """MultiVI latent mean (cells x ``n_latent``) of GEX counts (variable genes) and ATAC peaks (paired)."""
    import scvi

    scvi.settings.seed = seed
    genes = variable_genes(gex, n_genes)
    from mudata import MuData

    peaks = _counts(atac)
    peaks.data[:] = 1.0  # MultiVI models accessibility as binary
    obs = gex.obs[["batch"]].astype(str).copy()
    rna = ad.AnnData(
        X=_counts(gex)[:, genes], obs=obs.copy(), var=gex.var[[]].iloc[np.flatnonzero(genes)].copy()
    )
    chromatin = ad.AnnData(X=peaks, obs=obs.copy(), var=atac.var[[]].copy())
    # scvi-tools 1.4 reads paired Multiome data from a MuData (its AnnData setup only warns).
    data = MuData({"rna": rna, "atac": chromatin})
    scvi.model.MULTIVI.setup_mudata(
        data, batch_key="batch", modalities={"rna_layer": "rna", "atac_layer": "atac", "batch_key": "rna"}
    )
    model = scvi.model.MULTIVI(data, n_genes=rna.n_vars, n_regions=chromatin.n_vars, n_latent=n_latent)
    model.train(max_epochs=max_epochs, accelerator=_accelerator(device), early_stopping=True)
    return np.asarray(model.get_latent_representation())

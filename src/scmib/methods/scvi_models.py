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

from scmib.data.filters import FilterLog
from scmib.data.normalize import peaks_open_in
from scmib.errors import ScmibError


def _accelerator(device: str) -> str:
    import torch

    if device == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return "gpu" if device.startswith("cuda") else "cpu"


def use_fused_adam(model) -> None:
    """Train ``model`` (an scvi-tools model) with torch's fused Adam/AdamW kernel on the CPU and CUDA.

    scvi-tools creates ``torch.optim.Adam(W)(params, lr, eps, weight_decay)``, which on the CPU
    updates each parameter in a Python loop of element-wise kernels. MultiVI's peak encoder and
    decoder are wide (SNARE-seq2: 13,619 peaks), and there the fused kernel, the same update
    (same learning rate, eps and weight decay) in one pass over each tensor, trains 1.14x faster,
    latent spaces within 3e-4 (benchmarks/scvi_optimizer.py). totalVI's narrower layers gain
    nothing, so it keeps scvi-tools' optimiser. The adversarial classifier's small optimiser is
    left as scvi-tools makes it.
    """
    from scmib.methods.torch_models import fused_kernel_for

    plan = model._training_plan_cls  # scvi-tools 1.4 (pinned) creates its optimiser here

    class FusedAdamPlan(plan):
        def _optimizer_creator_fn(self, optimizer_cls):
            def create(params):
                params = list(params)
                fused = fused_kernel_for(params)
                return optimizer_cls(
                    params, lr=self.lr, eps=self.eps, weight_decay=self.weight_decay, fused=fused
                )

            return create

    FusedAdamPlan.__name__ = f"FusedAdam{plan.__name__}"
    model._training_plan_cls = FusedAdamPlan


def epoch_log(model: str, max_epochs: int):
    """A Lightning callback that writes one :class:`~scmib.methods.torch_models.EpochLog` line per
    epoch to the job's log: the training loss, the validation loss where scvi-tools computed one,
    and the epoch's seconds. scvi-tools' progress bar, which it replaces (``enable_progress_bar=False``),
    redraws itself with carriage returns, so a log held one line of several kilobytes per run and
    no validation loss."""
    from lightning.pytorch.callbacks import Callback

    from scmib.methods.torch_models import EpochLog

    class EpochLogCallback(Callback):
        def __init__(self) -> None:
            self.lines = EpochLog(model, max_epochs)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            metrics = trainer.callback_metrics
            losses = {key: float(metrics[key]) for key in ("train_loss", "validation_loss") if key in metrics}
            self.lines(trainer.current_epoch, **losses)

    return EpochLogCallback()


def train(model, name: str, max_epochs: int, device: str) -> None:
    """Train an scvi-tools ``model`` with early stopping (scvi-tools' default criterion), logging
    each epoch with :func:`epoch_log` instead of a progress bar."""
    model.train(
        max_epochs=max_epochs,
        accelerator=_accelerator(device),
        early_stopping=True,
        enable_progress_bar=False,
        callbacks=[epoch_log(name, max_epochs)],
    )


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
    train(model, "totalVI", max_epochs, device)
    return np.asarray(model.get_latent_representation())


def frequent_features(
    counts: sp.csr_matrix, min_cell_fraction: float, what: str, filters: FilterLog
) -> np.ndarray:
    """Boolean mask of the columns of ``counts`` (cells x features) non-zero in at least
    ``int(n_cells * min_cell_fraction)`` cells, as the MultiVI tutorial's ``sc.pp.filter_genes``
    (the loaders' peak filter, :func:`scmib.data.normalize.peaks_open_in`); what it removes is
    recorded in ``filters`` (and printed)."""
    min_cells = int(counts.shape[0] * min_cell_fraction)
    keep = peaks_open_in(counts, min_cells)
    why = f"in fewer than {min_cells:,} cells: {min_cell_fraction:g} of them, as in MultiVI's tutorial"
    filters.record(what, len(keep), int((~keep).sum()), why)
    if not keep.any():
        raise ScmibError(f"MultiVI: no {what} in {min_cells:,} cells or more; lower min_cell_fraction")
    return keep


def multivi_latent(
    gex: ad.AnnData,
    atac: ad.AnnData,
    n_genes: int,
    n_latent: int,
    max_epochs: int,
    device: str,
    seed: int,
    min_cell_fraction: float = 0.0,
) -> np.ndarray:
    """MultiVI latent mean (cells x ``n_latent``) of GEX counts (variable genes) and ATAC peaks (paired).

    With ``min_cell_fraction`` > 0, genes and peaks measured in fewer than that share of the cells
    are left out first, as scvi-tools' MultiVI tutorial does with 0.01 (each removal is printed to
    the job's log). That makes MultiVI several times cheaper, since most of its work is the peak
    encoder and decoder, but on sparse ATAC it loses cell types (README, Joint embedding); the
    default keeps every feature.
    """
    import scvi

    scvi.settings.seed = seed
    genes = np.flatnonzero(variable_genes(gex, n_genes))
    from mudata import MuData

    gene_counts = _counts(gex)[:, genes]
    peaks = _counts(atac)
    open_peaks = np.ones(peaks.shape[1], dtype=bool)
    if min_cell_fraction > 0:
        filters = FilterLog()
        frequent = frequent_features(gene_counts, min_cell_fraction, "variable genes", filters)
        gene_counts, genes = gene_counts[:, frequent], genes[frequent]
        open_peaks = frequent_features(peaks, min_cell_fraction, "ATAC peaks", filters)
        peaks = peaks[:, open_peaks]
    peaks.data[:] = 1.0  # MultiVI models accessibility as binary
    obs = gex.obs[["batch"]].astype(str).copy()
    rna = ad.AnnData(X=gene_counts, obs=obs.copy(), var=gex.var[[]].iloc[genes].copy())
    chromatin = ad.AnnData(X=peaks, obs=obs.copy(), var=atac.var[[]].iloc[np.flatnonzero(open_peaks)].copy())
    # scvi-tools 1.4 reads paired Multiome data from a MuData (its AnnData setup only warns).
    data = MuData({"rna": rna, "atac": chromatin})
    scvi.model.MULTIVI.setup_mudata(
        data, batch_key="batch", modalities={"rna_layer": "rna", "atac_layer": "atac", "batch_key": "rna"}
    )
    model = scvi.model.MULTIVI(data, n_genes=rna.n_vars, n_regions=chromatin.n_vars, n_latent=n_latent)
    use_fused_adam(model)
    train(model, "MultiVI", max_epochs, device)
    return np.asarray(model.get_latent_representation())

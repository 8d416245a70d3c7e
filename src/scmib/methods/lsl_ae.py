"""LSL_AE (Living Systems Lab, the Multiome online joint-embedding winner), as its code computes it.

From the organisers' topmethods repository (``src/joint_embedding/methods/lsl_ae``,
TensorFlow): the variable genes of ``mod1`` (scanpy's ``highly_variable_genes``
with the batch as ``batch_key``) and the ``mod2`` features non-zero in at least
3% of cells, unreduced; per modality input dropout 0.1 and a 64-unit ReLU layer
whose kernel ``W`` (inputs x 64) carries the penalty ``||W^T W - I||_F``
(weight 1); the two side by side into a linear 64-unit bottleneck (the
embedding), a 128-unit ReLU layer and one ReLU decoder per modality. The loss is
the sum of the two reconstruction MSEs and the penalties; Adam at 1e-4, batches
of 32, up to 600 epochs, the last 20% of the cells (in file order) for
validation and early stopping with patience 20 that keeps the last weights (as
Keras' ``EarlyStopping`` does by default).

LSL_AE densified both inputs; here they stay sparse (CSR float32) and only each
minibatch is made dense: at the competition's Multiome size the peaks open in 3%
of cells alone would take 16 GB dense.

Shapes: ``lsl_inputs`` returns cells x variable genes and cells x kept features;
``train_lsl_ae`` returns cells x 64.
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from scmib.data.filters import FilterLog
from scmib.errors import ScmibError
from scmib.methods.torch_models import (
    BestEpoch,
    EpochLog,
    keras_adam,
    keras_dense,
    seed_everything,
    shuffled_minibatches,
)


def lsl_inputs(
    gex: ad.AnnData, mod2: ad.AnnData, batches: pd.Series, min_cell_fraction: float, filters: FilterLog
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """LSL_AE's inputs from the normalised values (``layers["normalized"]``), CSR float32: the
    GEX of the variable genes, and the ``mod2`` features with a value above 0 in at least
    ``int(min_cell_fraction * n_cells)`` cells (scanpy's ``filter_genes``); what each selection
    left out is recorded in ``filters`` (and printed)."""
    # The gene names matter: scanpy's batched selection groups its per-batch tables by them.
    genes = ad.AnnData(
        X=gex.layers["normalized"],
        obs=pd.DataFrame({"batch": batches.to_numpy()}, index=gex.obs_names),
        var=pd.DataFrame(index=gex.var_names),
    )
    sc.pp.highly_variable_genes(genes, batch_key="batch", subset=True)
    why = "not variable (scanpy, by batch), as LSL_AE"
    filters.record("genes", gex.n_vars, gex.n_vars - genes.n_vars, why)
    second = ad.AnnData(X=mod2.layers["normalized"])
    min_cells = int(mod2.n_obs * min_cell_fraction)
    sc.pp.filter_genes(second, min_cells=min_cells)
    what = f"{mod2.uns.get('modality', 'mod2')} features"
    why = f"above 0 in fewer than {min_cells:,} cells, {min_cell_fraction:g} of them, as LSL_AE"
    filters.record(what, mod2.n_vars, mod2.n_vars - second.n_vars, why)
    if not genes.n_vars or not second.n_vars:
        raise ScmibError(f"LSL_AE: no variable genes or no {what} left; lower min_cell_fraction")
    return sp.csr_matrix(genes.X, dtype=np.float32), sp.csr_matrix(second.X, dtype=np.float32)


class LslAutoencoder(nn.Module):
    """Per-modality input dropout and 64-unit ReLU encoder, a linear bottleneck of both, a 128-unit
    ReLU layer and a ReLU decoder per modality."""

    def __init__(self, n_inputs: tuple[int, int], width: int = 64, n_latent: int = 64) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.1)
        self.encoders = nn.ModuleList([keras_dense(n, width) for n in n_inputs])
        self.bottleneck = nn.Linear(2 * width, n_latent)
        nn.init.uniform_(self.bottleneck.weight, -0.05, 0.05)  # Keras' 'uniform' initialiser
        nn.init.zeros_(self.bottleneck.bias)
        self.inverse = keras_dense(n_latent, 2 * width)
        self.decoders = nn.ModuleList([keras_dense(2 * width, n) for n in n_inputs])

    def encode(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        pairs = zip(self.encoders, (x1, x2), strict=True)
        hidden = [F.relu(encoder(self.dropout(x))) for encoder, x in pairs]
        return self.bottleneck(torch.cat(hidden, dim=1))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> list[torch.Tensor]:
        merged = F.relu(self.inverse(self.encode(x1, x2)))
        return [F.relu(decoder(merged)) for decoder in self.decoders]

    def orthogonality(self) -> torch.Tensor:
        """``sum ||W^T W - I||_F`` over the encoders' kernels ``W`` (inputs x 64; torch stores W^T)."""
        total = 0.0
        for encoder in self.encoders:
            gram = encoder.weight @ encoder.weight.T
            total = total + torch.linalg.matrix_norm(gram - torch.eye(len(gram), device=gram.device))
        return total


def lsl_loss(model: LslAutoencoder, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """The two reconstruction MSEs and the orthogonality penalties, as Keras sums them."""
    reconstructions = model(x1, x2)
    return F.mse_loss(reconstructions[0], x1) + F.mse_loss(reconstructions[1], x2) + model.orthogonality()


@dataclass
class LslConfig:
    max_epochs: int = 600
    patience: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-4
    validation_fraction: float = 0.2


#: Rows made dense at a time outside training (validation loss, the embedding).
_CHUNK = 4096


def _rows(inputs: tuple[sp.csr_matrix, sp.csr_matrix], ix: np.ndarray, device: torch.device):
    return [torch.as_tensor(m[ix].toarray(), device=device) for m in inputs]


def _validation_loss(model: LslAutoencoder, inputs, cells: np.ndarray, device: torch.device) -> float:
    """:func:`lsl_loss` of ``cells``, its squared errors summed a chunk of rows at a time."""
    squared = [0.0, 0.0]
    for start in range(0, len(cells), _CHUNK):
        x = _rows(inputs, cells[start : start + _CHUNK], device)
        for i, reconstruction in enumerate(model(*x)):
            squared[i] += float(((reconstruction - x[i]) ** 2).sum())
    means = [total / (len(cells) * m.shape[1]) for total, m in zip(squared, inputs, strict=True)]
    return sum(means) + float(model.orthogonality())


def train_lsl_ae(
    inputs: tuple[sp.csr_matrix, sp.csr_matrix], config: LslConfig, device: torch.device, seed: int
) -> np.ndarray:
    """Train LSL_AE on the two modalities' inputs (cells x features each, CSR) and return the
    bottleneck of every cell (cells x 64)."""
    seed_everything(seed)
    generator = np.random.default_rng(seed)
    n_cells = inputs[0].shape[0]
    model = LslAutoencoder((inputs[0].shape[1], inputs[1].shape[1])).to(device)
    # Keras' validation_split: the last cells, before any shuffling.
    n_train = int(n_cells * (1 - config.validation_fraction))
    valid = np.arange(n_train, n_cells)
    optimizer = keras_adam(model, config.learning_rate)
    log = EpochLog("LSL_AE", config.max_epochs)
    # Keras' EarlyStopping (restore_best_weights False): stop, keeping the last weights.
    best = BestEpoch(model, config.patience, min_delta=0.0, keep_weights=False)
    for epoch in range(config.max_epochs):
        model.train()
        total = 0.0
        for ix in shuffled_minibatches(n_train, config.batch_size, generator):
            loss = lsl_loss(model, *_rows(inputs, ix, device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(ix)
        model.eval()
        with torch.no_grad():
            valid_loss = _validation_loss(model, inputs, valid, device)
        log(epoch, loss=total / n_train, val_loss=valid_loss)
        if best.stop_after(epoch, valid_loss):
            break
    model.eval()
    with torch.no_grad():
        chunks = [np.arange(s, min(s + _CHUNK, n_cells)) for s in range(0, n_cells, _CHUNK)]
        return np.vstack([model.encode(*_rows(inputs, ix, device)).cpu().numpy() for ix in chunks])

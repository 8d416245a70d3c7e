"""Cajal (the ATAC->GEX winner of NeurIPS 2021's modality prediction), as its code computes it.

From the organisers' topmethods repository (``src/predict_modality/methods/cajal``,
TensorFlow), one network per direction:

- **Features of modality 1**: the top 100 markers of each cell type, ranked by
  scanpy's ``rank_genes_groups`` on the labelled cells: a t-test of binarised
  counts for ATAC, a Wilcoxon test for GEX after Cajal's preprocessing (counts
  per million and ``log1p``, cells with 200 to 4,000 detected genes, genes in at
  least 3 cells, counts per 10,000 and ``log1p`` again, scaling clipped at 10);
  for GEX->ADT also the genes of the measured proteins, for ADT->GEX every
  protein. GEX enters as ``log1p`` of counts per million, ATAC and ADT as the
  task's normalised values.
- **Count features**: each cell's total counts of modality 1 and its batch's
  median and standard deviation of them, each repeated 50 times (Cajal's way of
  weighting them); every column z-scored with the training cells' mean and SD.
- **Model**: input dropout (0.8 from GEX or ATAC to ATAC or GEX, 0.2 with ADT),
  ReLU layers of Cajal's tuned widths, a linear output clipped to the training
  targets' overall minimum and maximum; MSE, Keras' Adam (1e-3), batches of
  1,000, a fixed number of epochs (35-78) on every training cell.

Here, beside Cajal's code: the floor of 200 detected genes was set for the
competition's 13,953 (CITE) or 13,431 (Multiome) genes and scales with the
genes measured (at least 7 of a 422-gene panel: with 200, almost no cell of a
targeted panel would be ranked), the ceiling of 4,000 stays; markers are ranked
a chunk of genes at a time (the same scores in less memory); a cell type with
fewer than 2 ranked cells is not ranked (scanpy cannot test it); a column with
no spread in the training cells (a batch statistic when they are one batch) is
0 for every cell (Cajal's code divided by 0); the selected features keep the
file's order (Cajal's, a Python set's); targets stay sparse and each minibatch
is made dense (Cajal's dense GEX->ATAC targets would be 20 GB at competition
size); ADT->GEX, which reads every protein, needs no cell types.

Shapes: ``cajal_inputs`` returns cells x (markers + 150) for the training and
test cells; ``train_cajal`` returns test cells x target features.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from importlib import resources

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
    EpochLog,
    keras_adam,
    keras_dense,
    seed_everything,
    shuffled_minibatches,
)


@dataclass(frozen=True)
class CajalSettings:
    """One direction's network: input dropout, hidden widths and epochs."""

    input_dropout: float
    widths: tuple[int, ...]
    epochs: int


#: Cajal's tuned network per direction (modality 1, modality 2).
SETTINGS = {
    ("GEX", "ATAC"): CajalSettings(0.8, (500, 20, 110, 430, 310), 39),
    ("GEX", "ADT"): CajalSettings(0.2, (170, 300, 480, 330, 770), 35),
    ("ATAC", "GEX"): CajalSettings(0.8, (320, 360, 620, 440), 38),
    ("ADT", "GEX"): CajalSettings(0.2, (180, 140, 520), 78),
}
#: The competition's GEX genes by the other modality (CITE, Multiome), for which Cajal set its
#: detected-gene floor.
COMPETITION_GENES = {"ADT": 13_953, "ATAC": 13_431}
#: Times each count feature is repeated.
REPEATS = 50


def log_cpm(counts) -> sp.csr_matrix:
    """``log1p`` of counts per million (scanpy's ``normalize_per_cell(counts_per_cell_after=1e6)``,
    then ``log1p``), CSR float32 without stored zeros (its entries are the detected genes); a cell
    without counts stays 0."""
    counts = sp.csr_matrix(counts, dtype=np.float32, copy=True)
    counts.eliminate_zeros()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(1e6, totals, out=np.zeros_like(totals), where=totals > 0)
    values = sp.diags(scale.astype(np.float32)) @ counts
    values.data = np.log1p(values.data)
    return sp.csr_matrix(values)


#: Values (cells x features) ranked at a time. scanpy's tests copy their matrix several times,
#: dense for the scaled GEX: the competition's 70k cells x 13,953 genes at once need over 16 GB.
#: Each feature's scores depend on its own values only, so a chunk of features gives the same.
RANK_CHUNK_VALUES = 100_000_000


def _top_per_type(
    values: sp.spmatrix,
    names: pd.Index,
    cell_types: pd.Series,
    method: str,
    n_per_type: int,
    filters: FilterLog,
    scale: bool = False,
    chunk_values: int = RANK_CHUNK_VALUES,
) -> list[str]:
    """The ``n_per_type`` highest-scoring features of each cell type by scanpy's
    ``rank_genes_groups`` (after ``scale(max_value=10)`` with ``scale``) of ``values`` (cells x
    features), ranked a chunk of features at a time."""
    obs = pd.DataFrame({"cell_type": cell_types.astype(str).to_numpy()})
    sizes = obs["cell_type"].value_counts()
    groups = sorted(sizes.index[sizes >= 2])
    filters.record("cell types ranked", len(sizes), len(sizes) - len(groups), "fewer than 2 cells")
    if not groups:
        raise ScmibError("Cajal: no cell type has 2 cells left to rank markers by")
    values = sp.csc_matrix(values)
    step = max(1, chunk_values // max(1, values.shape[0]))
    tables = []
    for start in range(0, values.shape[1], step):
        chunk = ad.AnnData(
            values[:, start : start + step], obs=obs, var=pd.DataFrame(index=names[start : start + step])
        )
        if scale:
            sc.pp.scale(chunk, max_value=10)
        sc.tl.rank_genes_groups(chunk, "cell_type", groups=groups, method=method, use_raw=False)
        tables.append(sc.get.rank_genes_groups_df(chunk, group=groups)[["group", "names", "scores"]])
    table = pd.concat(tables).sort_values("scores", ascending=False, kind="stable")
    return sorted({str(name) for name in table.groupby("group", observed=True).head(n_per_type)["names"]})


def atac_markers(atac: ad.AnnData, cell_types: pd.Series, n_per_type: int, filters: FilterLog) -> list[str]:
    """Cajal's ``atac_de_analysis`` on ``atac.layers["counts"]``: a t-test of the binarised counts
    per cell type."""
    binary = sp.csr_matrix(atac.layers["counts"], dtype=np.float32, copy=True)
    binary.data = (binary.data > 0).astype(np.float32)
    return _top_per_type(binary, atac.var_names, cell_types, "t-test", n_per_type, filters)


def gex_markers(
    gex: ad.AnnData,
    cell_types: pd.Series,
    n_per_type: int,
    filters: FilterLog,
    competition_genes: int = COMPETITION_GENES["ADT"],
    chunk_values: int = RANK_CHUNK_VALUES,
) -> list[str]:
    """Cajal's ``gex_de_analysis`` on ``gex.layers["counts"]``: counts per million and ``log1p``;
    cells with 200 detected genes (a share of the ``competition_genes`` its code saw, of the genes
    measured), genes in 3 cells, cells with fewer than 4,000 detected genes; counts per 10,000
    and ``log1p``; scaled (max 10); Wilcoxon test per cell type."""
    values = log_cpm(gex.layers["counts"])
    # Cajal's floor of 200 detected genes is a share of the competition's genes; its ceiling of
    # 4,000 (doublets) stays as it is: no panel of fewer genes gives a basis to scale it.
    low = 200 * min(1.0, gex.n_vars / competition_genes)
    keep = np.diff(values.indptr) >= low
    why = f"with fewer than {low:.4g} detected genes (Cajal's 200 of {competition_genes:,})"
    filters.record("cells for GEX markers", len(keep), int((~keep).sum()), why)
    values, cell_types = values[keep], cell_types[keep]
    genes = np.diff(sp.csc_matrix(values).indptr) >= 3
    filters.record("genes for GEX markers", len(genes), int((~genes).sum()), "detected in fewer than 3 cells")
    values, names = values[:, genes], gex.var_names[genes]
    keep = np.diff(values.indptr) < 4000
    filters.record(
        "cells for GEX markers", len(keep), int((~keep).sum()), "with 4,000 detected genes or more"
    )
    values, cell_types = values[keep], cell_types[keep]
    # Cajal's highly_variable_genes call only annotates the genes: it changes no value ranked.
    normalized = ad.AnnData(sp.csr_matrix(values))
    sc.pp.normalize_total(normalized, target_sum=1e4)
    sc.pp.log1p(normalized)
    return _top_per_type(
        normalized.X,
        names,
        cell_types,
        "wilcoxon",
        n_per_type,
        filters,
        scale=True,
        chunk_values=chunk_values,
    )


def _name_key(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", name).upper()


def protein_genes(proteins: pd.Index, filters: FilterLog) -> list[str]:
    """The genes encoding ``proteins`` (``genesets/protein_genes.tsv``, names matched on their
    letters and digits); proteins not in that table are recorded in ``filters``."""
    with resources.files("scmib").joinpath("genesets/protein_genes.tsv").open() as handle:
        table = pd.read_csv(handle, sep="\t", comment="#")
    genes = {_name_key(p): g.split(",") for p, g in zip(table["protein"], table["genes"], strict=True)}
    known = [genes[_name_key(p)] for p in proteins if _name_key(p) in genes]
    filters.record(
        "proteins mapped to genes", len(proteins), len(proteins) - len(known), "not in protein_genes.tsv"
    )
    return sorted(set(itertools.chain.from_iterable(known)))


def input_features(
    train_mod1: ad.AnnData, mod2: ad.AnnData, direction: tuple[str, str], n_per_type: int, filters: FilterLog
) -> list[str]:
    """The features of modality 1 Cajal's network reads, in the file's order."""
    if direction[0] == "ADT":
        return list(train_mod1.var_names)
    cell_types = train_mod1.obs["cell_type"]
    if direction[0] == "ATAC":
        selected = set(atac_markers(train_mod1, cell_types, n_per_type, filters))
    else:
        genes = COMPETITION_GENES.get(direction[1], COMPETITION_GENES["ADT"])
        selected = set(gex_markers(train_mod1, cell_types, n_per_type, filters, genes))
        if direction[1] == "ADT":
            selected |= set(protein_genes(mod2.var_names, filters))
    features = [name for name in train_mod1.var_names if name in selected]
    if not features:
        raise ScmibError("Cajal: no marker feature of modality 1 found")
    return features


def count_features(counts, batches: pd.Series) -> np.ndarray:
    """Each cell's total counts, and the median and standard deviation (ddof 0) of the totals of
    its batch's cells in the same file, cells x 3."""
    totals = np.asarray(sp.csr_matrix(counts).sum(axis=1), dtype=np.float64).ravel()
    grouped = pd.Series(totals).groupby(batches.astype(str).to_numpy())
    return np.column_stack([totals, grouped.transform("median"), grouped.transform("std", ddof=0)])


def cajal_inputs(
    train_mod1: ad.AnnData, test_mod1: ad.AnnData, features: list[str], gex: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The network's inputs of the training and test cells (float32): the ``features`` (``log1p``
    of counts per million for GEX, ``layers["normalized"]`` otherwise), then each count feature
    50 times, every column z-scored with the training cells' mean and SD (ddof 0; a column
    with an SD of 0 is 0)."""
    inputs = []
    for adata in (train_mod1, test_mod1):
        columns = adata.var_names.get_indexer(features)
        if (columns < 0).any():
            missing = [f for f, c in zip(features, columns, strict=True) if c < 0][:5]
            raise ScmibError(f"Cajal: features of the training cells missing from the test cells: {missing}")
        values = log_cpm(adata.layers["counts"]) if gex else sp.csr_matrix(adata.layers["normalized"])
        counts = count_features(adata.layers["counts"], adata.obs["batch"])
        inputs.append(np.hstack([values[:, columns].toarray(), np.repeat(counts, REPEATS, axis=1)]))
    means, sds = inputs[0].mean(axis=0), inputs[0].std(axis=0)
    # A column without spread in training (a batch statistic of one training batch) taught the
    # network nothing; as 0 it cannot shift the test cells either (Cajal's code divided by 0).
    # Its SD is rounding noise, not 0: constant is told by its range.
    spread = np.ptp(inputs[0], axis=0) > 0
    return tuple(
        np.where(spread, (x - means) / np.where(spread, sds, 1.0), 0.0).astype(np.float32) for x in inputs
    )


class CajalMlp(nn.Module):
    """Input dropout, ReLU layers of ``widths``, a linear output clipped to ``[low, high]``."""

    def __init__(
        self, n_inputs: int, n_outputs: int, settings: CajalSettings, low: float, high: float
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(settings.input_dropout)
        sizes = [n_inputs, *settings.widths]
        self.hidden = nn.ModuleList([keras_dense(a, b) for a, b in itertools.pairwise(sizes)])
        self.output = keras_dense(sizes[-1], n_outputs)
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)
        for layer in self.hidden:
            x = F.relu(layer(x))
        # tf.clip_by_value: no gradient reaches an output outside the range
        return torch.clamp(self.output(x), self.low, self.high)


#: Rows predicted at a time.
_CHUNK = 4096


def target_range(targets: sp.csr_matrix) -> tuple[float, float]:
    """The overall minimum and maximum of ``targets``, its implicit zeros included."""
    values = targets.data
    zeros = targets.nnz < targets.shape[0] * targets.shape[1]
    low, high = (values.min(), values.max()) if len(values) else (0.0, 0.0)
    return (min(low, 0.0), max(high, 0.0)) if zeros else (low, high)


def train_cajal(
    x_train: np.ndarray,
    targets: sp.csr_matrix,
    x_test: np.ndarray,
    settings: CajalSettings,
    device: torch.device,
    seed: int,
    batch_size: int = 1000,
    learning_rate: float = 1e-3,
) -> np.ndarray:
    """Train Cajal's network on every training cell (``x_train``: cells x inputs; ``targets``:
    cells x target features, CSR) for ``settings.epochs`` epochs and predict the test cells
    (test cells x target features, float32)."""
    seed_everything(seed)
    generator = np.random.default_rng(seed)
    targets = sp.csr_matrix(targets, dtype=np.float32)
    model = CajalMlp(x_train.shape[1], targets.shape[1], settings, *map(float, target_range(targets)))
    model = model.to(device)
    optimizer = keras_adam(model, learning_rate)
    inputs = torch.as_tensor(x_train, device=device)
    log = EpochLog("Cajal", settings.epochs)
    for epoch in range(settings.epochs):
        model.train()
        total = 0.0
        for ix in shuffled_minibatches(len(x_train), batch_size, generator):
            loss = F.mse_loss(model(inputs[ix]), torch.as_tensor(targets[ix].toarray(), device=device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(ix)
        log(epoch, loss=total / len(x_train))
    model.eval()
    with torch.no_grad():
        chunks = [x_test[s : s + _CHUNK] for s in range(0, len(x_test), _CHUNK)]
        return np.vstack([model(torch.as_tensor(c, device=device)).cpu().numpy() for c in chunks])

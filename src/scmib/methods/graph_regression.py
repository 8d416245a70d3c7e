"""DANCE's graph neural network from GEX to ADT or ATAC (the NeurIPS 2021 predict-modality overall
winner; Wen et al. 2022, "Graph neural networks for multimodal single-cell data integration").

The graph has a node per cell and a node per gene, and three relations:

- ``entail`` (gene -> cell) and ``occur`` (cell -> gene): an edge wherever the cell expresses the
  gene, weighted by the normalised expression;
- ``pathway`` (gene -> gene): every ordered pair of genes of one MSigDB hallmark gene set, weighted
  by the cosine similarity of the two genes over the training cells (a pair in several sets is
  several edges).

Cells start from one learnt vector plus an encoding of their batch's mean expression statistics;
genes from a learnt embedding each. Each of the ``conv_layers`` layers is a GraphSAGE convolution
per relation with mean aggregation of edge-weighted messages (edge dropout on the weights); a
gene's two results are group-normalised and mixed ``1 - alpha : alpha``; every layer after the
first also sees the initial embeddings (concatenated); a linear read-out of the cell states of all
layers predicts the target features. Training is full-batch AdamW on MSE over the training cells;
the kept weights are those of the epoch with the lowest validation RMSE after ``select_after``.

Written in plain torch (sparse CSR products) from the organisers' DGL code
(``src/predict_modality/methods/DANCE`` in openproblems-bio/neurips2021_multimodal_topmethods:
``train/hetero_arg_version_v5.py`` with the options of ``train/script.sh``, and
``resources/graph_util.py``), so it needs no DGL build. torch is imported by callers lazily.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from scmib.methods.torch_models import EpochLog, adam, seed_everything

#: DANCE's per-cell expression statistics, averaged per batch (``graph_util.py``'s column order).
BATCH_STATISTICS = (
    "cell_mean",
    "cell_std",
    "nonzero_25%",
    "nonzero_50%",
    "nonzero_75%",
    "nonzero_max",
    "nonzero_count",
    "nonzero_mean",
    "nonzero_std",
)


@dataclass(frozen=True)
class DanceConfig:
    """The options of the organisers' ``train/script.sh`` (the same for all of DANCE's models, but
    their 8,000-12,000 epochs)."""

    epochs: int = 10_000
    select_after: int = 4_001
    """Only epochs after this many are candidates for the kept weights (DANCE: its epochs after
    index 4,000 counted from 0, so 4,001)."""
    hidden: int = 48
    conv_layers: int = 4
    learning_rate: float = 1e-2
    weight_decay: float = 1e-5
    edge_dropout: float = 0.4
    model_dropout: float = 0.2
    pathway_alpha: float = 0.5
    validation_fraction: float = 0.15

    def __post_init__(self) -> None:
        if self.hidden % 4:
            raise ValueError(f"hidden must be a multiple of 4 (group norm has 4 groups), not {self.hidden}")
        if not 0 <= self.select_after < self.epochs:
            raise ValueError(f"select_after ({self.select_after}) must be below epochs ({self.epochs})")


@cache
def hallmark_gene_sets() -> dict[str, list[str]]:
    """The 50 MSigDB hallmark gene sets (v7.4, human symbols) DANCE used: ``{set name: genes}``.

    ``genesets/msigdb_hallmark_v7.4_human.gmt`` is the file DANCE's code ships
    (``h.all.v7.4.symbols.gmt``), byte for byte: Liberzon et al. 2015, Cell Systems 1:417;
    MSigDB distributes its hallmark collection under CC BY 4.0 (gsea-msigdb.org).
    """
    path = resources.files("scmib").joinpath("genesets/msigdb_hallmark_v7.4_human.gmt")
    sets = {}
    for line in path.read_text().splitlines():
        name, _url, *genes = line.split("\t")
        sets[name] = [gene for gene in genes if gene]
    return sets


def pathway_edges(
    genes: pd.Index, train_expression: sp.csr_matrix
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The gene -> gene edges of the hallmark sets among ``genes``: ``(source, target, cosine,
    genes matched)``.

    Genes are matched by upper-case symbol, so mouse symbols (``Cd74``) find their human
    orthologue's name (``CD74``) as well. The cosine is over the columns of ``train_expression``
    (training cells x ``genes``); a gene never expressed in training gives its edges weight 0.
    """
    position = pd.Series(np.arange(len(genes)), index=genes.str.upper())
    position = position[~position.index.duplicated()]
    x = sp.csc_matrix(train_expression, dtype=np.float64)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    sources, targets, weights, matched = [], [], [], set()
    for members in hallmark_gene_sets().values():
        index = position.reindex(members).dropna().to_numpy(dtype=np.int64)
        if len(index) < 2:
            continue
        matched.update(index.tolist())
        block = x[:, index]
        gram = (block.T @ block).toarray()
        with np.errstate(divide="ignore", invalid="ignore"):
            cosine = np.nan_to_num(gram / np.outer(norms[index], norms[index]))
        source, target = np.nonzero(~np.eye(len(index), dtype=bool))
        sources.append(index[source])
        targets.append(index[target])
        weights.append(cosine[source, target])
    if not sources:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), 0
    return np.concatenate(sources), np.concatenate(targets), np.concatenate(weights), len(matched)


def batch_statistics(expression: sp.csr_matrix, batches: np.ndarray) -> np.ndarray:
    """Cells x 9: each cell gets the mean over its batch's cells of DANCE's statistics of one
    cell's expression (:data:`BATCH_STATISTICS`: over all genes, then over its non-zero values;
    a cell with no non-zero value counts only in the first two)."""
    x = sp.csr_matrix(expression, dtype=np.float64)
    n_genes = x.shape[1]
    mean = np.asarray(x.sum(axis=1)).ravel() / n_genes
    std = np.sqrt(np.maximum(np.asarray(x.multiply(x).sum(axis=1)).ravel() / n_genes - mean**2, 0))
    table = np.full((x.shape[0], len(BATCH_STATISTICS)), np.nan)
    table[:, 0], table[:, 1] = mean, std
    for row in range(x.shape[0]):
        values = x.data[x.indptr[row] : x.indptr[row + 1]]
        values = values[values != 0]
        if len(values):
            table[row, 2:5] = np.percentile(values, [25, 50, 75])
            table[row, 5] = max(values.max(), 0.0)
            table[row, 6] = len(values) / 1000
            table[row, 7], table[row, 8] = values.mean(), values.std()
    per_batch = pd.DataFrame(table).groupby(np.asarray(batches)).transform("mean")
    return np.nan_to_num(per_batch.to_numpy()).astype(np.float32)


def dropout(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """``F.dropout``: each value zeroed with probability ``rate`` and the others scaled by
    ``1 / (1 - rate)``, with the mask drawn as uniform numbers against the rate (the same
    Bernoulli distribution; torch's CPU Bernoulli sampler is 3x slower and was a fifth of an
    epoch)."""
    if not training or rate == 0:
        return x
    return x * keep_mask(x, rate) / (1 - rate)


def keep_mask(x: torch.Tensor, rate: float) -> torch.Tensor:
    """Which values of ``x`` a dropout of ``rate`` keeps: uniform numbers at or above the rate."""
    return torch.rand(x.shape, device=x.device) >= rate


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    with warnings.catch_warnings():  # torch calls CSR support "beta" on every construction
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size=shape)


@dataclass
class SparsePattern:
    """Where a sparse matrix has entries (CSR ``crow``, ``col``), where its transpose has them
    (``crow_t``, ``col_t``) and, for each entry of the transpose in its CSR order, the index of
    the same entry in the matrix's order (``transpose_order``). Indices are int32 below 2^31
    entries: half the memory of int64 (a competition-size graph has 10^8 cell-gene edges) and
    faster products; torch's CSR kernels take either."""

    crow: torch.Tensor
    col: torch.Tensor
    crow_t: torch.Tensor
    col_t: torch.Tensor
    transpose_order: torch.Tensor
    shape: tuple[int, int]

    @classmethod
    def of(cls, indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int]) -> SparsePattern:
        """The pattern of a CSR matrix with sorted, distinct column indices in each row."""
        index = np.int32 if max(len(indices), *shape) < 2**31 else np.int64
        ids = np.arange(len(indices), dtype=index)
        transposed = sp.csr_matrix((ids, indices, indptr), shape=shape).T.tocsr()
        arrays = (indptr, indices, transposed.indptr, transposed.indices, transposed.data)
        return cls(*(torch.from_numpy(np.asarray(a, dtype=index)) for a in arrays), shape)

    def transposed(self) -> SparsePattern:
        """The transpose's pattern, sharing this one's index arrays (but the inverse order)."""
        inverse = torch.empty_like(self.transpose_order)
        inverse[self.transpose_order] = torch.arange(len(inverse), dtype=inverse.dtype)
        return SparsePattern(self.crow_t, self.col_t, self.crow, self.col, inverse, self.shape[::-1])

    def to(self, device: torch.device) -> SparsePattern:
        names = ("crow", "col", "crow_t", "col_t", "transpose_order")
        return SparsePattern(*(getattr(self, name).to(device) for name in names), self.shape)


class _DroppedProduct(torch.autograd.Function):
    """``relation.matrix(keep) @ h``, whose backward multiplies by the transpose rebuilt from the
    saved dropout mask (a byte an edge). torch's own backward of a CSR product sorts the matrix
    into its transpose on every call (half an epoch); saving the transpose instead would hold
    four bytes an edge for each of an epoch's eight products (2.8 GB at the competition's size)."""

    @staticmethod
    def forward(ctx, relation: Relation, keep: torch.Tensor | None, rate: float, h: torch.Tensor):
        ctx.relation, ctx.keep, ctx.rate = relation, keep, rate
        return relation.matrix(keep, rate) @ h

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, None, ctx.relation.transpose_matrix(ctx.keep, ctx.rate) @ grad


class Relation:
    """One relation as a sparse target x source matrix whose entries are the edge weights over
    the target's in-degree (so a product is a mean over incoming edges, as DGL's ``fn.mean``).
    Edge dropout applies per edge, before edges between the same two nodes are summed.

    ``values`` holds one value per edge: in the pattern's CSR order when no two edges join the
    same two nodes (``slot`` None), else in any order, ``slot`` naming each edge's entry."""

    def __init__(
        self,
        pattern: SparsePattern,
        values: np.ndarray,
        slot: np.ndarray | None = None,
    ) -> None:
        self.pattern, self.shape = pattern, pattern.shape
        self.values = torch.from_numpy(np.asarray(values, dtype=np.float32))
        self.slot = None if slot is None else torch.from_numpy(slot.astype(pattern.col.numpy().dtype))
        self.n_entries = len(pattern.col)

    @classmethod
    def from_edges(
        cls,
        target: np.ndarray,
        source: np.ndarray,
        weight: np.ndarray,
        shape: tuple[int, int],
    ) -> Relation:
        """From an edge list, in which an edge may repeat (a gene pair in two hallmark sets)."""
        degree = np.bincount(target, minlength=shape[0])
        unique, slot = np.unique(target.astype(np.int64) * shape[1] + source, return_inverse=True)
        rows, cols = unique // shape[1], unique % shape[1]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=shape[0]))])
        pattern = SparsePattern.of(indptr, cols, shape)
        values = weight / np.maximum(degree[target], 1)
        return cls(pattern, values, slot.ravel())

    def to(self, device: torch.device) -> Relation:
        moved = copy.copy(self)
        moved.pattern = self.pattern.to(device)
        moved.values = self.values.to(device)
        moved.slot = None if self.slot is None else self.slot.to(device)
        return moved

    def _entry_values(self, keep: torch.Tensor | None, rate: float) -> torch.Tensor:
        values = self.values
        if keep is not None:
            values = values * keep / (1 - rate)
        if self.slot is not None:
            values = torch.zeros(self.n_entries, device=values.device).index_add_(0, self.slot, values)
        return values

    def matrix(self, keep: torch.Tensor | None, rate: float) -> torch.Tensor:
        """The (targets x sources) matrix without the edges where ``keep`` is False, the others
        scaled by ``1 / (1 - rate)`` (all edges as they are where ``keep`` is None)."""
        pattern = self.pattern
        return _csr(pattern.crow, pattern.col, self._entry_values(keep, rate), self.shape)

    def transpose_matrix(self, keep: torch.Tensor | None, rate: float) -> torch.Tensor:
        """The transpose of :meth:`matrix`."""
        pattern = self.pattern
        values = self._entry_values(keep, rate)[pattern.transpose_order]
        return _csr(pattern.crow_t, pattern.col_t, values, self.shape[::-1])

    def aggregate(self, h: torch.Tensor, edge_dropout: float, training: bool) -> torch.Tensor:
        """The weighted mean over each target's incoming edges of the source states ``h``
        (targets x width). In training each edge is dropped with probability ``edge_dropout``
        and the others scaled by ``1 / (1 - edge_dropout)`` (``F.dropout`` on the weights, the
        mask drawn as :func:`dropout` draws it)."""
        keep = None
        if training and edge_dropout > 0:
            keep = keep_mask(self.values, edge_dropout)
        if not torch.is_grad_enabled() or not h.requires_grad:
            return self.matrix(keep, edge_dropout) @ h
        return _DroppedProduct.apply(self, keep, edge_dropout, h)


@dataclass
class CellGeneGraph:
    """The graph of some cells (``expression``'s rows) and all genes, with each cell's batch
    statistics (:func:`batch_statistics`)."""

    entail: Relation
    occur: Relation
    pathway: Relation
    batch_statistics: torch.Tensor

    @property
    def n_cells(self) -> int:
        return self.entail.shape[0]

    def to(self, device: torch.device) -> CellGeneGraph:
        return CellGeneGraph(
            self.entail.to(device),
            self.occur.to(device),
            self.pathway.to(device),
            self.batch_statistics.to(device),
        )


def build_graph(
    expression: sp.spmatrix,
    statistics: np.ndarray,
    pathway: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> CellGeneGraph:
    """The graph of the cells of ``expression`` (cells x genes, normalised) with their batch
    ``statistics`` (:func:`batch_statistics`) and the gene -> gene edges ``pathway``
    (:func:`pathway_edges`). ``entail`` (cells x genes) and
    ``occur`` (genes x cells) are each other's transposes: they share one pattern's arrays."""
    x = sp.csr_matrix(expression, dtype=np.float32, copy=True)
    x.eliminate_zeros()  # a stored zero is no edge (DANCE's edges are the non-zero entries)
    x.sort_indices()
    cells = SparsePattern.of(x.indptr, x.indices, x.shape)
    genes = cells.transposed()
    cell_degree = np.diff(x.indptr)
    gene_degree = np.diff(genes.crow.numpy())
    by_gene = x.data[cells.transpose_order.numpy()]  # the weights in the genes' CSR order
    source, target, cosine = pathway
    n_genes = x.shape[1]
    return CellGeneGraph(
        entail=Relation(cells, x.data / np.repeat(cell_degree, cell_degree)),
        occur=Relation(genes, by_gene / np.repeat(gene_degree, gene_degree)),
        pathway=Relation.from_edges(target, source, cosine, (n_genes, n_genes)),
        batch_statistics=torch.from_numpy(np.asarray(statistics, dtype=np.float32)),
    )


class SageConv(nn.Module):
    """GraphSAGE with mean aggregation (DGL's ``SAGEConv(aggregator_type="mean")``):
    ``W_self h_target + W_neigh mean(weight * h_source) + b``, initialised as DGL does (Xavier
    uniform with ReLU's gain, a zero bias)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.self_linear = nn.Linear(n_in, n_out)
        self.neighbour_linear = nn.Linear(n_in, n_out, bias=False)
        gain = nn.init.calculate_gain("relu")
        nn.init.xavier_uniform_(self.self_linear.weight, gain=gain)
        nn.init.xavier_uniform_(self.neighbour_linear.weight, gain=gain)
        nn.init.zeros_(self.self_linear.bias)

    def forward(self, neighbours: torch.Tensor, h_target: torch.Tensor) -> torch.Tensor:
        """``neighbours``: the mean of the weighted source states (:meth:`Relation.aggregate`)."""
        return self.self_linear(h_target) + self.neighbour_linear(neighbours)


class DanceGNN(nn.Module):
    """DANCE's ``WeightedGCN4`` with the options of its training script (GELU, group norm with 4
    groups, two embedding layers, initial residual by concatenation, pathway mixing by ``alpha``,
    one read-out layer over the concatenated cell states of all layers, no output activation)."""

    def __init__(self, n_genes: int, n_outputs: int, config: DanceConfig) -> None:
        super().__init__()
        hidden, layers = config.hidden, config.conv_layers
        self.config = config
        self.batch_encoder = nn.Linear(len(BATCH_STATISTICS), hidden)
        self.cell_embedding = nn.Embedding(2, hidden)  # every cell is id 1, as in DANCE
        self.gene_embedding = nn.Embedding(n_genes, hidden)
        self.cell_input = nn.Linear(hidden, hidden)
        self.gene_input = nn.Linear(hidden, hidden)
        self.cell_input_norm = nn.GroupNorm(4, hidden)
        self.gene_input_norm = nn.GroupNorm(4, hidden)
        widths = [hidden] + [2 * hidden] * (layers - 1)
        self.entail = nn.ModuleList(SageConv(w, hidden) for w in widths)
        self.occur = nn.ModuleList(SageConv(w, hidden) for w in widths)
        self.pathway = nn.ModuleList(SageConv(w, hidden) for w in widths)
        self.cell_norm = nn.ModuleList(nn.GroupNorm(4, hidden) for _ in widths)
        self.occur_norm = nn.ModuleList(nn.GroupNorm(4, hidden) for _ in widths)
        self.pathway_norm = nn.ModuleList(nn.GroupNorm(4, hidden) for _ in widths)
        self.readout = nn.Linear(hidden * layers, n_outputs)

    def _dropout(self, h: torch.Tensor) -> torch.Tensor:
        return dropout(h, self.config.model_dropout, self.training)

    def forward(self, graph: CellGeneGraph) -> torch.Tensor:
        """Predictions for every cell of ``graph`` (cells x outputs)."""
        config = self.config
        ids = torch.ones(graph.n_cells, dtype=torch.long, device=graph.batch_statistics.device)
        cell = F.leaky_relu(self.cell_embedding(ids)) + F.leaky_relu(
            dropout(self.batch_encoder(graph.batch_statistics), 0.2, self.training)
        )
        gene = F.leaky_relu(self.gene_embedding.weight)
        cell = self._dropout(self.cell_input_norm(F.gelu(self.cell_input(cell))))
        gene = self._dropout(self.gene_input_norm(F.gelu(self.gene_input(gene))))
        cell0, gene0 = cell, gene
        states = []
        for layer in range(config.conv_layers):
            if layer > 0:
                cell, gene = torch.cat([cell, cell0], 1), torch.cat([gene, gene0], 1)
            rate, training = config.edge_dropout, self.training
            new_cell = self.entail[layer](graph.entail.aggregate(gene, rate, training), cell)
            from_cells = self.occur[layer](graph.occur.aggregate(cell, rate, training), gene)
            if graph.pathway.n_entries:
                from_genes = self.pathway[layer](graph.pathway.aggregate(gene, rate, training), gene)
                alpha = config.pathway_alpha
                gene = (1 - alpha) * self.occur_norm[layer](from_cells) + alpha * self.pathway_norm[layer](
                    from_genes
                )
            else:  # no hallmark gene measured: DGL's HeteroGraphConv skips a relation without edges
                gene = self.occur_norm[layer](from_cells)
            gene = self._dropout(F.gelu(gene))
            cell = self._dropout(F.gelu(self.cell_norm[layer](new_cell)))
            states.append(cell)
        return self.readout(torch.cat(states, 1))


def fit_dance(
    expression: sp.spmatrix,
    targets: np.ndarray,
    batches: np.ndarray,
    pathway: tuple[np.ndarray, np.ndarray, np.ndarray],
    config: DanceConfig,
    device: torch.device,
    seed: int,
    name: str = "dance",
) -> tuple[DanceGNN, dict[str, float]]:
    """Train one DANCE model on the training cells (``expression``: cells x genes, ``targets``:
    cells x outputs) as DANCE's training script does: a random ``validation_fraction`` of the
    cells is held out; the training graph has the other cells, the validation graph all of them
    (validation cells last). Returns the model (eval mode, kept weights) and ``{"best_epoch",
    "best_val_rmse"}``."""
    n_cells = expression.shape[0]
    # As DANCE's masks: a random int(0.85 n) cells train, the rest validate.
    n_train = int(n_cells * (1 - config.validation_fraction))
    validation = np.ones(n_cells, dtype=bool)
    validation[np.random.default_rng(seed).permutation(n_cells)[:n_train]] = False
    if validation.all() or not validation.any():
        raise ValueError(f"{expression.shape[0]} training cells are too few for a validation split")
    expression = sp.csr_matrix(expression)
    order = np.concatenate([np.flatnonzero(~validation), np.flatnonzero(validation)])
    # As DANCE: batch statistics over all training cells, the training graph's a slice of them.
    statistics = batch_statistics(expression[order], batches[order])
    train_graph = build_graph(expression[order[:n_train]], statistics[:n_train], pathway).to(device)
    full_graph = build_graph(expression[order], statistics, pathway).to(device)
    y_train = torch.as_tensor(targets[~validation], dtype=torch.float32, device=device)
    y_val = torch.as_tensor(targets[validation], dtype=torch.float32, device=device)

    seed_everything(seed)
    model = DanceGNN(expression.shape[1], targets.shape[1], config).to(device)
    optimiser = adam(model.parameters(), config.learning_rate, config.weight_decay, decoupled=True)
    best_rmse, best_epoch, best_state = math.inf, -1, None
    log = EpochLog(name, config.epochs, every=max(1, config.epochs // 100))
    for epoch in range(config.epochs):
        model.train()
        loss = F.mse_loss(model(train_graph), y_train)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        # DANCE validates every epoch but keeps only epochs after select_after: validating those
        # alone keeps the same weights (evaluation draws no random numbers).
        losses = {"train_rmse": math.sqrt(float(loss.detach()))}
        if epoch >= config.select_after:
            model.eval()
            with torch.no_grad():
                rmse = math.sqrt(float(F.mse_loss(model(full_graph)[n_train:], y_val)))
            losses["validation_rmse"] = rmse
            if rmse < best_rmse:
                best_rmse, best_epoch = rmse, epoch
                best_state = copy.deepcopy(model.state_dict())
        log(epoch, **losses)
    if best_state is None:
        raise ValueError(
            f"no epoch after {config.select_after} had a finite validation RMSE: training diverged"
        )
    model.load_state_dict(best_state)
    return model.eval(), {"best_epoch": best_epoch, "best_val_rmse": best_rmse}


def predict_dance(model: DanceGNN, graph: CellGeneGraph, n_test: int) -> np.ndarray:
    """Predictions for the last ``n_test`` cells of ``graph`` (test cells x outputs)."""
    model.eval()
    with torch.no_grad():
        return model(graph)[-n_test:].cpu().numpy()

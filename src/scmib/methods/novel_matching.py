"""Novel's matching model (second in the competition's matching task), as its code computes it.

From the organisers' neurips2021_multimodal_topmethods (``match_modality/methods/novel``):

- **Inputs.** GEX and ATAC by Novel's LSI (:func:`~scmib.methods.features.novel_lsi` of the
  normalised values, one component more than kept, the first dropped after the per-cell z-score),
  fitted on each model's training cells; ADT as its normalised values.
- **Model.** Two encoders (:class:`NovelEncoder`: linear layers, ELU and dropout after each but the
  last, no batch norm), one for ADT or ATAC and one for GEX, their outputs scaled to unit length; a
  learned logit scale starting at ``log_t``; the symmetric cross-entropy of a minibatch's pairs.
- **Training.** Adam (no weight decay), shuffled minibatches of every training cell, up to 7,000
  epochs; after each, the retrieval accuracy of the validation cells (each cell's most similar
  partner is its own, both ways, averaged) keeps the best epoch, and 150 epochs without a better
  one stop training.
- **Models.** CITE (ADT with GEX): one model per training batch, validated on that batch and
  trained on the others (leave one batch out: 9 models in the competition). Multiome (ATAC with
  GEX): one model, validated on the first training batch (the competition's ``s1d1``).
- **Matching.** The models' cosine similarities of the test cells are summed; edges outside the
  top 1% of both their row and their column are dropped, and a minimum-weight full bipartite
  matching of the negated sums pairs every cell with one partner, all test cells at once.

Where the training cells are one batch (the starter cells), :data:`PSEUDO_BATCHES` seeded random
groups of them stand in for the batches.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from scmib.methods.torch_models import BestEpoch, EpochLog, adam, seed_everything, shuffled_minibatches


@dataclass(frozen=True)
class NovelSettings:
    """One of Novel's two configurations (``config_ADT2GEX.py``, ``config_ATAC2GEX.py``): the
    encoder of the other modality (ADT or ATAC) first, then GEX's."""

    other_lsi: int | None  #: LSI components of the other modality (None: ADT as it is)
    gex_lsi: int
    other_layers: tuple[int, ...]
    gex_layers: tuple[int, ...]
    other_dropout: tuple[float, ...]
    gex_dropout: tuple[float, ...]
    embedding_dim: int
    log_t: float
    learning_rate: float
    batch_size: int
    one_model: bool  #: one model validated on the first batch (Multiome), else one per batch


CITE = NovelSettings(
    other_lsi=None,
    gex_lsi=128,
    other_layers=(512, 2048),
    gex_layers=(1024, 512),
    other_dropout=(0.0221735, 0.296919),
    gex_dropout=(0.0107121, 0.254689),
    embedding_dim=64,
    log_t=3.463735,
    learning_rate=7.79984e-05,
    batch_size=2048,
    one_model=False,
)
MULTIOME = NovelSettings(
    other_lsi=512,
    gex_lsi=64,
    other_layers=(2048,),
    gex_layers=(1024, 1024),
    other_dropout=(0.661,),
    gex_dropout=(0.541, 0.396),
    embedding_dim=256,
    log_t=3.065016,
    learning_rate=0.000585,
    batch_size=16384,
    one_model=True,
)
#: Novel's ``EarlyStoppingCallback``: epochs without a better validation accuracy, and by how much.
PATIENCE, MIN_DELTA = 150, 1e-5
MAX_EPOCHS = 7000
#: Novel's ``threshold_quantile``: an edge is kept when it is in its row's or its column's top 1%.
EDGE_QUANTILE = 0.99
#: Groups of training cells that stand in for batches when the training cells are one batch.
PSEUDO_BATCHES = 9


def settings_for(modalities: tuple[str, str]) -> NovelSettings:
    """Novel's configuration for a pair of modalities (in either order)."""
    if set(modalities) == {"GEX", "ADT"}:
        return CITE
    if set(modalities) == {"GEX", "ATAC"}:
        return MULTIOME
    raise ValueError(f"Novel's matching pairs GEX with ADT or ATAC, not {modalities}")


class NovelEncoder(nn.Module):
    """Novel's ``Encoder``: ``n_input -> layers... -> embedding_dim``, ELU after every layer but the
    last and dropout after the first ``len(dropout)`` of them; torch's default initialisation."""

    def __init__(self, n_input: int, layers: tuple[int, ...], dropout: tuple[float, ...], embedding_dim: int):
        super().__init__()
        sizes = [n_input, *layers, embedding_dim]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.dropouts = nn.ModuleList(nn.Dropout(p) for p in dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, linear in enumerate(self.linears[:-1]):
            x = F.elu(linear(x))
            if i < len(self.dropouts):
                x = self.dropouts[i](x)
        return self.linears[-1](x)


class NovelCLIP(nn.Module):
    """Novel's ``Modality_CLIP``: the other modality's encoder, GEX's encoder, a learned logit scale."""

    def __init__(self, n_other: int, n_gex: int, settings: NovelSettings) -> None:
        super().__init__()
        s = settings
        self.encode_other = NovelEncoder(n_other, s.other_layers, s.other_dropout, s.embedding_dim)
        self.encode_gex = NovelEncoder(n_gex, s.gex_layers, s.gex_dropout, s.embedding_dim)
        self.logit_scale = nn.Parameter(torch.ones([]) * s.log_t)

    def forward(self, other: torch.Tensor, gex: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit embeddings ``(n, embedding_dim)`` of both modalities' rows."""
        return F.normalize(self.encode_other(other), dim=-1), F.normalize(self.encode_gex(gex), dim=-1)

    def loss(self, other: torch.Tensor, gex: torch.Tensor) -> torch.Tensor:
        """Novel's ``symmetric_npair_loss``: each cell must pick its partner among the minibatch's."""
        z_other, z_gex = self(other, gex)
        logits = self.logit_scale.exp() * z_other @ z_gex.T
        labels = torch.arange(len(logits), device=logits.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def retrieval_accuracy(z_other: torch.Tensor, z_gex: torch.Tensor) -> float:
    """Novel's validation metric ``avg_acc``: the share of cells whose most similar partner is their
    own, from either modality, averaged over both."""
    similarity = z_other @ z_gex.T
    labels = torch.arange(len(similarity), device=similarity.device)
    forward = (similarity.argmax(dim=1) == labels).float().mean()
    backward = (similarity.argmax(dim=0) == labels).float().mean()
    return float(0.5 * (forward + backward))


def train_novel_clip(
    other: np.ndarray,
    gex: np.ndarray,
    validation: np.ndarray,
    settings: NovelSettings,
    device: torch.device,
    seed: int,
    max_epochs: int = MAX_EPOCHS,
    patience: int = PATIENCE,
) -> NovelCLIP:
    """Train :class:`NovelCLIP` on the paired rows of ``other`` and ``gex`` outside the boolean mask
    ``validation``, and return it (eval mode) with the weights of its epoch of best retrieval
    accuracy on the cells inside it."""
    seed_everything(seed)
    model = NovelCLIP(other.shape[1], gex.shape[1], settings).to(device)
    optimiser = adam(model.parameters(), settings.learning_rate)
    tensors = [torch.as_tensor(x, dtype=torch.float32, device=device) for x in (other, gex)]
    train = [t[torch.as_tensor(~validation, device=device)] for t in tensors]
    valid = [t[torch.as_tensor(validation, device=device)] for t in tensors]
    rng = np.random.default_rng(seed)
    best = BestEpoch(model, patience, MIN_DELTA)
    log = EpochLog("NovelCLIP", max_epochs, every=50)
    for epoch in range(max_epochs):
        model.train()
        for cells in shuffled_minibatches(len(train[0]), settings.batch_size, rng):
            optimiser.zero_grad()
            index = torch.as_tensor(cells, device=device)
            model.loss(train[0][index], train[1][index]).backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            accuracy = retrieval_accuracy(*model(*valid))
        log(epoch, validation_accuracy=accuracy, temperature=float(model.logit_scale.detach().exp()))
        if best.stop_after(epoch, -accuracy):
            print(f"NovelCLIP: stopped after epoch {epoch + 1}, best {best.epoch + 1} "
                  f"(validation accuracy {-best.loss:.4f})", file=sys.stderr)  # fmt: skip
            break
    return best.restore()


def validation_groups(batches: np.ndarray, settings: NovelSettings, seed: int) -> list[np.ndarray]:
    """Boolean masks of the validation cells of each model: every training batch in turn (CITE) or
    the first batch in sorted order (Multiome). Training cells of one batch are split into
    :data:`PSEUDO_BATCHES` seeded random groups first, which stand in for batches (said on stderr)."""
    batches = np.asarray(batches).astype(str)
    names = np.unique(batches)
    if len(names) < 2:
        order = np.random.default_rng(seed).permutation(len(batches))
        groups = np.empty(len(batches), dtype=object)
        for g, cells in enumerate(np.array_split(order, PSEUDO_BATCHES)):
            groups[cells] = f"group{g}"
        batches, names = groups.astype(str), np.array([f"group{g}" for g in range(PSEUDO_BATCHES)])
        print(f"Novel's matching: the training cells are one batch, so {PSEUDO_BATCHES} random groups "
              "of them stand in for batches", file=sys.stderr)  # fmt: skip
    held_out = names[:1] if settings.one_model else names
    return [batches == name for name in held_out]


def novel_assignment(similarity: np.ndarray, quantile: float = EDGE_QUANTILE) -> sp.csr_matrix:
    """Novel's ``get_bipartite_matching_adjacency_matrix_mk3``: drop every edge below both its
    column's and its row's ``quantile`` (numpy's linear interpolation), then a minimum-weight full
    bipartite matching of the negated similarities of the edges kept: scipy's sparse LAPJVsp
    solves the problem Novel's networkx call (``minimum_weight_full_matching``: a dense
    ``linear_sum_assignment`` with missing edges infinite) solves. Returns the 0/1 matrix.

    Where the edges kept allow no full matching (Novel's code stopped there), every edge is
    kept (scipy's dense ``linear_sum_assignment``), said on stderr.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    similarity = np.asarray(similarity)
    by_column = np.quantile(similarity, quantile, axis=0, keepdims=True)
    by_row = np.quantile(similarity, quantile, axis=1, keepdims=True)
    kept = (similarity >= by_column) | (similarity >= by_row)
    rows, cols = np.nonzero(kept)
    # A similarity of exactly 0 would be no edge in Novel's sparse matrix; it is kept here as a
    # tiny negative weight (min_weight_full_bipartite_matching takes every stored entry as an edge).
    weights = -similarity[rows, cols]
    weights[weights == 0] = -np.finfo(np.float64).tiny
    graph = sp.csr_matrix((weights, (rows, cols)), shape=similarity.shape)
    try:
        left, right = min_weight_full_bipartite_matching(graph)
    except ValueError:
        print("Novel's matching: the top-1% edges allow no full matching; matching on every edge",
              file=sys.stderr)  # fmt: skip
        left, right = linear_sum_assignment(similarity, maximize=True)
    return sp.csr_matrix((np.ones(len(left)), (left, right)), shape=similarity.shape)


def model_inputs(
    train: sp.spmatrix | np.ndarray,
    test: sp.spmatrix | np.ndarray,
    n_lsi: int | None,
    validation: np.ndarray,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One modality's inputs to the model validated on the boolean mask ``validation``: the training
    rows (validation rows included) and the test rows. ``n_lsi`` None: the values as they are
    (ADT); else Novel's LSI of ``n_lsi + 1`` components fitted on the training rows outside
    ``validation``, the first dropped (fewer where the cells or features are fewer, said on stderr)."""
    from scmib.methods.features import novel_lsi
    from scmib.methods.reduction import as_dense

    if n_lsi is None:
        return as_dense(train).astype(np.float32), as_dense(test).astype(np.float32)
    train = sp.csr_matrix(train)
    fitted, applied = novel_lsi(train[~validation], sp.vstack([train[validation], sp.csr_matrix(test)]),
                                n_lsi + 1, seed)  # fmt: skip
    if fitted.shape[1] < n_lsi + 1:
        n_fitted = int((~validation).sum())
        print(f"Novel's LSI: {fitted.shape[1]} components, not {n_lsi + 1}: only "
              f"{n_fitted} training cells x {train.shape[1]} features", file=sys.stderr)  # fmt: skip
    rows = np.empty((train.shape[0], fitted.shape[1] - 1), dtype=np.float32)
    n_valid = int(validation.sum())
    rows[~validation], rows[validation] = fitted[:, 1:], applied[:n_valid, 1:]
    return rows, applied[n_valid:, 1:].astype(np.float32)


def embed(
    model: NovelCLIP, other: np.ndarray, gex: np.ndarray, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings of test rows ``other`` and ``gex`` (any numbers of rows), as numpy arrays."""
    with torch.no_grad():
        z_other, z_gex = model(
            *(torch.as_tensor(x, dtype=torch.float32, device=device) for x in (other, gex))
        )
    return z_other.cpu().numpy(), z_gex.cpu().numpy()

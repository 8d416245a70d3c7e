"""A CLIP-style dual encoder for matching cells across modalities (Novel's matching model).

Two MLP encoders map each modality's reduction to a shared unit sphere; training
minimises the symmetric InfoNCE loss of the paired cells in a minibatch, with
a learned temperature (CLIP's ``logit_scale``). Minibatches are drawn within one
batch (sample), as test cells are matched within their batch.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from scmib.methods.torch_models import BestEpoch, EpochLog, adam, mlp, seed_everything, validation_split


class DualEncoder(nn.Module):
    """Encoders ``mod1 -> R^d`` and ``mod2 -> R^d`` (L2-normalised) and a learned logit scale."""

    def __init__(self, n_mod1: int, n_mod2: int, hidden: int, n_latent: int, dropout: float) -> None:
        super().__init__()
        self.encode1 = mlp([n_mod1, hidden, hidden, n_latent], dropout=dropout)
        self.encode2 = mlp([n_mod2, hidden, hidden, n_latent], dropout=dropout)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))  # CLIP's start

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.normalize(self.encode1(x1), dim=1), F.normalize(self.encode2(x2), dim=1)

    def loss(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE: each cell must pick its partner among the minibatch's other modality."""
        z1, z2 = self(x1, x2)
        logits = self.logit_scale.clamp(max=float(np.log(100))).exp() * z1 @ z2.T
        labels = torch.arange(len(x1), device=x1.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


@dataclass
class ContrastiveConfig:
    hidden: int = 256
    n_latent: int = 64
    dropout: float = 0.2
    epochs: int = 60
    batch_size: int = 512
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 8


def within_batch_minibatches(
    batches: np.ndarray, size: int, generator: np.random.Generator
) -> list[np.ndarray]:
    """Index arrays of at most ``size`` cells, each from one batch, in random order (2+ cells each)."""
    chunks = []
    for name in np.unique(batches):
        cells = generator.permutation(np.flatnonzero(batches == name))
        n_chunks = max(1, int(np.ceil(len(cells) / size)))
        chunks += [c for c in np.array_split(cells, n_chunks) if len(c) >= 2]
    return [chunks[i] for i in generator.permutation(len(chunks))]


def fit_paired(
    model: nn.Module,
    loss: Callable[[torch.Tensor], torch.Tensor],
    batches: np.ndarray,
    config: ContrastiveConfig,
    seed: int,
    validation: np.ndarray | None = None,
) -> nn.Module:
    """Train ``model`` by AdamW on ``loss(cells)`` over within-batch minibatches of cell indices,
    keeping the weights of the epoch with the lowest loss on the ``validation`` cells (a boolean
    mask; default: a held-out batch, see :func:`validation_split`). Shared by the matching models
    of this package."""
    batches = np.asarray(batches).astype(str)
    val = validation_split(batches, seed) if validation is None else np.asarray(validation, dtype=bool)
    optimiser = adam(model.parameters(), config.learning_rate, config.weight_decay, decoupled=True)
    rng = np.random.default_rng(seed)
    val_chunks = within_batch_minibatches(batches[val], config.batch_size, rng)
    if not val_chunks and validation is not None:
        # Too few cells of one batch in the given validation cells (a fold of a small dataset):
        # early stopping on them would keep the first epoch's weights.
        print(f"{len(np.flatnonzero(val))} validation cells make no within-batch minibatch: "
              "validating on a held-out batch instead", file=sys.stderr)  # fmt: skip
        val = validation_split(batches, seed)
        val_chunks = within_batch_minibatches(batches[val], config.batch_size, rng)
    if not val_chunks:
        raise ValueError("no validation minibatch of 2 or more cells of one batch: too few training cells")
    train_ix, val_ix = np.flatnonzero(~val), np.flatnonzero(val)
    val_chunks = [val_ix[c] for c in val_chunks]
    device = next(model.parameters()).device
    best = BestEpoch(model, config.patience, min_delta=1e-4)
    log = EpochLog(type(model).__name__, config.epochs)
    for epoch in range(config.epochs):
        model.train()
        for chunk in within_batch_minibatches(batches[train_ix], config.batch_size, rng):
            optimiser.zero_grad()
            loss(torch.as_tensor(train_ix[chunk], device=device)).backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            losses = [float(loss(torch.as_tensor(c, device=device))) for c in val_chunks]
        val_loss = float(np.mean(losses))
        log(epoch, validation_loss=val_loss)
        if best.stop_after(epoch, val_loss):
            break
    return best.restore()


def train_dual_encoder(
    x1: np.ndarray,
    x2: np.ndarray,
    batches: np.ndarray,
    config: ContrastiveConfig,
    device: torch.device,
    seed: int,
    validation: np.ndarray | None = None,
) -> DualEncoder:
    """Fit a :class:`DualEncoder` on paired rows of ``x1`` and ``x2`` (see :func:`fit_paired`)."""
    seed_everything(seed)
    model = DualEncoder(x1.shape[1], x2.shape[1], config.hidden, config.n_latent, config.dropout).to(device)
    t1 = torch.as_tensor(x1, dtype=torch.float32, device=device)
    t2 = torch.as_tensor(x2, dtype=torch.float32, device=device)

    def pair_loss(cells: torch.Tensor) -> torch.Tensor:
        return model.loss(t1[cells], t2[cells])

    return fit_paired(model, pair_loss, batches, config, seed, validation)


def embed(
    model: DualEncoder, x1: np.ndarray, x2: np.ndarray, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm embeddings of mod1 rows ``x1`` and mod2 rows ``x2`` (any numbers of rows)."""
    with torch.no_grad():
        z1 = F.normalize(model.encode1(torch.as_tensor(x1, dtype=torch.float32, device=device)), dim=1)
        z2 = F.normalize(model.encode2(torch.as_tensor(x2, dtype=torch.float32, device=device)), dim=1)
    return z1.cpu().numpy(), z2.cpu().numpy()

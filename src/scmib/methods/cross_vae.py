"""A CLUE-style cross-linked multimodal VAE (the competition's matching winner), in torch.

Each modality has its own subspace of the latent space. Every modality's
encoder projects a cell into *all* subspaces (the concatenation is the joint
embedding); the decoder of modality m reads only subspace m, so it must also
reconstruct m from the other modality's encoding (cross-reconstruction).
A cosine loss pulls the two encodings of a paired cell together and a batch
discriminator behind a gradient-reversal layer pushes batch out of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from scmib.methods.torch_models import BestEpoch, EpochLog, adam, mlp, seed_everything, validation_split


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, strength: float) -> torch.Tensor:
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.strength * grad, None


@dataclass
class CrossVAEConfig:
    hidden: int = 256
    n_latent: int = 32
    """Dimensions per modality subspace (the embedding has twice as many)."""
    dropout: float = 0.2
    epochs: int = 60
    batch_size: int = 512
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 8
    align_weight: float = 1.0
    kl_weight: float = 1e-3
    adversarial_weight: float = 0.0


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
    config: CrossVAEConfig,
    seed: int,
) -> nn.Module:
    """Train ``model`` by AdamW on ``loss(cells)`` over within-batch minibatches of cell indices
    (test cells are matched within their batch), keeping the weights of the epoch with the lowest
    loss on the validation cells of :func:`~scmib.methods.torch_models.validation_split`."""
    batches = np.asarray(batches).astype(str)
    val = validation_split(batches, seed)
    optimiser = adam(model.parameters(), config.learning_rate, config.weight_decay, decoupled=True)
    rng = np.random.default_rng(seed)
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


class CrossLinkedVAE(nn.Module):
    """Two encoders into both subspaces, one decoder per modality, a batch discriminator."""

    def __init__(self, n_features: tuple[int, int], n_batches: int, config: CrossVAEConfig) -> None:
        super().__init__()
        self.config = config
        width, d = config.hidden, config.n_latent
        self.encoders = nn.ModuleList(
            mlp([n, width, width, 4 * d], dropout=config.dropout) for n in n_features
        )
        self.decoders = nn.ModuleList(mlp([d, width, n]) for n in n_features)
        self.discriminator = mlp([2 * d, width, max(n_batches, 2)])

    def encode(self, modality: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance over both subspaces, each ``(n, 2 * n_latent)``."""
        mean, log_var = self.encoders[modality](x).chunk(2, dim=1)
        return mean, log_var.clamp(-10, 10)

    def subspace(self, z: torch.Tensor, modality: int) -> torch.Tensor:
        d = self.config.n_latent
        return z[:, modality * d : (modality + 1) * d]

    def loss(self, x: tuple[torch.Tensor, torch.Tensor], batch: torch.Tensor) -> torch.Tensor:
        config = self.config
        means, samples, kl = [], [], 0.0
        for m in range(2):
            mean, log_var = self.encode(m, x[m])
            noise = torch.randn_like(mean) if self.training else torch.zeros_like(mean)
            means.append(mean)
            samples.append(mean + noise * (0.5 * log_var).exp())
            kl = kl - 0.5 * torch.mean(1 + log_var - mean.pow(2) - log_var.exp())
        reconstruction = 0.0
        for target in range(2):  # each decoder from its own and from the other modality's encoding
            for source in range(2):
                decoded = self.decoders[target](self.subspace(samples[source], target))
                reconstruction = reconstruction + F.mse_loss(decoded, x[target])
        align = (1 - F.cosine_similarity(means[0], means[1], dim=1)).mean()
        reversed_codes = _ReverseGradient.apply(torch.cat(means), 1.0)
        adversarial = F.cross_entropy(self.discriminator(reversed_codes), torch.cat([batch, batch]))
        return (
            reconstruction
            + config.align_weight * align
            + config.kl_weight * kl
            + config.adversarial_weight * adversarial
        )


def train_cross_vae(
    x1: np.ndarray,
    x2: np.ndarray,
    batches: np.ndarray,
    config: CrossVAEConfig,
    device: torch.device,
    seed: int,
) -> CrossLinkedVAE:
    """Fit a :class:`CrossLinkedVAE` on paired rows of ``x1`` and ``x2`` (see :func:`fit_paired`)."""
    seed_everything(seed)
    codes = np.unique(np.asarray(batches).astype(str), return_inverse=True)[1]
    model = CrossLinkedVAE((x1.shape[1], x2.shape[1]), int(codes.max()) + 1, config).to(device)
    t1 = torch.as_tensor(x1, dtype=torch.float32, device=device)
    t2 = torch.as_tensor(x2, dtype=torch.float32, device=device)
    tb = torch.as_tensor(codes, dtype=torch.long, device=device)
    return fit_paired(
        model, lambda cells: model.loss((t1[cells], t2[cells]), tb[cells]), batches, config, seed
    )


def joint_embedding(model: CrossLinkedVAE, modality: int, x: np.ndarray, device: torch.device) -> np.ndarray:
    """Posterior means of cells of one modality over both subspaces, L2-normalised."""
    with torch.no_grad():
        mean, _ = model.encode(modality, torch.as_tensor(x, dtype=torch.float32, device=device))
    return F.normalize(mean, dim=1).cpu().numpy()

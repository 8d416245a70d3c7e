"""Autoencoders of the joint-embedding winners, in torch.

``JointAutoencoder`` (after JAE, the competition's winner): a residual MLP
encoder of both modalities' reductions whose latent units are partly
supervised: cell-type logits (cross-entropy), S/G2M scores (regression), and a
batch "confusion" loss that pushes a batch classifier on the latent towards
uniform predictions; a decoder reconstructs the input from the whole latent.

``SharedLinearAutoencoder`` (after LSL_AE, the Multiome online winner): one
dense encoder per modality with an orthogonality penalty on its first layer,
joined by one shared linear bottleneck, and one decoder per modality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from scmib.methods.torch_models import EpochLog, adam, mlp, seed_everything


class _Residual(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.GELU(), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


@dataclass
class AutoencoderConfig:
    hidden: int = 256
    n_latent: int = 64
    dropout: float = 0.1
    epochs: int = 40
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    type_weight: float = 1.0
    cycle_weight: float = 1.0
    confusion_weight: float = 0.5
    orthogonal_weight: float = 1e-3


class JointAutoencoder(nn.Module):
    """Latent = ``[cell-type logits | S, G2M | free units]`` of size ``n_latent``."""

    def __init__(
        self, n_input: int, n_types: int, n_cycle: int, n_batches: int, config: AutoencoderConfig
    ) -> None:
        super().__init__()
        if n_types + n_cycle >= config.n_latent:
            raise ValueError(
                f"n_latent {config.n_latent} leaves no free units beside {n_types + n_cycle} supervised"
            )
        self.n_types, self.n_cycle = n_types, n_cycle
        width = config.hidden
        self.encoder = nn.Sequential(
            nn.Linear(n_input, width),
            nn.GELU(),
            _Residual(width, config.dropout),
            _Residual(width, config.dropout),
            nn.Linear(width, config.n_latent),
        )
        self.decoder = mlp([config.n_latent, width, width, n_input], dropout=config.dropout)
        self.batch_head = nn.Linear(config.n_latent - n_types - n_cycle, n_batches)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.encoder(x)
        return latent, self.decoder(latent)


class SharedLinearAutoencoder(nn.Module):
    """Per-modality encoders joined by one linear bottleneck; per-modality decoders."""

    def __init__(self, n_inputs: tuple[int, int], config: AutoencoderConfig) -> None:
        super().__init__()
        width = config.hidden
        self.encoders = nn.ModuleList([mlp([n, width, width], dropout=config.dropout) for n in n_inputs])
        self.bottleneck = nn.Linear(2 * width, config.n_latent)
        self.decoders = nn.ModuleList(
            [mlp([config.n_latent, width, n], dropout=config.dropout) for n in n_inputs]
        )

    def encode(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        hidden = [F.gelu(encoder(x)) for encoder, x in zip(self.encoders, (x1, x2), strict=True)]
        return self.bottleneck(torch.cat(hidden, dim=1))

    def orthogonality(self) -> torch.Tensor:
        """``sum ||W W^T - I||²`` over each encoder's first layer: keeps its units decorrelated."""
        total = torch.zeros(())
        for encoder in self.encoders:
            weight = encoder[0].weight
            gram = weight @ weight.T
            total = total + ((gram - torch.eye(len(gram), device=gram.device)) ** 2).sum()
        return total


def _minibatches(n: int, size: int, generator: np.random.Generator) -> list[np.ndarray]:
    order = generator.permutation(n)
    return [c for c in np.array_split(order, max(1, int(np.ceil(n / size)))) if len(c) >= 2]


def train_joint_autoencoder(
    inputs: np.ndarray,
    types: np.ndarray,
    cycle: np.ndarray | None,
    batches: np.ndarray,
    config: AutoencoderConfig,
    device: torch.device,
    seed: int,
) -> np.ndarray:
    """Train JAE on ``inputs`` (cells x features) and return the latent (cells x ``n_latent``).

    ``types`` are integer labels (true or pseudo), ``cycle`` cells x 2 scores or
    None, ``batches`` integer batch codes.
    """
    seed_everything(seed)
    n_types, n_batches = int(types.max()) + 1, int(batches.max()) + 1
    n_cycle = 0 if cycle is None else cycle.shape[1]
    model = JointAutoencoder(inputs.shape[1], n_types, n_cycle, n_batches, config).to(device)
    x = torch.as_tensor(inputs, dtype=torch.float32, device=device)
    t = torch.as_tensor(types, dtype=torch.long, device=device)
    b = torch.as_tensor(batches, dtype=torch.long, device=device)
    c = None if cycle is None else torch.as_tensor(cycle, dtype=torch.float32, device=device)
    body = [p for name, p in model.named_parameters() if not name.startswith("batch_head")]
    optimizer = adam(body, config.learning_rate, config.weight_decay, decoupled=True)
    # torch's AdamW default decay (0.01) for the head, as it has always been trained.
    head_optimizer = adam(model.batch_head.parameters(), config.learning_rate, 0.01, decoupled=True)
    generator = np.random.default_rng(seed)
    uniform = torch.full((n_batches,), 1.0 / n_batches, device=device)
    log = EpochLog("JointAutoencoder", config.epochs)
    loss = None  # no minibatch of two cells: nothing trains
    for epoch in range(config.epochs):
        model.train()
        for chunk in _minibatches(len(inputs), config.batch_size, generator):
            ix = torch.as_tensor(chunk, device=device)
            latent, reconstruction = model(x[ix])
            loss = F.mse_loss(reconstruction, x[ix])
            loss = loss + config.type_weight * F.cross_entropy(latent[:, :n_types], t[ix])
            if c is not None:
                loss = loss + config.cycle_weight * F.mse_loss(latent[:, n_types : n_types + n_cycle], c[ix])
            # Confusion: the batch head's prediction from the free units should be uniform.
            free = latent[:, n_types + n_cycle :]
            log_p = F.log_softmax(model.batch_head(free), dim=1)
            loss = loss + config.confusion_weight * F.kl_div(
                log_p, uniform.expand_as(log_p), reduction="batchmean"
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            # The head itself learns to tell batches apart from the (detached) free units.
            head_loss = F.cross_entropy(model.batch_head(free.detach()), b[ix])
            head_optimizer.zero_grad()
            head_loss.backward()
            head_optimizer.step()
        log(epoch, last_minibatch_loss=float(loss) if loss is not None else float("nan"))
    model.eval()
    with torch.no_grad():
        return model.encoder(x).cpu().numpy()


def train_shared_linear_autoencoder(
    inputs: tuple[np.ndarray, np.ndarray], config: AutoencoderConfig, device: torch.device, seed: int
) -> np.ndarray:
    """Train LSL_AE on the two modalities' inputs and return the bottleneck (cells x ``n_latent``)."""
    seed_everything(seed)
    model = SharedLinearAutoencoder((inputs[0].shape[1], inputs[1].shape[1]), config).to(device)
    x1, x2 = (torch.as_tensor(a, dtype=torch.float32, device=device) for a in inputs)
    optimizer = adam(model.parameters(), config.learning_rate, config.weight_decay, decoupled=True)
    generator = np.random.default_rng(seed)
    log = EpochLog("SharedLinearAutoencoder", config.epochs)
    loss = None  # no minibatch of two cells: nothing trains
    for epoch in range(config.epochs):
        model.train()
        for chunk in _minibatches(len(x1), config.batch_size, generator):
            ix = torch.as_tensor(chunk, device=device)
            latent = model.encode(x1[ix], x2[ix])
            loss = F.mse_loss(model.decoders[0](latent), x1[ix]) + F.mse_loss(
                model.decoders[1](latent), x2[ix]
            )
            loss = loss + config.orthogonal_weight * model.orthogonality().to(loss.device)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        log(epoch, last_minibatch_loss=float(loss) if loss is not None else float("nan"))
    model.eval()
    with torch.no_grad():
        return model.encode(x1, x2).cpu().numpy()

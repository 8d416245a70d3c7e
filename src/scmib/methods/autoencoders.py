"""The LSL_AE-style autoencoder, in torch (JAE, the winner's, is :mod:`scmib.methods.jae`).

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


@dataclass
class AutoencoderConfig:
    hidden: int = 256
    n_latent: int = 64
    dropout: float = 0.1
    epochs: int = 40
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    orthogonal_weight: float = 1e-3


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

"""Small torch models and a seeded training loop with early stopping, shared by methods.

torch is imported lazily by callers (``import scmib.methods.torch_models``) so
components that do not train networks never pay for it.
"""

from __future__ import annotations

import copy
import itertools
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class EpochLog:
    """Writes a line per training epoch to stderr (the job's log): the epoch, its losses and its
    seconds, so a log shows how far training got and what one epoch costs (how
    ``benchmarks/competition_scale.py --epochs`` runs are scaled up). With ``every`` > 1 only
    every ``every``-th epoch and the last are written, with the mean seconds of an epoch since
    the previous line (thousands of short full-batch epochs)."""

    def __init__(self, model: str, n_epochs: int, every: int = 1) -> None:
        self.model, self.n_epochs, self.every = model, n_epochs, every
        self.since, self.last = time.perf_counter(), -1

    def __call__(self, epoch: int, **losses: float) -> None:
        if (epoch + 1) % self.every and epoch + 1 != self.n_epochs:
            return
        now = time.perf_counter()
        seconds = (now - self.since) / (epoch - self.last)
        values = ", ".join(f"{name} {value:.4g}" for name, value in losses.items())
        print(
            f"{self.model} epoch {epoch + 1}/{self.n_epochs}: {values} ({seconds:.2f} s)",
            file=sys.stderr,
            flush=True,
        )
        self.since, self.last = now, epoch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when a GPU is visible, else the CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) so a run is repeatable on one device."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def mlp(
    sizes: list[int],
    dropout: float | Sequence[float] = 0.0,
    input_dropout: float = 0.0,
    activation: type[nn.Module] = nn.GELU,
    batch_norm: bool = True,
    output_activation: bool = False,
) -> nn.Sequential:
    """A feed-forward network ``sizes[0] -> ... -> sizes[-1]``: each hidden layer linear, batch
    norm (``batch_norm``), ``activation`` and dropout (one rate, or one per hidden layer); the last
    layer linear, followed by ``activation`` too with ``output_activation``."""
    n_hidden = len(sizes) - 2
    rates = [float(dropout)] * n_hidden if np.ndim(dropout) == 0 else [float(r) for r in dropout]
    if len(rates) != n_hidden:
        raise ValueError(f"{len(rates)} dropout rates for {n_hidden} hidden layers")
    layers: list[nn.Module] = [nn.Dropout(input_dropout)] if input_dropout > 0 else []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < n_hidden:
            layers += [nn.BatchNorm1d(n_out)] if batch_norm else []
            layers.append(activation())
            if rates[i] > 0:
                layers.append(nn.Dropout(rates[i]))
        elif output_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


def adam(
    parameters: Iterable[nn.Parameter],
    learning_rate: float,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> torch.optim.Optimizer:
    """Adam (``decoupled``: AdamW) over ``parameters``, with torch's fused kernel on the CPU and CUDA.

    torch's default on the CPU updates each parameter tensor in a Python loop of
    several element-wise kernels: for a wide output layer (Novel's 512 x 13,953
    ADT->GEX decoder) that loop was about a fifth of an epoch. The fused kernel
    computes the same update in one pass over each tensor.
    """
    parameters = list(parameters)
    optimiser = torch.optim.AdamW if decoupled else torch.optim.Adam
    return optimiser(
        parameters, lr=learning_rate, weight_decay=weight_decay, fused=fused_kernel_for(parameters)
    )


def keras_dense(n_in: int, n_out: int) -> nn.Linear:
    """A linear layer initialised as Keras' ``Dense`` (the winners' TensorFlow models):
    Glorot-uniform weights, zero biases."""
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def keras_adam(model: nn.Module, learning_rate: float) -> torch.optim.Adam:
    """Keras' Adam (epsilon 1e-7, no weight decay), with torch's fused kernel (see :func:`adam`)."""
    parameters = list(model.parameters())
    return torch.optim.Adam(parameters, lr=learning_rate, eps=1e-7, fused=fused_kernel_for(parameters))


def fused_kernel_for(parameters: list[nn.Parameter]) -> bool:
    """Whether torch has a fused Adam kernel for the device of ``parameters`` (the CPU and CUDA)."""
    return not parameters or parameters[0].device.type in ("cpu", "cuda")


class BestEpoch:
    """Early stopping: keeps a copy of ``model``'s weights at the epoch with the lowest validation
    loss (lower than the best so far by more than ``min_delta``) and says when ``patience`` epochs
    have passed without such an epoch. ``keep_weights=False`` keeps no copy (Keras'
    ``EarlyStopping`` default: training stops with the last weights)."""

    def __init__(self, model: nn.Module, patience: int, min_delta: float, keep_weights: bool = True) -> None:
        self.model, self.patience, self.min_delta = model, patience, min_delta
        self.keep_weights = keep_weights
        self.loss, self.epoch = float("inf"), 0
        self.state = copy.deepcopy(model.state_dict()) if keep_weights else None

    def stop_after(self, epoch: int, loss: float) -> bool:
        """Record ``epoch``'s validation loss; True when training should stop."""
        if loss < self.loss - self.min_delta:
            self.loss, self.epoch = loss, epoch
            if self.keep_weights:
                self.state = copy.deepcopy(self.model.state_dict())
            return False
        return epoch - self.epoch >= self.patience

    def restore(self) -> nn.Module:
        """``model`` with the kept weights, in eval mode."""
        self.model.load_state_dict(self.state)
        return self.model.eval()


def shuffled_minibatches(
    n: int, size: int, generator: np.random.Generator, min_size: int = 1
) -> list[np.ndarray]:
    """One epoch's minibatches of ``n`` cells in a new random order, ``size`` each, the last one
    shorter (Keras' ``shuffle=True``); a last one under ``min_size`` cells is left out (batch norm
    cannot train on one cell)."""
    order = generator.permutation(n)
    return [order[i : i + size] for i in range(0, n, size) if min(size, n - i) >= min_size]


def rmse_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sqrt(MSE): Novel's loss, the competition metric itself."""
    return torch.sqrt(nn.functional.mse_loss(prediction, target) + 1e-12)


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    """Epochs without improvement of the validation loss before stopping."""
    loss: str = "mse"  # mse | rmse
    validation_floor: float | None = None
    """Clip validation predictions below this value before their loss (Novel scores its
    validation epochs on predictions with negatives set to 0), or None."""
    decoupled_weight_decay: bool = False
    """AdamW's weight decay instead of Adam's L2 penalty."""


def train_regressor(
    build: Callable[[], nn.Module],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: TrainConfig,
    device: torch.device,
    seed: int,
) -> tuple[nn.Module, dict[str, float]]:
    """Build a model with ``build()`` after seeding, train it with Adam (AdamW with
    ``config.decoupled_weight_decay``), and keep the weights of the best validation epoch (early
    stopping).

    Taking a builder rather than a model means weight initialisation is always seeded.
    Returns the model (on ``device``, in eval mode) and ``{"best_epoch", "best_val_loss"}``.
    """
    seed_everything(seed)
    model = build()
    loss_fn = rmse_loss if config.loss == "rmse" else nn.functional.mse_loss
    model = model.to(device)
    optimiser = adam(
        model.parameters(), config.learning_rate, config.weight_decay, config.decoupled_weight_decay
    )
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    yt = torch.as_tensor(y_train, dtype=torch.float32, device=device)
    xv = torch.as_tensor(x_val, dtype=torch.float32, device=device)
    yv = torch.as_tensor(y_val, dtype=torch.float32, device=device)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    best = BestEpoch(model, config.patience, min_delta=1e-6)
    log = EpochLog("regressor", config.epochs)
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(xt), generator=generator).to(device)
        for start in range(0, len(xt), config.batch_size):
            batch = order[start : start + config.batch_size]
            if len(batch) < 2:  # BatchNorm needs two samples
                continue
            optimiser.zero_grad()
            loss_fn(model(xt[batch]), yt[batch]).backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            prediction = model(xv)
            if config.validation_floor is not None:
                prediction = prediction.clamp_min(config.validation_floor)
            val_loss = float(loss_fn(prediction, yv))
        log(epoch, validation_loss=val_loss)
        if best.stop_after(epoch, val_loss):
            break
    return best.restore(), {"best_epoch": best.epoch, "best_val_loss": best.loss}


def predict(model: nn.Module, x: np.ndarray, device: torch.device, batch_size: int = 4096) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            chunk = torch.as_tensor(x[start : start + batch_size], dtype=torch.float32, device=device)
            out.append(model(chunk).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def validation_split(batches: np.ndarray, seed: int, fraction: float = 0.15) -> np.ndarray:
    """Boolean mask of validation cells: one whole held-out batch when there are 3 or more
    batches (early stopping then rewards generalising to new batches), else a random fraction."""
    rng = np.random.default_rng(seed)
    names = np.unique(batches)
    if len(names) >= 3:
        return batches == rng.choice(names)
    return rng.random(len(batches)) < fraction


def fit_predict_clipped(
    build: Callable[[], nn.Module],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    batches: np.ndarray,
    config: TrainConfig,
    device: str,
    seed: int,
) -> np.ndarray:
    """Train on all but a validation split of the training cells (see :func:`validation_split`),
    predict the test cells, and clip each feature to its training range."""
    val = validation_split(np.asarray(batches).astype(str), seed)
    torch_device = resolve_device(device)
    model, _ = train_regressor(
        build, x_train[~val], y_train[~val], x_train[val], y_train[val], config, torch_device, seed
    )
    return np.clip(predict(model, x_test, torch_device), y_train.min(axis=0), y_train.max(axis=0))

"""CLUE (team GLUE: Cao, Tu and Xia), the competition's matching winner, as its code computes it.

CLUE is the ``SCCLUEModel`` of the pre-release ``scglue`` 0.1.1 its submission shipped
(``scglue/models/scclue.py``) with the preprocessing of its ``utils.py`` and the settings of its
``train``/``run`` scripts, written here in plain torch:

* inputs: the GEX counts of variable genes (scanpy's ``seurat_v3`` per batch, 5,000 with ADT plus
  the genes of the proteins, 10,000 with ATAC), every protein, or the 30,000 peaks with the most
  counts, as the counts each decoder models; the encoders read 100 components instead (GEX and ADT:
  the normalised values scaled on the training cells, clipped at 10, projected on the eigenvectors
  of ``XᵀX``; ATAC: an LSI of the counts), all fitted on the training cells;
* each modality's encoder maps a cell into every modality's subspace (one small network per
  subspace, Normal posteriors); the decoder of a modality reads its own subspace and the batch and
  is negative binomial on its counts, with a library size the encoder estimates from the counts;
* losses: the ELBO of each modality, the cross-reconstruction of each modality from the mean of
  the paired cells' (L2-normalised) samples, a cosine loss pulling each sample to that mean, and a
  discriminator that tells the modalities apart from the posterior means (with the batch as
  input), trained in turn against the encoders (``lam_align``);
* RMSprop at 2e-3 on batches of 128 with a tenth of the cells for validation, the discriminator's
  input noised for ``align_burnin`` epochs, early stopping and a learning rate divided by 10 on
  plateaus of the validation loss, all sized by scglue's rule (about 36,000 steps at most);
* then the same model fine-tuned at 1e-3 on the training and the (unpaired) test cells together,
  and the test cells matched within their batch by shared nearest neighbours (k = 1) of their
  posterior means.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass

import anndata as ad
import numpy as np
import scipy.sparse as sp
import torch
from torch import distributions as D
from torch import nn
from torch.nn import functional as F

from scmib.methods.torch_models import EpochLog, seed_everything

#: scglue's ``EPS``: added to standard deviations and means before a log.
EPS = 1e-7
#: Genes of the competition's proteins that CLUE's GEX preprocessing keeps with ADT, variable or not
#: (``GEXPreprocessing.MERGE_ADT``).
PROTEIN_GENES_FILE = "genesets/clue_protein_genes.tsv"


def protein_genes() -> frozenset[str]:
    """CLUE's genes of the proteins (:data:`PROTEIN_GENES_FILE`)."""
    from importlib import resources

    with resources.files("scmib").joinpath(PROTEIN_GENES_FILE).open() as handle:
        lines = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    return frozenset(lines[1:])


@dataclass(frozen=True)
class ClueSettings:
    """CLUE's hyperparameters for one kind of data (its ``train`` script)."""

    n_genes: int
    latent_dim: int
    x2u_h_depth: int
    x2u_h_dim: int
    u2x_h_depth: int
    u2x_h_dim: int
    du_h_depth: int
    du_h_dim: int
    dropout: float
    lam_data: float
    lam_kl: float
    lam_align: float
    lam_cross: float
    lam_cos: float
    n_comps: int = 100
    n_peaks: int = 30_000
    batch_size: int = 128
    val_split: float = 0.1
    lr: float = 2e-3
    finetune_lr: float = 1e-3
    finetune_patience: int = 8
    finetune_reduce_lr_patience: int = 3


CITE = ClueSettings(5000, 20, 2, 512, 1, 128, 2, 128, 0.2, 1.0, 1.0, 2.0, 2.0, 1.0)
MULTIOME = ClueSettings(10000, 50, 2, 512, 1, 256, 1, 256, 0.2, 1.0, 0.3, 0.02, 1.0, 0.02)


def settings_for(other: str) -> ClueSettings:
    """CLUE's settings for GEX paired with ``other`` (``ADT`` or ``ATAC``)."""
    return {"ADT": CITE, "ATAC": MULTIOME}[other]


# ---------------------------------------------------------------- preprocessing


def variable_genes(
    counts: sp.spmatrix, batches: np.ndarray, genes: np.ndarray, settings: ClueSettings, with_adt: bool
) -> np.ndarray:
    """Boolean mask of CLUE's GEX features: scanpy's ``seurat_v3`` variable genes of the training
    counts with the batch as ``batch_key`` (every gene where there are no more than
    ``n_genes``), plus, with ADT, the genes of :func:`protein_genes`."""
    import scanpy as sc

    if counts.shape[1] <= settings.n_genes:
        keep = np.ones(counts.shape[1], dtype=bool)
    else:
        view = ad.AnnData(X=sp.csr_matrix(counts, dtype=np.float32), obs={"batch": batches})
        sc.pp.highly_variable_genes(view, n_top_genes=settings.n_genes, flavor="seurat_v3", batch_key="batch")
        keep = view.var["highly_variable"].to_numpy()
    if with_adt:
        keep = keep | np.isin(np.asarray(genes).astype(str), list(protein_genes()))
    return keep


#: Cells densified at a time where CLUE made whole matrices dense (70,000 x 5,000 GEX values).
CHUNK = 4096


def _dense_rows(values: np.ndarray | sp.spmatrix, start: int) -> np.ndarray:
    block = values[start : start + CHUNK]
    return block.toarray() if sp.issparse(block) else np.asarray(block)


def scaled_pca(
    train: np.ndarray | sp.spmatrix, test: np.ndarray | sp.spmatrix, n_comps: int
) -> tuple[np.ndarray, np.ndarray]:
    """CLUE's GEX and ADT input: each feature scaled by its training mean and SD, clipped to
    [-10, 10], projected on the top ``n_comps`` right singular vectors of ``XᵀX`` (scikit-learn's
    ``randomized_svd``, 15 iterations, seed 0) of the training cells. A feature without spread in
    training is centred only (CLUE divided by 0). The scaled values are made dense
    :data:`CHUNK` cells at a time (``XᵀX`` summed over the chunks), never all at once."""
    from sklearn.utils.extmath import randomized_svd

    n = train.shape[0]
    if sp.issparse(train):
        mean = np.asarray(train.mean(axis=0, dtype=np.float64)).ravel()
        square = np.asarray(train.multiply(train).mean(axis=0, dtype=np.float64)).ravel()
    else:
        mean = np.asarray(train, dtype=np.float64).mean(axis=0)
        square = np.square(np.asarray(train, dtype=np.float64)).mean(axis=0)
    sd = np.sqrt(np.maximum(square - np.square(mean), 0))
    sd[sd == 0] = 1.0

    def scaled(values: np.ndarray | sp.spmatrix, start: int) -> np.ndarray:
        return np.clip((_dense_rows(values, start) - mean) / sd, -10, 10)

    gram = sum(block.T @ block for block in (scaled(train, i) for i in range(0, n, CHUNK)))
    _, _, vh = randomized_svd(gram, min(n_comps, train.shape[1]), n_iter=15, random_state=0)

    def project(values: np.ndarray | sp.spmatrix) -> np.ndarray:
        parts = [scaled(values, i) @ vh.T for i in range(0, values.shape[0], CHUNK)]
        return np.concatenate(parts).astype(np.float32)

    return project(train), project(test)


def _atac_tfidf(counts: sp.spmatrix, idf: np.ndarray) -> sp.csr_matrix:
    """``log1p`` of each cell's TF-IDF scaled to 10,000 (CLUE's ``ATACPreprocessing``), computed on
    one float64 copy of the counts' values."""
    x = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    for scale_columns in (False, True):
        if scale_columns:
            x.data *= idf[x.indices]
        totals = np.bincount(rows, weights=x.data, minlength=x.shape[0])
        target = 1e4 if scale_columns else 1.0
        x.data *= np.divide(target, totals, out=np.zeros_like(totals), where=totals > 0)[rows]
    np.log1p(x.data, out=x.data)
    return x


def clue_lsi(
    train_counts: sp.spmatrix, test_counts: sp.spmatrix, n_comps: int
) -> tuple[np.ndarray, np.ndarray]:
    """CLUE's ATAC input: TF-IDF of every peak's counts (idf: training cells over the peak's
    training counts), each cell scaled to 10,000, ``log1p``, ``randomized_svd`` of the training
    cells (15 iterations, seed 0), ``X V / s``, each cell z-scored (ddof 1). A peak without
    training counts gets idf 0 (CLUE's is infinite)."""
    from sklearn.utils.extmath import randomized_svd

    totals = np.asarray(train_counts.sum(axis=0, dtype=np.float64)).ravel()
    idf = np.divide(train_counts.shape[0], totals, out=np.zeros_like(totals), where=totals > 0)
    train = _atac_tfidf(train_counts, idf)
    _, s, vh = randomized_svd(train, min(n_comps, min(train.shape) - 1), n_iter=15, random_state=0)

    def lsi(x: sp.csr_matrix) -> np.ndarray:
        reduced = (x @ vh.T) / s
        reduced = reduced - reduced.mean(axis=1, keepdims=True)
        sd = reduced.std(axis=1, ddof=1, keepdims=True)
        return (reduced / np.where(sd > 0, sd, 1.0)).astype(np.float32)

    first = lsi(train)
    del train  # one TF-IDF copy at a time
    return first, lsi(_atac_tfidf(test_counts, idf))


def top_peaks(values: sp.spmatrix, n_peaks: int) -> np.ndarray:
    """Boolean mask of the ``n_peaks`` peaks with the largest sums of ``values`` (CLUE's decoder features)."""
    totals = np.asarray(values.sum(axis=0)).ravel()
    keep = np.zeros(values.shape[1], dtype=bool)
    keep[np.argsort(totals)[-n_peaks:]] = True
    return keep


# ---------------------------------------------------------------- network


class ElementEncoder(nn.Module):
    """One subspace's encoder: ``h_depth`` layers of linear, LeakyReLU(0.2), batch norm and
    dropout, then the posterior's mean and ``softplus`` SD."""

    def __init__(self, n_in: int, n_out: int, h_depth: int, h_dim: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(h_depth):
            layers += [nn.Linear(n_in, h_dim), nn.LeakyReLU(0.2), nn.BatchNorm1d(h_dim), nn.Dropout(dropout)]
            n_in = h_dim
        self.hidden = nn.Sequential(*layers)
        self.loc, self.std_lin = nn.Linear(n_in, n_out), nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(x)
        return self.loc(h), F.softplus(self.std_lin(h)) + EPS


class CompositeEncoder(nn.Module):
    """A modality's encoder into every subspace (``NBCompositeDataEncoder``): the concatenated
    Normal posterior from the reduced input, and one library size per subspace estimated from
    the counts (``relu`` of a linear map)."""

    def __init__(
        self, n_reduced: int, n_counts: int, latent_dim: int, n_modalities: int, settings: ClueSettings
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(
            ElementEncoder(n_reduced, latent_dim, settings.x2u_h_depth, settings.x2u_h_dim, settings.dropout)
            for _ in range(n_modalities)
        )
        self.est_l = nn.Linear(n_counts, n_modalities)

    def forward(
        self, counts: torch.Tensor | None, reduced: torch.Tensor
    ) -> tuple[D.Normal, torch.Tensor | None]:
        locs, stds = zip(*(encoder(reduced) for encoder in self.encoders), strict=True)
        library = None if counts is None else F.relu(self.est_l(counts))
        return D.Normal(torch.cat(locs, dim=1), torch.cat(stds, dim=1), validate_args=False), library


class NBDecoder(nn.Module):
    """A modality's decoder (``NBDataDecoder``): its subspace and the batch (one-hot, fed to every
    layer) through ``h_depth`` layers of linear, LeakyReLU, batch norm and dropout to a
    per-batch scaled softmax of the features times the library size, negative binomial with a
    per-batch dispersion."""

    def __init__(self, latent_dim: int, n_features: int, n_batches: int, settings: ClueSettings) -> None:
        super().__init__()
        self.n_batches = n_batches
        self.layers = nn.ModuleList()
        n_in = latent_dim + n_batches
        for _ in range(settings.u2x_h_depth):
            self.layers.append(
                nn.Sequential(
                    nn.Linear(n_in, settings.u2x_h_dim),
                    nn.LeakyReLU(0.2),
                    nn.BatchNorm1d(settings.u2x_h_dim),
                    nn.Dropout(settings.dropout),
                )
            )
            n_in = settings.u2x_h_dim + n_batches
        self.loc = nn.Linear(n_in, n_features)
        self.scale_lin = nn.Parameter(torch.zeros(n_features, n_batches))
        self.bias = nn.Parameter(torch.zeros(n_features, n_batches))
        self.log_theta = nn.Parameter(torch.zeros(n_features, n_batches))

    def forward(self, u: torch.Tensor, batch: torch.Tensor, library: torch.Tensor) -> D.NegativeBinomial:
        one_hot = F.one_hot(batch, num_classes=self.n_batches).to(u.dtype)
        h = torch.cat([u, one_hot], dim=1)
        for layer in self.layers:
            h = torch.cat([layer(h), one_hot], dim=1)
        logit_mu = F.softplus(self.scale_lin.T[batch]) * self.loc(h) + self.bias.T[batch]
        mu = F.softmax(logit_mu, dim=1) * library.unsqueeze(1)
        log_theta = self.log_theta.T[batch]
        # Not validated: the check that counts are whole took 5% of a step (128 x 13,619 peaks).
        return D.NegativeBinomial(log_theta.exp(), logits=(mu + EPS).log() - log_theta, validate_args=False)


class Discriminator(nn.Module):
    """Tells the modalities apart from posterior means and the batch (one-hot input)."""

    def __init__(self, n_in: int, n_modalities: int, n_batches: int, settings: ClueSettings) -> None:
        super().__init__()
        self.n_batches = n_batches
        layers: list[nn.Module] = []
        n_in += n_batches
        for _ in range(settings.du_h_depth):
            layers += [nn.Linear(n_in, settings.du_h_dim), nn.LeakyReLU(0.2), nn.Dropout(settings.dropout)]
            n_in = settings.du_h_dim
        layers.append(nn.Linear(n_in, n_modalities))
        self.net = nn.Sequential(*layers)

    def forward(self, u: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([u, F.one_hot(batch, num_classes=self.n_batches).to(u.dtype)], dim=1))


class Clue(nn.Module):
    """CLUE's network (``SCCLUE``) for two modalities."""

    def __init__(
        self, n_reduced: tuple[int, int], n_counts: tuple[int, int], n_batches: int, settings: ClueSettings
    ) -> None:
        super().__init__()
        d = settings.latent_dim
        self.settings = settings
        self.x2u = nn.ModuleList(
            CompositeEncoder(r, c, d, 2, settings) for r, c in zip(n_reduced, n_counts, strict=True)
        )
        self.u2x = nn.ModuleList(NBDecoder(d, c, n_batches, settings) for c in n_counts)
        self.du = Discriminator(2 * d, 2, n_batches, settings)

    def losses(
        self, data: Minibatch, epoch: int, align_burnin: int, dsc_only: bool = False
    ) -> dict[str, torch.Tensor]:
        """``SCCLUETrainer.compute_losses`` (``epoch`` from 1): the discriminator's loss alone, or
        with every generator loss."""
        s = self.settings
        u, library = zip(
            *(self.x2u[k](None if dsc_only else data.counts[k], data.reduced[k]) for k in range(2)),
            strict=True,
        )
        u_cat = torch.cat([u[k].mean for k in range(2)])
        batch_cat = torch.cat([data.batch[k] for k in range(2)])
        flag_cat = torch.cat([torch.full_like(data.batch[k], k) for k in range(2)])
        anneal = max(1 - (epoch - 1) / align_burnin, 0) if align_burnin else 0
        if anneal:
            u_cat = u_cat + anneal * torch.randn_like(u_cat)
        dsc_loss = F.cross_entropy(self.du(u_cat, batch_cat), flag_cat)
        if dsc_only:
            return {"dsc_loss": s.lam_align * dsc_loss}

        samples = [F.normalize(u[k].rsample(), dim=1) for k in range(2)]
        prior = D.Normal(torch.zeros((), device=u_cat.device), torch.ones((), device=u_cat.device))
        split = [torch.stack(torch.tensor_split(samples[k], 2, dim=1)) for k in range(2)]
        elbo = 0.0
        for k in range(2):
            nll = -self.u2x[k](split[k][k], data.batch[k], library[k][:, k]).log_prob(data.counts[k]).mean()
            kl = D.kl_divergence(u[k], prior).sum(dim=1).mean() / data.counts[k].shape[1]
            elbo = elbo + nll + s.lam_kl * kl
        present = data.paired.T  # (2, n): which rows hold a cell of each modality
        stacked = torch.stack(samples)
        weights = present.unsqueeze(2).to(stacked.dtype)
        mean = F.normalize((stacked * weights).sum(dim=0) / weights.sum(dim=0), dim=1)
        mean_split = torch.stack(torch.tensor_split(mean, 2, dim=1))
        cross = sum(
            -self.u2x[k](mean_split[k, m], data.batch[k][m], library[k][m, k])
            .log_prob(data.counts[k][m])
            .mean()
            for k, m in enumerate(present)
        )
        cos = sum((1 - F.cosine_similarity(stacked[k, m], mean[m])).mean() for k, m in enumerate(present))
        gen_loss = s.lam_data * elbo + s.lam_cross * cross + s.lam_cos * cos - s.lam_align * dsc_loss
        return {"dsc_loss": dsc_loss, "gen_loss": gen_loss}

    @torch.no_grad()
    def encode(
        self, modality: int, reduced: np.ndarray, device: torch.device, batch_size: int = 4096
    ) -> np.ndarray:
        """Posterior means (cells x 2 ``latent_dim``) of one modality's cells (``encode_data``)."""
        self.eval()
        parts = [
            self.x2u[modality](None, torch.as_tensor(reduced[i : i + batch_size], device=device))[0].mean
            for i in range(0, len(reduced), batch_size)
        ]
        return torch.cat(parts).cpu().numpy()


# ---------------------------------------------------------------- data and training


@dataclass
class ModalityData:
    """One modality's cells: decoder counts (cells x features, CSR), reduced input, batch codes."""

    counts: sp.csr_matrix
    reduced: np.ndarray
    batch: np.ndarray


@dataclass
class Minibatch:
    counts: tuple[torch.Tensor, torch.Tensor]
    reduced: tuple[torch.Tensor, torch.Tensor]
    batch: tuple[torch.Tensor, torch.Tensor]
    paired: torch.Tensor


class Units:
    """scglue's ``AnnDataset`` of partly paired cells: each unit is a row of each modality or
    none (``-1``); a unit missing a modality is given a random row of it every epoch, masked out
    of the cross and cosine losses but not of the ELBO, as scglue does."""

    def __init__(self, data: tuple[ModalityData, ModalityData], rows: np.ndarray) -> None:
        self.data, self.rows = data, rows

    def split(self, fraction: float, rng: np.random.Generator) -> tuple[Units, Units]:
        order = rng.permutation(len(self.rows))
        cut = round((1 - fraction) * len(order))
        return Units(self.data, self.rows[order[:cut]]), Units(self.data, self.rows[order[cut:]])

    def minibatches(
        self, size: int, rng: np.random.Generator, drop_last: bool, device: torch.device
    ) -> Iterator[Minibatch]:
        """One epoch's minibatches in a new random order, each made dense as it is reached (an
        epoch of competition-size ATAC at once would hold gigabytes)."""
        rows = self.rows[rng.permutation(len(self.rows))].copy()
        paired = rows >= 0
        for k in range(2):
            missing = ~paired[:, k]
            rows[missing, k] = rng.choice(rows[~missing, k], missing.sum(), replace=True)
        n = len(rows)
        for i in range(0, n - size + 1 if drop_last and n > size else n, size):
            yield self._minibatch(rows[i : i + size], paired[i : i + size], device)

    def _minibatch(self, rows: np.ndarray, paired: np.ndarray, device: torch.device) -> Minibatch:
        def tensor(values: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(values, device=device)

        counts = tuple(tensor(self.data[k].counts[rows[:, k]].toarray()) for k in range(2))
        reduced = tuple(tensor(self.data[k].reduced[rows[:, k]]) for k in range(2))
        batch = tuple(tensor(self.data[k].batch[rows[:, k]]) for k in range(2))
        return Minibatch(counts, reduced, batch, tensor(paired))


@dataclass(frozen=True)
class Schedule:
    lr: float
    max_epochs: int
    align_burnin: int
    patience: int
    reduce_lr_patience: int


def auto_schedule(n_units: int, settings: ClueSettings, max_epochs: int = 0) -> Schedule:
    """scglue's ``AUTO`` schedule for pretraining: 12 / 72 / 9 / 3 "progress units" over the
    learning rate and the batches of an epoch (burn-in, most epochs, patience, patience of the
    learning rate), each at least that many epochs; ``max_epochs`` > 0 caps the most epochs."""
    batches_per_epoch = n_units * (1 - settings.val_split) / settings.batch_size

    def epochs(progress: float) -> int:
        return max(math.ceil(progress / settings.lr / batches_per_epoch), math.ceil(progress))

    most = epochs(72.0) if max_epochs <= 0 else min(max_epochs, epochs(72.0))
    return Schedule(settings.lr, most, epochs(12.0), epochs(9.0), epochs(3.0))


def fit(model: Clue, units: Units, schedule: Schedule, device: torch.device, seed: int, name: str) -> Clue:
    """``SCCLUETrainer.fit``: alternate discriminator and generator RMSprop steps on minibatches
    of 128, validate on a tenth of the units after each epoch; after ``align_burnin`` epochs
    early stopping and learning-rate plateaus follow the validation ``gen_loss``. As scglue's
    checkpoints, the three best epochs are kept and the latest of them restored."""
    s = model.settings
    rng = np.random.default_rng(seed)
    train, val = units.split(s.val_split, rng)
    vae_params = [*model.x2u.parameters(), *model.u2x.parameters()]
    vae_optim = torch.optim.RMSprop(vae_params, lr=schedule.lr)
    dsc_optim = torch.optim.RMSprop(model.du.parameters(), lr=schedule.lr)
    schedulers = [
        torch.optim.lr_scheduler.ReduceLROnPlateau(optim, patience=schedule.reduce_lr_patience)
        for optim in (vae_optim, dsc_optim)
    ]
    kept: list[tuple[float, int, dict]] = []  # (validation loss, epoch, weights): the 3 best
    best, waited = math.inf, 0
    log = EpochLog(name, schedule.max_epochs)
    for epoch in range(1, schedule.max_epochs + 1):
        model.train()
        for data in train.minibatches(s.batch_size, rng, drop_last=True, device=device):
            dsc = model.losses(data, epoch, schedule.align_burnin, dsc_only=True)["dsc_loss"]
            model.zero_grad(set_to_none=True)
            dsc.backward()
            dsc_optim.step()
            gen = model.losses(data, epoch, schedule.align_burnin)["gen_loss"]
            model.zero_grad(set_to_none=True)
            gen.backward()
            vae_optim.step()
        model.eval()
        with torch.no_grad():
            losses = [
                float(model.losses(data, epoch, schedule.align_burnin)["gen_loss"])
                for data in val.minibatches(s.batch_size, rng, drop_last=False, device=device)
            ]
        loss = float(np.mean(losses))
        log(epoch - 1, validation_loss=loss)
        if not math.isfinite(loss):
            raise FloatingPointError(f"{name}: the validation loss is {loss} at epoch {epoch}")
        if epoch <= schedule.align_burnin:
            continue
        if len(kept) < 3 or loss < kept[-1][0]:
            kept = sorted([*kept, (loss, epoch, copy.deepcopy(model.state_dict()))], key=lambda t: t[0])[:3]
        for scheduler in schedulers:
            scheduler.step(loss)
        if loss < best:
            best, waited = loss, 0
        else:
            waited += 1
            if waited >= schedule.patience:
                break
    if kept:
        model.load_state_dict(max(kept, key=lambda t: t[1])[2])
    return model.eval()


def clue_embeddings(
    data: tuple[ModalityData, ModalityData],
    n_train: int,
    n_batches: int,
    settings: ClueSettings,
    device: torch.device,
    seed: int,
    max_epochs: int = 0,
    finetune_epochs: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Pretrain CLUE on the paired training cells, fine-tune it with the test cells of both
    modalities (unpaired) added, and return the test cells' posterior means per modality.

    ``data[k]`` holds modality ``k``'s cells: the ``n_train`` training cells first (row ``i``
    of both modalities the same cell), then its test cells; ``batch`` codes index ``n_batches``
    batches shared by both modalities. ``max_epochs`` > 0 caps pretraining (0: scglue's rule,
    :func:`auto_schedule`); CLUE fine-tuned 50 epochs on the competition's data (5 on its
    starter cells).
    """
    seed_everything(seed)
    n_test = tuple(len(d.batch) - n_train for d in data)
    model = Clue(
        tuple(d.reduced.shape[1] for d in data), tuple(d.counts.shape[1] for d in data), n_batches, settings
    ).to(device)
    paired = np.column_stack([np.arange(n_train), np.arange(n_train)])
    fit(model, Units(data, paired), auto_schedule(n_train, settings, max_epochs), device, seed, "CLUE")
    if finetune_epochs > 0:
        first = np.column_stack([n_train + np.arange(n_test[0]), np.full(n_test[0], -1)])
        second = np.column_stack([np.full(n_test[1], -1), n_train + np.arange(n_test[1])])
        schedule = Schedule(
            settings.finetune_lr,
            finetune_epochs,
            0,
            settings.finetune_patience,
            settings.finetune_reduce_lr_patience,
        )
        units = Units(data, np.concatenate([paired, first, second]))
        fit(model, units, schedule, device, seed + 1, "CLUE fine-tuning")
    return tuple(model.encode(k, data[k].reduced[n_train:], device) for k in range(2))

"""Paired single-cell counts of the NeurIPS 2021 competition's exact shapes, seeded, with no download.

Made to prove that every component finishes at competition size, not to
score methods: cells of 22 bone-marrow types (the organisers' names, with the
erythroid lineage HSC -> ... -> Reticulocyte along which cells progress), 12 or
13 batches at four sites (site 4 held out as the test set, as in the
competition), and counts drawn cell block by cell block:

- **GEX**: negative-binomial UMI counts (Poisson-gamma, dispersion 2) around a
  log-normal gene abundance, cell-type, lineage-progress and batch effects,
  log-normal library sizes (median about 2,500 UMIs: 6-10% of entries
  non-zero, as in the real data); cycling cells raise the Tirosh S or G2/M
  genes (the first gene names), so cell-cycle scores exist.
- **ADT**: 134 proteins, dense negative-binomial counts with strong type effects.
- **ATAC**: 116,490 peaks, Poisson fragment counts of a few thousand fragments
  per cell (2-4% of entries non-zero).

Memory stays at the size of the sparse result plus one block of
``block_cells`` x features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scmib.processing.cell_cycle import tirosh_genes

#: The erythroid lineage of the organisers' annotation, earliest first, then the other types.
LINEAGE = ("HSC", "MK/E prog", "Proerythroblast", "Erythroblast", "Normoblast", "Reticulocyte")
OTHER_TYPES = (
    "CD14+ Mono", "CD16+ Mono", "CD4+ T naive", "CD4+ T activated", "CD8+ T", "CD8+ T naive", "NK",
    "Naive CD20+ B", "B1 B", "Transitional B", "Plasma cell", "cDC2", "pDC", "ILC", "G/M prog", "Lymph prog",
)  # fmt: skip
CELL_TYPES = LINEAGE + OTHER_TYPES


@dataclass(frozen=True)
class Shape:
    """One modality pair of the competition: training and test cells, features, batches."""

    n_train: int
    n_test: int
    n_genes: int
    n_mod2: int
    mod2: str
    train_batches: tuple[str, ...]
    test_batches: tuple[str, ...]


SHAPES = {
    "cite": Shape(
        n_train=70_000,
        n_test=15_000,
        n_genes=13_953,
        n_mod2=134,
        mod2="ADT",
        train_batches=("s1d1", "s1d2", "s1d3", "s2d1", "s2d4", "s2d5", "s3d1", "s3d6", "s3d7"),
        test_batches=("s4d1", "s4d8", "s4d9"),
    ),
    "multiome": Shape(
        n_train=42_000,
        n_test=15_000,
        n_genes=13_431,
        n_mod2=116_490,
        mod2="ATAC",
        train_batches=("s1d1", "s1d2", "s1d3", "s2d1", "s2d4", "s2d5", "s3d3", "s3d6", "s3d7", "s3d10"),
        test_batches=("s4d1", "s4d8", "s4d9"),
    ),
}


def _cells(shape: Shape, n_train: int, n_test: int, rng: np.random.Generator) -> pd.DataFrame:
    """Batches, sites, cell types (uneven, as in bone marrow), lineage progress and cycling phase."""
    batches = np.concatenate(
        [rng.choice(shape.train_batches, n_train), rng.choice(shape.test_batches, n_test)]
    )
    frequencies = rng.dirichlet(np.full(len(CELL_TYPES), 2.0))
    types = rng.choice(len(CELL_TYPES), n_train + n_test, p=frequencies)
    on_lineage = types < len(LINEAGE)
    progress = np.where(on_lineage, (types + rng.uniform(0, 1, len(types))) / len(LINEAGE), 0.0)
    phase = rng.choice(np.array(["G1", "S", "G2M"]), len(types), p=[0.7, 0.15, 0.15])
    return pd.DataFrame(
        {
            "batch": batches,
            "site": [b[:2] for b in batches],
            "donor": [b[2:] for b in batches],
            "cell_type": np.asarray(CELL_TYPES)[types],
            "is_train": np.arange(len(types)) < n_train,
            "type_code": types,
            "progress": progress,
            "phase": phase,
        },
        index=pd.Index([f"cell{i:06d}" for i in range(len(types))]),
    )


def _effects(n_features: int, n_types: int, n_batches: int, strength: float, rng: np.random.Generator):
    """Log-scale baseline, cell-type effects (each type raises 5% of features), batch shifts, and a
    lineage gradient on 3% of features."""
    type_effects = np.where(
        rng.uniform(size=(n_types, n_features)) < 0.05, rng.normal(strength, 0.5, (n_types, n_features)), 0.0
    )
    batch_effects = rng.normal(0, 0.2, (n_batches, n_features))
    gradient = np.where(rng.uniform(size=n_features) < 0.03, rng.normal(0, 2.0, n_features), 0.0)
    return type_effects.astype(np.float32), batch_effects.astype(np.float32), gradient.astype(np.float32)


def _counts(
    cells: pd.DataFrame,
    baseline: np.ndarray,
    depth: np.ndarray,
    rng: np.random.Generator,
    dispersion: float | None,
    block_cells: int,
    extra=None,
) -> sp.csr_matrix:
    """Counts of every cell: Poisson (or Poisson-gamma with ``dispersion``) around
    ``depth x softmax(baseline + effects)``, computed ``block_cells`` cells at a time."""
    n_features = len(baseline)
    batch_codes = pd.Categorical(cells["batch"]).codes
    type_effects, batch_effects, gradient = _effects(
        n_features, len(CELL_TYPES), batch_codes.max() + 1, 1.5, rng
    )
    blocks = []
    for start in range(0, len(cells), block_cells):
        part = cells.iloc[start : start + block_cells]
        rows = slice(start, start + len(part))
        logits = baseline[None, :] + type_effects[part["type_code"].to_numpy()]
        logits += batch_effects[batch_codes[rows]]
        logits += part["progress"].to_numpy(np.float32)[:, None] * gradient[None, :]
        if extra is not None:
            logits += extra(part)
        logits -= logits.max(axis=1, keepdims=True)
        rates = np.exp(logits, dtype=np.float64)
        rates *= (depth[rows] / rates.sum(axis=1))[:, None]
        if dispersion is not None:
            rates *= rng.gamma(dispersion, 1 / dispersion, rates.shape)
        blocks.append(sp.csr_matrix(rng.poisson(rates).astype(np.int32)))
    return sp.vstack(blocks, format="csr")


def synthetic_paired(
    modality: str,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    block_cells: int = 2000,
) -> tuple[sp.csr_matrix, sp.csr_matrix, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(gex_counts, mod2_counts, obs, gex_var, mod2_var)`` of the competition's ``modality``
    (``cite`` or ``multiome``); ``n_train``/``n_test`` default to its sizes (:data:`SHAPES`).

    Counts are CSR int32, cells x features; ``obs`` holds ``batch``, ``site``,
    ``donor``, ``cell_type`` and ``is_train`` (site 4 is the test set).
    """
    shape = SHAPES[modality]
    rng = np.random.default_rng(seed)
    n_train = shape.n_train if n_train is None else n_train
    n_test = shape.n_test if n_test is None else n_test
    cells = _cells(shape, n_train, n_test, rng)

    cycle = tirosh_genes("human")
    cycle_genes = list(dict.fromkeys(cycle["S"] + cycle["G2M"]))
    gene_names = cycle_genes + [f"SYNG{i:05d}" for i in range(shape.n_genes - len(cycle_genes))]
    in_phase = {phase: np.isin(gene_names, cycle[phase]).astype(np.float32) for phase in ("S", "G2M")}

    def cycling(part: pd.DataFrame) -> np.ndarray:
        phase = part["phase"].to_numpy()
        return 1.5 * ((phase == "S")[:, None] * in_phase["S"] + (phase == "G2M")[:, None] * in_phase["G2M"])

    gex_baseline = rng.normal(0, 1.6, shape.n_genes).astype(np.float32)
    gex_depth = rng.lognormal(np.log(2500), 0.5, len(cells))
    gex = _counts(cells, gex_baseline, gex_depth, rng, 2.0, block_cells, extra=cycling)
    if shape.mod2 == "ADT":
        mod2_baseline = rng.normal(0, 1.0, shape.n_mod2).astype(np.float32)
        mod2_depth = rng.lognormal(np.log(1500), 0.6, len(cells))
        mod2 = _counts(cells, mod2_baseline, mod2_depth, rng, 3.0, block_cells)
        mod2_names = [f"SYNP{i:03d}" for i in range(shape.n_mod2)]
    else:
        mod2_baseline = rng.normal(0, 1.0, shape.n_mod2).astype(np.float32)
        mod2_depth = rng.lognormal(np.log(4000), 0.6, len(cells))
        mod2 = _counts(cells, mod2_baseline, mod2_depth, rng, None, max(200, block_cells // 10))
        # Peaks spread over 22 chromosomes, 500 bp each, one every 25 kb.
        index = np.arange(shape.n_mod2)
        starts = 10_000 + (index // 22) * 25_000
        mod2_names = [f"chr{i % 22 + 1}-{s}-{s + 500}" for i, s in zip(index, starts, strict=True)]
    obs = cells[["batch", "site", "donor", "cell_type", "is_train"]].copy()
    return gex, mod2, obs, pd.DataFrame(index=pd.Index(gene_names)), pd.DataFrame(index=pd.Index(mod2_names))

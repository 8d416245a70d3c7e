"""What torch's fused Adam saves scvi-tools' MultiVI and totalVI: training time, CPU, peak memory.

scmib trains both models with the optimiser scvi-tools configures (same learning
rate, eps and weight decay) but torch's fused kernel
(:func:`scmib.methods.scvi_models.use_fused_adam`). This script trains the
model a few epochs with scvi-tools' own optimiser (the reference) and with
the fused one, each in a forked child of this process (so each has its own peak
memory), one after the other, and prints wall and CPU seconds, peak memory, the
ratio and how far the two latent spaces are apart:

    python benchmarks/scvi_optimizer.py RNA.h5ad MOD2.h5ad --model multivi [--epochs 3]

``RNA.h5ad`` and ``MOD2.h5ad`` are a loader's outputs (``layers['counts']``,
``layers['normalized']``, ``obs['batch']``), e.g. ``scmib_output/datasets/
snareseq2_mop2021/{rna,mod2}.h5ad`` of a run. Threads follow ``OMP_NUM_THREADS``
(the runner sets it per job).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from pathlib import Path

import anndata as ad
import numpy as np


def train(rna: Path, mod2: Path, model: str, epochs: int, fused: bool) -> dict:
    """Train ``model`` for ``epochs`` epochs (seed 0); wall, CPU, peak memory and the latent space."""
    import torch

    from scmib.methods import scvi_models

    if not fused:
        scvi_models.use_fused_adam = lambda model: None  # scvi-tools' own optimiser
    gex, other = ad.read_h5ad(rna), ad.read_h5ad(mod2)
    latent_of = scvi_models.multivi_latent if model == "multivi" else scvi_models.totalvi_latent
    wall, cpu = time.perf_counter(), time.process_time()
    latent = latent_of(gex, other, 4000, 20, epochs, "cpu", 0)
    return {
        "optimiser": "fused (scmib)" if fused else "scvi-tools default",
        "wall s": round(time.perf_counter() - wall, 1),
        "CPU s": round(time.process_time() - cpu, 1),
        "peak GB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
        "threads": torch.get_num_threads(),
        "latent": latent,
    }


def in_child(*args) -> dict:
    """:func:`train` in a forked child, so that its peak memory is its own."""
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(train, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rna", type=Path)
    parser.add_argument("mod2", type=Path)
    parser.add_argument("--model", choices=["multivi", "totalvi"], default="multivi")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    rows = [in_child(args.rna, args.mod2, args.model, args.epochs, fused) for fused in (False, True)]
    reference, fused = rows
    for row in rows:
        print({k: v for k, v in row.items() if k != "latent"}, flush=True)
    print(
        f"{args.model}, {args.epochs} epochs: fused Adam {reference['wall s'] / fused['wall s']:.2f}x faster"
        f" (wall), {reference['CPU s'] / fused['CPU s']:.2f}x less CPU; latent spaces differ by at most"
        f" {np.abs(reference['latent'] - fused['latent']).max():.2g}"
        f" (their values span {np.ptp(reference['latent']):.3g})"
    )


if __name__ == "__main__":
    main()

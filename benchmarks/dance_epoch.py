"""What scmib's sparse product and dropout save DANCE's graph network: seconds of a training epoch.

scmib's :class:`~scmib.methods.graph_regression.Relation` multiplies by a CSR
matrix whose transpose it keeps, so the backward pass is one more CSR product
(torch's own backward of a CSR product sorts the matrix into its transpose on
every call), and draws dropout masks as uniform numbers against the rate
(torch's CPU Bernoulli sampler is slower). This script trains the network a few
full-batch epochs both ways, each in a forked child of this process (so each
has its own peak memory), one after the other, and prints wall and CPU seconds
per epoch, peak memory and the ratio:

    python benchmarks/dance_epoch.py TASK_FOLDER [--epochs 20]

``TASK_FOLDER`` holds a GEX->ADT or GEX->ATAC task's ``train_mod1.h5ad`` and
``train_mod2.h5ad`` (``layers['normalized']``, ``obs['batch']``), e.g.
``scmib_output/predict_modality/triana2021_bm_abseq/gex2adt/data`` of a run.
Threads follow ``OMP_NUM_THREADS`` (the runner sets it per job).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from pathlib import Path

import anndata as ad
import numpy as np


def train(folder: Path, epochs: int, reference: bool) -> dict:
    """Train DANCE's network ``epochs`` epochs (seed 0): seconds an epoch and peak memory."""
    import torch
    from torch.nn import functional as F

    from scmib.methods import graph_regression as graph
    from scmib.methods.reduction import as_dense
    from scmib.methods.torch_models import adam, seed_everything

    if reference:  # torch's own: F.dropout, and autograd through the CSR product
        graph.dropout = F.dropout

        def aggregate(self, h, edge_dropout, training):
            values = F.dropout(self.values, edge_dropout, training)
            if self.slot is not None:
                values = torch.zeros(self.n_entries).index_add_(0, self.slot, values)
            return graph._csr(self.pattern.crow, self.pattern.col, values, self.shape) @ h

        graph.Relation.aggregate = aggregate
    x_file, y_file = ad.read_h5ad(folder / "train_mod1.h5ad"), ad.read_h5ad(folder / "train_mod2.h5ad")
    x, y = x_file.layers["normalized"].tocsr(), as_dense(y_file.layers["normalized"])
    batches = x_file.obs["batch"].astype(str).to_numpy()
    pathway = graph.pathway_edges(x_file.var_names, x)[:3]
    g = graph.build_graph(x, graph.batch_statistics(x, batches), pathway)
    seed_everything(0)
    config = graph.DanceConfig()
    model = graph.DanceGNN(x.shape[1], y.shape[1], config)
    optimiser = adam(model.parameters(), config.learning_rate, config.weight_decay, decoupled=True)
    target = torch.as_tensor(y)

    def epoch() -> float:
        model.train()
        loss = F.mse_loss(model(g), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return float(loss.detach())

    epoch()  # warm-up: first-call allocations
    wall, cpu = time.perf_counter(), time.process_time()
    losses = [epoch() for _ in range(epochs)]
    return {
        "aggregation": "torch's own (reference)" if reference else "scmib",
        "s / epoch": round((time.perf_counter() - wall) / epochs, 4),
        "CPU s / epoch": round((time.process_time() - cpu) / epochs, 4),
        "peak GB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
        "threads": torch.get_num_threads(),
        "last train MSE": round(losses[-1], 4),
        "edges": g.entail.n_entries,
    }


def in_child(*args) -> dict:
    """:func:`train` in a forked child, so that its peak memory is its own."""
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(train, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a GEX->ADT or GEX->ATAC task folder of a run")
    parser.add_argument("--epochs", type=int, default=20, help="epochs timed (after one warm-up)")
    args = parser.parse_args()
    rows = [in_child(args.folder, args.epochs, reference) for reference in (True, False)]
    for row in rows:
        print("  ".join(f"{k}: {v}" for k, v in row.items()))
    ratio = rows[0]["s / epoch"] / rows[1]["s / epoch"]
    print(f"scmib's epoch is {ratio:.2f}x faster than torch's own on {rows[1]['edges']:,} cell-gene edges")
    print(np.round([r["CPU s / epoch"] for r in rows], 4), "CPU s / epoch (reference, scmib)")


if __name__ == "__main__":
    main()

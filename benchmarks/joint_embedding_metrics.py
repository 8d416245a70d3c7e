"""Time and peak memory of each joint-embedding metric, scmib next to scib 1.x, at 10k and 60k cells.

A synthetic embedding of the competition's full size (100 dimensions; 22 cell
types, 6 batches, an erythroid-like lineage with a pseudotime, S/G2M scores)
and a solution GEX of 13,431 genes (8% non-zero, log-normalised) are written
once per size. Every (implementation, metric) then runs in its own process
started through ``scmib.runner.launch``, so the peak memory is that process's
own; wall time is measured inside it around the metric call (imports and
file reading excluded, kNN graph included). Both implementations get the
same embedding and the same solution; scmib's ``cc_cons`` is timed with its
reference values computed in the call, as scib does (the processor computes
them once per dataset instead, so in a run each method pays only "after").

    python benchmarks/joint_embedding_metrics.py [--sizes 10000,60000] [--metrics nmi,asw_label,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from predict_modality_methods import synthetic_counts

from scmib.data import normalize

METRICS = ["nmi", "asw_label", "asw_batch", "cc_cons", "ti_cons", "graph_conn"]
N_TYPES, N_BATCHES, N_DIMS, N_GENES = 22, 6, 100, 13_431


def write_inputs(folder: Path, n_cells: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    types = rng.integers(0, N_TYPES, n_cells)
    batches = rng.integers(0, N_BATCHES, n_cells)
    centres = rng.normal(0, 3, (N_TYPES, N_DIMS))
    shifts = rng.normal(0, 1, (N_BATCHES, N_DIMS))
    embedding = centres[types] + shifts[batches] + rng.normal(0, 1, (n_cells, N_DIMS))
    # Types 0 -> 1 -> 2 form a lineage: cells spread along the segment between their centres.
    lineage = types < 3
    progress = rng.uniform(0, 1, n_cells)
    embedding[lineage] = (
        centres[0] + (types[lineage] + progress[lineage])[:, None] / 3 * (centres[2] - centres[0])
    ) + rng.normal(0, 0.5, (lineage.sum(), N_DIMS))
    pseudotime = np.where(lineage, (types + progress) / 3, np.nan)
    cycle = rng.normal(0, 0.2, (n_cells, 2))
    embedding[:, :2] += 3 * cycle
    counts = synthetic_counts(types, N_GENES, 0.08, rng)
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical([f"b{b}" for b in batches]),
            "cell_type": pd.Categorical([f"type{t}" for t in types]),
            "pseudotime_order_GEX": pseudotime,
            "S_score": cycle[:, 0],
            "G2M_score": cycle[:, 1],
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    solution = ad.AnnData(X=normalize.log_normalize(counts, normalize.library_size_factors(counts)), obs=obs)
    solution.write_h5ad(folder / "solution.h5ad")
    np.save(folder / "embedding.npy", embedding.astype(np.float32))


def scmib_metric(metric: str, embedding: np.ndarray, solution: ad.AnnData) -> float:
    from scmib.metrics.embedding import cell_cycle, clustering, graph, silhouette, trajectory

    obs = solution.obs
    labels, batches = obs["cell_type"].to_numpy(), obs["batch"].to_numpy()
    if metric == "nmi":
        return clustering.optimal_louvain(graph.knn_graph(embedding), labels)[1]
    if metric == "asw_label":
        return silhouette.asw_label(embedding, labels)
    if metric == "asw_batch":
        return silhouette.asw_batch(embedding, batches, labels)
    if metric == "cc_cons":
        scores = obs[["S_score", "G2M_score"]].to_numpy()
        before = cell_cycle.variance_before(solution.X, batches, scores)
        return cell_cycle.cell_cycle_conservation(before, embedding, batches, scores)
    if metric == "ti_cons":
        return trajectory.trajectory_conservation(
            graph.knn_graph(embedding), obs["pseudotime_order_GEX"].to_numpy(), labels, batches
        )
    if metric == "graph_conn":
        return graph.graph_connectivity(graph.knn_graph(embedding).obsp["connectivities"], labels)
    raise ValueError(metric)


def scib_metric(metric: str, embedding: np.ndarray, solution: ad.AnnData) -> float:
    import scanpy as sc
    import scib

    post = ad.AnnData(X=embedding, obs=solution.obs.copy())
    post.obsm["X_emb"] = embedding
    if metric in ("nmi", "ti_cons", "graph_conn"):
        sc.pp.neighbors(post, use_rep="X_emb")
    if metric == "nmi":
        scib.cl.opt_louvain(post, label_key="cell_type", cluster_key="cluster", plot=False, verbose=False)
        return scib.me.nmi(post, "cluster", "cell_type")
    if metric == "asw_label":
        return scib.me.silhouette(post, "cell_type", "X_emb")
    if metric == "asw_batch":
        return scib.me.silhouette_batch(post, "batch", "cell_type", "X_emb", verbose=False)
    if metric == "cc_cons":
        return scib.me.cell_cycle(solution, post, "batch", embed="X_emb", recompute_cc=False)
    if metric == "ti_cons":
        return scib.me.trajectory_conservation(
            solution, post, label_key="cell_type", batch_key="batch", pseudotime_key="pseudotime_order_GEX"
        )
    if metric == "graph_conn":
        return scib.me.graph_connectivity(post, "cell_type")
    raise ValueError(metric)


def worker(implementation: str, metric: str, folder: Path) -> None:
    warnings.filterwarnings("ignore")
    embedding, solution = np.load(folder / "embedding.npy"), ad.read_h5ad(folder / "solution.h5ad")
    function = scmib_metric if implementation == "scmib" else scib_metric
    start = time.perf_counter()
    value = function(metric, embedding, solution)
    print(json.dumps({"wall_s": time.perf_counter() - start, "value": float(value)}))


def measure(implementation: str, metric: str, folder: Path) -> dict:
    usage = folder / f"{implementation}_{metric}.json"
    cmd = [
        sys.executable,
        "-m",
        "scmib.runner.launch",
        str(usage),
        "--",
        sys.executable,
        __file__,
        "--worker",
        implementation,
        metric,
        str(folder),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parent)
    if proc.returncode != 0:
        return {"status": f"exit {proc.returncode}", "wall_s": np.nan, "peak_mb": np.nan, "value": np.nan}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    peak_mb = json.loads(usage.read_text())["maxrss_kb"] / 1024
    return {"status": "ok", "peak_mb": peak_mb, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,60000")
    parser.add_argument("--metrics", default=",".join(METRICS))
    parser.add_argument(
        "--worker", nargs=3, metavar=("IMPLEMENTATION", "METRIC", "FOLDER"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], Path(args.worker[2]))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    rows = []
    for size in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_inputs(folder, size)
            for metric in args.metrics.split(","):
                for implementation in ("scmib", "scib"):
                    row = {
                        "cells": size,
                        "metric": metric,
                        "implementation": implementation,
                        **measure(implementation, metric, folder),
                    }
                    print(row, flush=True)
                    rows.append(row)
    table = pd.DataFrame(rows).pivot_table(
        index=["cells", "metric"], columns="implementation", values=["wall_s", "peak_mb", "value"]
    )
    table[("ratio", "time scib/scmib")] = table[("wall_s", "scib")] / table[("wall_s", "scmib")]
    table[("ratio", "memory scib/scmib")] = table[("peak_mb", "scib")] / table[("peak_mb", "scmib")]
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()

"""Time and peak memory of every match-modalities method and metric at 10k and 20k test cells.

Synthetic task files of the competition's CITE shape (GEX 13,431 genes, ADT
134 proteins; 22 cell types with type-specific expression; training cells in
9 batches, test cells in 3 batches, as the competition's test donors) are
written once per size, mod2 shuffled as the processor does. Every method runs
as its own process through the runner (the same command line and the same
wall/CPU/peak-memory accounting as ``scmib run``), then every metric scores
its prediction. Times are also given as a ratio to Procrustes + kNN in the same run.

    python benchmarks/match_modalities.py [--sizes 10000,20000] [--train 10000] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from predict_modality_methods import modality_file, synthetic_counts

from scmib.io import write_h5ad_atomic
from scmib.processing.match_modalities import shuffled_split
from scmib.runner.execute import run_job
from scmib.runner.plan import Job
from scmib.spec import discover, find_repo_root

REFERENCE = "procrustes_knn"


def write_task(folder: Path, n_test: int, n_train: int, seed: int = 0) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    types = rng.integers(0, 22, size=n)
    batches = np.r_[
        rng.integers(0, 9, n_train).astype(str), np.array(["t0", "t1", "t2"])[rng.integers(0, 3, n_test)]
    ]
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(types.astype(str)), "batch": pd.Categorical(batches)},
        index=[f"cell{i}" for i in range(n)],
    )
    gex = modality_file(synthetic_counts(types, 13_431, 0.08, rng), "GEX", obs, True)
    adt = modality_file(synthetic_counts(types, 134, 0.9, rng), "ADT", obs, True)
    paths = {}
    for split, cells in (("train", np.arange(n_train)), ("test", np.arange(n_train, n))):
        files = shuffled_split(gex, adt, cells, dataset_id="synthetic", train=split == "train", rng=rng)
        for name, file in zip(("mod1", "mod2", "sol"), files, strict=True):
            adata = file if isinstance(file, ad.AnnData) else file.load()
            paths[f"{split}_{name}"] = write_h5ad_atomic(adata, folder / f"{split}_{name}.h5ad")
    return paths


def defaults(spec) -> dict:
    return {a.name: a.default for a in spec.parameters() if a.default is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,20000", help="test cells")
    parser.add_argument("--train", type=int, default=10_000, help="training cells")
    parser.add_argument(
        "--methods",
        default=None,
        help="comma-separated (default: every method of the default profile, as scmib run: not "
        "Novel's CLIP model, a GPU job of 9 models here)",
    )
    parser.add_argument("--threads", type=int, default=2, help="BLAS/torch threads per job")
    args = parser.parse_args()
    specs = [s for s in discover(find_repo_root() / "components") if s.task == "match_modalities"]
    named = args.methods.split(",") if args.methods else None
    methods = [
        s
        for s in specs
        if s.kind == "method"
        and (s.name in named if named else s.info.profiles is None or "default" in s.info.profiles)
    ]
    metrics = [s for s in specs if s.kind == "metric"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in map(int, args.sizes.split(",")):
            folder = Path(tmp) / str(size)
            files = write_task(folder, size, args.train)
            for method in methods:
                job = Job(
                    id=f"{size}/{method.name}",
                    spec=method,
                    stage="method",
                    workdir=folder / method.name,
                    inputs={f"input_{k}": v for k, v in files.items() if k != "test_sol"},
                    outputs={"output": folder / method.name / "prediction.h5ad"},
                    params=defaults(method),
                )
                jobs = [("method", method.name, run_job(job, key="benchmark", threads=args.threads))]
                for metric in metrics if jobs[0][2].status == "success" else []:
                    metric_job = Job(
                        id=f"{job.id}/{metric.name}",
                        spec=metric,
                        stage="metric",
                        workdir=folder / method.name / metric.name,
                        inputs={
                            "input_prediction": job.outputs["output"],
                            "input_test_sol": files["test_sol"],
                        },
                        outputs={"output": folder / method.name / metric.name / "score.h5ad"},
                        params=defaults(metric),
                    )
                    jobs.append(
                        ("metric", metric.name, run_job(metric_job, key="benchmark", threads=args.threads))
                    )
                for kind, name, result in jobs:
                    rows.append(
                        {
                            "test_cells": size,
                            "kind": kind,
                            "component": name,
                            "on": method.name,
                            "status": result.status,
                            "wall_s": result.wall_time_s,
                            "cpu_s": result.cpu_time_s,
                            "peak_mb": result.peak_memory_mb,
                        }
                    )
                    print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows)
    reference = table[(table["component"] == REFERENCE)].set_index("test_cells")["wall_s"]
    if len(reference):
        table[f"time_vs_{REFERENCE}"] = table["wall_s"] / table["test_cells"].map(reference)
    print("\n" + table.round(2).to_string(index=False))


if __name__ == "__main__":
    main()

"""Time and peak memory of each predict-modality method at 10k, 30k and 60k training cells.

Synthetic task files of the competition's shape (GEX 13,431 genes, ADT 134
proteins, ATAC 116,490 peaks with a 10,000-peak GEX->ATAC target; 1,000 test
cells; 9 training batches; 22 cell types with type-specific expression) are
written once per size, then every method runs as its own process through the
runner (the same command line and the same wall/CPU/peak-memory accounting as
``scmib run``). Times are also given as a ratio to kNN regression in the same run.

    python benchmarks/predict_modality_methods.py [--sizes 10000,30000,60000]
        [--directions gex2adt,adt2gex,gex2atac,atac2gex] [--methods ...] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scmib.data import normalize
from scmib.io import write_h5ad_atomic
from scmib.processing.common import DIRECTIONS
from scmib.runner.execute import run_job
from scmib.runner.plan import Job
from scmib.spec import find_repo_root, load_spec

N_FEATURES = {"GEX": 13_431, "ADT": 134, "ATAC": 116_490}
DENSITY = {"GEX": 0.08, "ADT": 0.9, "ATAC": 0.02}
METHODS = ["knn_regression", "lslab_fold_knn", "guanlab_kernel_ridge", "novel_lsi_mlp", "cajal_marker_mlp"]


def synthetic_counts(
    types: np.ndarray, n_features: int, density: float, rng: np.random.Generator, chunk: int = 5000
) -> sp.csr_matrix:
    """Sparse counts where each cell type over-expresses its own block of features."""
    n_types = types.max() + 1
    block = max(1, n_features // n_types)
    parts = []
    for start in range(0, len(types), chunk):
        part_types = types[start : start + chunk]
        m = sp.random(
            len(part_types),
            n_features,
            density=density,
            format="csr",
            dtype=np.float32,
            random_state=rng,
            data_rvs=lambda k: rng.geometric(0.6, k).astype(np.float32),
        )
        rows, cols = m.nonzero()
        boost = (cols // block) == part_types[rows]
        m.data[boost] *= 4
        parts.append(m)
    return sp.vstack(parts).tocsr()


def modality_file(counts: sp.csr_matrix, modality: str, obs: pd.DataFrame, with_labels: bool) -> ad.AnnData:
    if modality == "GEX":
        values = normalize.log_normalize(counts, normalize.library_size_factors(counts))
    elif modality == "ADT":
        values = normalize.clr(counts)
    else:
        values = normalize.binarize(counts)
    keep = ["batch", "cell_type"] if with_labels else ["batch"]
    adata = ad.AnnData(
        X=None,
        obs=obs[keep].copy(),
        var=pd.DataFrame(index=[f"{modality}_{i}" for i in range(counts.shape[1])]),
    )
    adata.var["feature_types"] = modality
    adata.layers["counts"] = counts
    adata.layers["normalized"] = values
    adata.uns.update(dataset_id="synthetic", modality=modality)
    return adata


def write_task(folder: Path, n_train: int, direction: str, seed: int = 0) -> dict[str, Path]:
    source, target = DIRECTIONS[direction]
    rng = np.random.default_rng(seed)
    n = n_train + 1000
    types = rng.integers(0, 22, size=n)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(types.astype(str)),
            "batch": pd.Categorical(np.r_[rng.integers(0, 9, n_train).astype(str), np.full(1000, "test")]),
        },
        index=[f"cell{i}" for i in range(n)],
    )
    mod1 = synthetic_counts(types, N_FEATURES[source], DENSITY[source], rng)
    mod2 = synthetic_counts(types, N_FEATURES[target], DENSITY[target], rng)
    if target == "ATAC":
        mod2 = mod2[:, np.sort(rng.choice(mod2.shape[1], 10_000, replace=False))]
    train, test = slice(0, n_train), slice(n_train, n)
    files = {
        "train_mod1": modality_file(mod1[train], source, obs.iloc[train], True),
        "train_mod2": modality_file(mod2[train], target, obs.iloc[train], True),
        "test_mod1": modality_file(mod1[test], source, obs.iloc[test], False),
    }
    paths = {}
    for name, adata in files.items():
        paths[name] = write_h5ad_atomic(adata, folder / f"{name}.h5ad")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,30000,60000")
    parser.add_argument("--directions", default="gex2adt,adt2gex,gex2atac,atac2gex")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--threads", type=int, default=2, help="BLAS/torch threads per method")
    args = parser.parse_args()
    repo = find_repo_root()
    specs = {m: load_spec(repo / "components/predict_modality/methods" / m) for m in args.methods.split(",")}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for direction in args.directions.split(","):
            for size in map(int, args.sizes.split(",")):
                folder = Path(tmp) / f"{direction}_{size}"
                inputs = write_task(folder, size, direction)
                for name, spec in specs.items():
                    params = {a.name: a.default for a in spec.parameters() if a.default is not None}
                    job = Job(
                        id=f"{direction}/{size}/{name}",
                        spec=spec,
                        stage="method",
                        workdir=folder / name,
                        inputs={f"input_{k}": v for k, v in inputs.items()},
                        outputs={"output": folder / name / "prediction.h5ad"},
                        params=params,
                    )
                    result = run_job(job, key="benchmark", threads=args.threads)
                    rows.append(
                        {
                            "direction": direction,
                            "train_cells": size,
                            "method": name,
                            "status": result.status,
                            "wall_s": result.wall_time_s,
                            "cpu_s": result.cpu_time_s,
                            "peak_mb": result.peak_memory_mb,
                        }
                    )
                    print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows)
    reference = table[table["method"] == "knn_regression"].set_index(["direction", "train_cells"])
    if len(reference):
        table["time_vs_knn"] = [
            row.wall_s / reference.loc[(row.direction, row.train_cells), "wall_s"]
            for row in table.itertuples()
        ]
    print("\n" + table.round(2).to_string(index=False))


if __name__ == "__main__":
    main()

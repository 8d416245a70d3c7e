"""Negative control: uniform-random weights on random mod2 rows."""

import numpy as np
import scipy.sparse as sp

from scmib.component import ComponentRun, run_component
from scmib.methods.matching import MAX_NONZEROS_PER_CELL, matching_file


def main(run: ComponentRun) -> None:
    # Cell names and batches only: the matrices are not used.
    test_mod1 = run.read("input_test_mod1", layers=())
    test_mod2 = run.read("input_test_mod2", layers=())
    n = test_mod1.n_obs
    k = min(n, MAX_NONZEROS_PER_CELL)
    rng = np.random.default_rng(run.par["seed"])
    # k distinct columns per row: the k smallest of random keys on all columns, drawn in
    # row chunks so 20k x 20k random keys never sit in memory at once.
    cols = np.concatenate(
        [
            np.argpartition(rng.random((len(chunk), n)), k - 1, axis=1)[:, :k]
            for chunk in np.array_split(np.arange(n), max(1, n // 1000))
        ]
    )
    rows = np.repeat(np.arange(n), k)
    weights = sp.csr_matrix((rng.random(n * k) + 1e-9, (rows, cols.ravel())), shape=(n, n))
    run.write("output", matching_file(weights, test_mod1, test_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

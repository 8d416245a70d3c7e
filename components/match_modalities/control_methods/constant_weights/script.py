"""Negative control: every cell gets the same uniform weights on the first mod2 rows."""

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
    rows, cols = np.repeat(np.arange(n), k), np.tile(np.arange(k), n)
    weights = sp.csr_matrix((np.full(n * k, 1.0 / k), (rows, cols)), shape=(n, n))
    run.write("output", matching_file(weights, test_mod1, test_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

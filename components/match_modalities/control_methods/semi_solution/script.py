"""Control between the extremes: the true pairing plus 10 * N random entries."""

import numpy as np
import scipy.sparse as sp

from scmib.component import ComponentRun, run_component
from scmib.methods.matching import matching_file


def main(run: ComponentRun) -> None:
    # Cell names and batches only: the matrices are not used.
    test_mod1 = run.read("input_test_mod1", layers=())
    test_mod2 = run.read("input_test_mod2", layers=())
    truth = sp.csr_matrix(run.read("input_test_sol").X, dtype=np.float64)
    n = truth.shape[0]
    rng = np.random.default_rng(run.par["seed"])
    noise = sp.csr_matrix(
        (np.ones(10 * n), (rng.integers(0, n, 10 * n), rng.integers(0, n, 10 * n))), shape=(n, n)
    )
    # Every chosen position weighs 1, whether drawn twice or on the true pair.
    weights = ((truth + noise) > 0).astype(np.float64)
    run.write("output", matching_file(weights, test_mod1, test_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

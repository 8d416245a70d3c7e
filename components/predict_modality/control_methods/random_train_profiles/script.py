"""Negative control: each test cell gets the target profile of a random training cell."""

import numpy as np

from scmib.component import ComponentRun, run_component
from scmib.processing.predict_modality import prediction_file


def main(run: ComponentRun) -> None:
    test_mod1 = run.read("input_test_mod1", layers=())
    train_mod2 = run.read("input_train_mod2", layers=("normalized",))
    rng = np.random.default_rng(run.par["seed"])
    donors = rng.integers(0, train_mod2.n_obs, size=test_mod1.n_obs)
    values = train_mod2.layers["normalized"][donors]
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

"""Negative control: predict the training mean of each target feature."""

import numpy as np

from scmib.component import ComponentRun, run_component
from scmib.processing.predict_modality import prediction_file


def main(run: ComponentRun) -> None:
    test_mod1 = run.read("input_test_mod1", layers=())
    train_mod2 = run.read("input_train_mod2", layers=("normalized",))
    means = np.asarray(train_mod2.layers["normalized"].mean(axis=0)).ravel()
    values = np.tile(means, (test_mod1.n_obs, 1))
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

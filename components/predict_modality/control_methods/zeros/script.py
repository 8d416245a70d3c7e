"""Negative control: predict zeros."""

import numpy as np

from scmib.component import ComponentRun, run_component
from scmib.processing.predict_modality import prediction_file


def main(run: ComponentRun) -> None:
    test_mod1 = run.read("input_test_mod1", layers=())
    train_mod2 = run.read("input_train_mod2", layers=())
    values = np.zeros((test_mod1.n_obs, train_mod2.n_vars), dtype=np.float32)
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

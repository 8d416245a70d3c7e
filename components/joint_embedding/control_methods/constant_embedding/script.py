"""Constant (all-zero) embedding."""

import numpy as np

from scmib.component import ComponentRun, run_component
from scmib.methods.embedding import read_embedding_inputs


def main(run: ComponentRun) -> None:
    inputs = read_embedding_inputs(run, layers=())  # the cells' annotations only
    run.write("output", inputs.output(np.zeros((inputs.mod1.n_obs, run.par["n_dimensions"]))))


if __name__ == "__main__":
    run_component(__file__, main)

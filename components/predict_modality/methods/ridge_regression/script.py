"""Ridge regression from a joint truncated-SVD space to the target features."""

import numpy as np

from scmib.component import ComponentRun, run_component
from scmib.methods.linear import column_range, ridge_predict
from scmib.methods.reduction import joint_svd
from scmib.processing.predict_modality import prediction_file, read_normalized_inputs


def main(run: ComponentRun) -> None:
    train_mod1, train_mod2, test_mod1 = read_normalized_inputs(run)
    train_emb, test_emb = joint_svd(
        train_mod1.layers["normalized"],
        test_mod1.layers["normalized"],
        run.par["n_components"],
        run.par["seed"],
    )
    # The closed form on sparse targets: no dense copy of them (3.9 GB for GEX at competition size).
    targets = train_mod2.layers["normalized"]
    values = ridge_predict(train_emb, targets, test_emb, run.par["alpha"])
    values = np.clip(values, *column_range(targets))
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

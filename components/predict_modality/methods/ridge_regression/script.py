"""Ridge regression from a joint truncated-SVD space to the target features."""

import numpy as np
from sklearn.linear_model import Ridge

from scmib.component import ComponentRun, run_component
from scmib.methods.reduction import as_dense, joint_svd
from scmib.processing.predict_modality import prediction_file


def main(run: ComponentRun) -> None:
    train_mod1, train_mod2 = run.read("input_train_mod1"), run.read("input_train_mod2")
    test_mod1 = run.read("input_test_mod1")
    train_emb, test_emb = joint_svd(
        train_mod1.layers["normalized"],
        test_mod1.layers["normalized"],
        run.par["n_components"],
        run.par["seed"],
    )
    targets = as_dense(train_mod2.layers["normalized"])
    model = Ridge(alpha=run.par["alpha"]).fit(train_emb, targets)
    values = np.clip(model.predict(test_emb), targets.min(axis=0), targets.max(axis=0))
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

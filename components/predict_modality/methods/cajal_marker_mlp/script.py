"""Cajal: marker features + count statistics -> MLP with strong input dropout."""

import numpy as np
from sklearn.preprocessing import StandardScaler

from scmib.component import ComponentRun, run_component
from scmib.errors import NotApplicable
from scmib.methods.features import count_statistics, marker_features
from scmib.methods.reduction import as_dense
from scmib.methods.torch_models import TrainConfig, fit_predict_clipped, mlp
from scmib.processing.predict_modality import modality_of, prediction_file


def main(run: ComponentRun) -> None:
    train_mod1, train_mod2 = run.read("input_train_mod1"), run.read("input_train_mod2")
    if "cell_type" not in train_mod1.obs:
        raise NotApplicable("needs training cell-type labels (obs['cell_type'] in train_mod1)")
    test_mod1 = run.read("input_test_mod1")
    par, seed = run.par, run.par["seed"]
    markers = marker_features(train_mod1.layers["normalized"], train_mod1.obs["cell_type"], par["n_markers"])

    def inputs(adata):
        return np.hstack(
            [
                as_dense(adata.layers["normalized"][:, markers]),
                count_statistics(adata.layers["counts"], adata.obs["batch"]),
            ]
        )

    scaler = StandardScaler().fit(inputs(train_mod1))
    x_train, x_test = scaler.transform(inputs(train_mod1)), scaler.transform(inputs(test_mod1))
    y = as_dense(train_mod2.layers["normalized"])
    dropout = par["input_dropout"]
    if dropout is None:
        dropout = 0.8 if modality_of(train_mod1) == "ATAC" else 0.5
    sizes = [x_train.shape[1], par["hidden"], par["hidden"] // 2, par["hidden"] // 4, y.shape[1]]
    config = TrainConfig(
        epochs=par["epochs"], patience=par["patience"], learning_rate=par["learning_rate"], loss="mse"
    )
    values = fit_predict_clipped(
        lambda: mlp(sizes, dropout=0.1, input_dropout=dropout),
        x_train,
        y,
        x_test,
        train_mod1.obs["batch"],
        config,
        par["device"],
        seed,
    )
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

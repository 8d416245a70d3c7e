"""Guanlab: RBF kernel ridge from z-scored SVD features to target SVD components."""

import numpy as np
from sklearn.decomposition import TruncatedSVD

from scmib.component import ComponentRun, run_component
from scmib.methods.features import zscore_rows
from scmib.methods.kernel_ridge import ScalableKernelRidge
from scmib.methods.reduction import as_dense, joint_svd
from scmib.processing.predict_modality import modality_of, prediction_file, read_normalized_inputs
from scmib.processing.split import half_batch_splits

#: Guanlab's settings per (input, target), from its code's ``n_comp_dict``: input SVD components
#: (0: the input as is), target SVD components, ridge penalty. Its length scale is 10 in every one.
DIRECTION_DEFAULTS = {
    ("GEX", "ADT"): (300, 70, 0.2),
    ("ADT", "GEX"): (0, 50, 0.2),
    ("GEX", "ATAC"): (1000, 50, 0.1),
    ("ATAC", "GEX"): (100, 70, 0.1),
}


def main(run: ComponentRun) -> None:
    train_mod1, train_mod2, test_mod1 = read_normalized_inputs(run)
    source, target = modality_of(train_mod1), modality_of(train_mod2)
    seed = run.par["seed"]
    defaults = DIRECTION_DEFAULTS.get((source, target), (100, 70, 0.1))
    names = ("n_components_input", "n_components_target", "alpha")
    chosen = [run.par[name] for name in names]
    n_input, n_target, alpha = (d if c is None else c for c, d in zip(chosen, defaults, strict=True))
    # As Guanlab's code: an input with no more features than components is used as it is.
    if 0 < n_input < train_mod1.n_vars:
        x_train, x_test = joint_svd(
            train_mod1.layers["normalized"], test_mod1.layers["normalized"], n_input, seed
        )
    else:
        x_train = as_dense(train_mod1.layers["normalized"])
        x_test = as_dense(test_mod1.layers["normalized"])
    x_train, x_test = zscore_rows(x_train), zscore_rows(x_test)

    y = train_mod2.layers["normalized"]
    k = min(n_target, min(y.shape) - 1)
    target_svd = TruncatedSVD(k, random_state=seed)
    y_components = target_svd.fit_transform(y)

    predictions = np.zeros((test_mod1.n_obs, k))
    splits = half_batch_splits(train_mod1.obs["batch"], run.par["n_models"], seed)
    for i, cells in enumerate(splits):
        model = ScalableKernelRidge(
            length_scale=run.par["length_scale"],
            alpha=alpha,
            n_landmarks=run.par["n_landmarks"],
            max_exact=run.par["max_exact_cells"],
            seed=seed + i,
        )
        predictions += model.fit(x_train[cells], y_components[cells]).predict(x_test)
    values = target_svd.inverse_transform(predictions / len(splits))
    values = np.clip(values, 0.0, 1.0 if target == "ATAC" else None)
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

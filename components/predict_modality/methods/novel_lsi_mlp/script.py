"""Novel: LSI (or ADT) inputs -> MLP, sqrt-MSE loss, the best validation epoch."""

import sys
from dataclasses import replace
from functools import partial

from scmib.component import ComponentRun, run_component
from scmib.methods.features import lsi
from scmib.methods.reduction import as_dense
from scmib.methods.torch_models import TrainConfig, fit_predict_clipped, mlp
from scmib.processing.predict_modality import modality_of, prediction_file

#: Novel's own ADT->GEX network and training, the direction it won (the organisers'
#: neurips2021_multimodal_topmethods, predict_modality/methods/novel): four GELU layers of 512 and a
#: GELU output, no dropout or batch norm, Adam with L2 weight decay, batch 64, the best of 100 epochs
#: (fewer where ``epochs`` is lower) by validation RMSE of predictions with negatives set to 0.
NOVEL_ADT2GEX_HIDDEN = [512, 512, 512, 512]
NOVEL_ADT2GEX_TRAINING = TrainConfig(
    epochs=100,
    patience=100,  # never reached: Novel keeps the best of all its epochs
    batch_size=64,
    learning_rate=4.1e-4,
    weight_decay=1.39e-5,
    loss="rmse",
    validation_floor=0.0,
)


def main(run: ComponentRun) -> None:
    train_mod1, train_mod2 = run.read("input_train_mod1"), run.read("input_train_mod2")
    test_mod1 = run.read("input_test_mod1")
    par, seed = run.par, run.par["seed"]
    y = as_dense(train_mod2.layers["normalized"])
    adt_input = modality_of(train_mod1) == "ADT"
    if adt_input:  # Novel's ADT input: the normalised values as they are
        x_train, x_test = as_dense(train_mod1.layers["normalized"]), as_dense(test_mod1.layers["normalized"])
    else:
        x_train, x_test = lsi(
            train_mod1.layers["counts"], test_mod1.layers["counts"], par["n_components"], seed
        )
    if adt_input and par["novel_adt2gex_network"]:
        sizes = [x_train.shape[1], *NOVEL_ADT2GEX_HIDDEN, y.shape[1]]
        config = replace(NOVEL_ADT2GEX_TRAINING, epochs=min(NOVEL_ADT2GEX_TRAINING.epochs, par["epochs"]))
        build = partial(mlp, sizes, batch_norm=False, output_activation=True)
    else:
        sizes = [x_train.shape[1], par["hidden"], par["latent"], par["hidden"], y.shape[1]]
        config = TrainConfig(
            epochs=par["epochs"], patience=par["patience"], learning_rate=par["learning_rate"], loss="rmse"
        )
        build = partial(mlp, sizes, dropout=par["dropout"])
    print(f"network {' -> '.join(map(str, sizes))}, batch {config.batch_size}", file=sys.stderr)
    values = fit_predict_clipped(
        build, x_train, y, x_test, train_mod1.obs["batch"], config, par["device"], seed
    )
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

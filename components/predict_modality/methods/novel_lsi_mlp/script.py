"""Novel: LSI (or ADT) inputs -> MLP encoder-decoder, sqrt-MSE loss, early stopping."""

from scmib.component import ComponentRun, run_component
from scmib.methods.features import lsi
from scmib.methods.reduction import as_dense
from scmib.methods.torch_models import TrainConfig, fit_predict_clipped, mlp
from scmib.processing.predict_modality import modality_of, prediction_file


def main(run: ComponentRun) -> None:
    train_mod1, train_mod2 = run.read("input_train_mod1"), run.read("input_train_mod2")
    test_mod1 = run.read("input_test_mod1")
    par, seed = run.par, run.par["seed"]
    if modality_of(train_mod1) == "ADT":  # Novel's ADT input: the normalised values as they are
        x_train, x_test = as_dense(train_mod1.layers["normalized"]), as_dense(test_mod1.layers["normalized"])
    else:
        x_train, x_test = lsi(
            train_mod1.layers["counts"], test_mod1.layers["counts"], par["n_components"], seed
        )
    y = as_dense(train_mod2.layers["normalized"])
    sizes = [x_train.shape[1], par["hidden"], par["latent"], par["hidden"], y.shape[1]]
    config = TrainConfig(
        epochs=par["epochs"], patience=par["patience"], learning_rate=par["learning_rate"], loss="rmse"
    )
    values = fit_predict_clipped(
        lambda: mlp(sizes, dropout=par["dropout"]),
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

"""Novel: LSI (or ADT) inputs -> MLP, sqrt-MSE loss, the best validation epoch."""

import sys
from dataclasses import dataclass, replace
from functools import partial

from scmib.component import ComponentRun, run_component
from scmib.methods.features import novel_lsi
from scmib.methods.reduction import as_dense
from scmib.methods.torch_models import TrainConfig, fit_predict_clipped, mlp
from scmib.processing.predict_modality import modality_of, prediction_file


@dataclass(frozen=True)
class NovelNetwork:
    """One of Novel's networks: GELU after every layer, the output's too; no batch norm."""

    hidden: list[int]
    dropout: list[float]
    training: TrainConfig


def _novel_training(batch_size: int, learning_rate: float, weight_decay: float, adamw: bool) -> TrainConfig:
    """Novel's training: sqrt-MSE, the best of 100 epochs by validation RMSE of predictions with
    negatives set to 0 (fewer epochs where ``epochs`` is lower)."""
    return TrainConfig(
        epochs=100,
        patience=100,  # never reached: Novel keeps the best of all its epochs
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        decoupled_weight_decay=adamw,
        loss="rmse",
        validation_floor=0.0,
    )


#: Novel's own networks and training per (input, target), from the organisers'
#: neurips2021_multimodal_topmethods (predict_modality/methods/novel): tuned for the competition's
#: 42-70k training cells on a GPU. ADT->GEX, the direction Novel won, uses Adam with L2 decay; the
#: others AdamW.
NOVEL_NETWORKS = {
    ("ADT", "GEX"): NovelNetwork(
        [512, 512, 512, 512], [0.0] * 4, _novel_training(64, 4.1e-4, 1.39e-5, False)
    ),
    ("GEX", "ADT"): NovelNetwork(
        [512, 512, 2048],
        [0.20335661386636347, 0.15395289261127876, 0.16902655078832815],
        _novel_training(32, 3.4609210829678734e-5, 9.965881574697426e-4, True),
    ),
    ("GEX", "ATAC"): NovelNetwork(
        [1024, 256, 2048],
        [0.298885630228993, 0.11289717442776658, 0.13523634924414762],
        _novel_training(64, 1.806762345275399e-5, 4.084171379280058e-4, True),
    ),
    ("ATAC", "GEX"): NovelNetwork(
        [2048, 2048, 512],
        [0.2649138776004753, 0.1769628308148758, 0.2516791883012817],
        _novel_training(256, 8.386597445284492e-5, 6.84887347727808e-4, True),
    ),
}
#: Where ``novel_networks`` gives Novel's own network rather than the encoder-decoder.
NOVEL_NETWORK_DIRECTIONS = {"won": {("ADT", "GEX")}, "all": set(NOVEL_NETWORKS), "none": set()}


def main(run: ComponentRun) -> None:
    train_mod1, train_mod2 = run.read("input_train_mod1"), run.read("input_train_mod2")
    test_mod1 = run.read("input_test_mod1")
    par, seed = run.par, run.par["seed"]
    y = as_dense(train_mod2.layers["normalized"])
    direction = modality_of(train_mod1), modality_of(train_mod2)
    if direction[0] == "ADT":  # Novel's ADT input: the normalised values as they are
        x_train, x_test = as_dense(train_mod1.layers["normalized"]), as_dense(test_mod1.layers["normalized"])
    else:
        x_train, x_test = novel_lsi(
            train_mod1.layers["normalized"], test_mod1.layers["normalized"], par["n_components"], seed
        )
    if direction in NOVEL_NETWORK_DIRECTIONS[par["novel_networks"]]:
        network = NOVEL_NETWORKS[direction]
        sizes = [x_train.shape[1], *network.hidden, y.shape[1]]
        config = replace(network.training, epochs=min(network.training.epochs, par["epochs"]))
        build = partial(mlp, sizes, dropout=network.dropout, batch_norm=False, output_activation=True)
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

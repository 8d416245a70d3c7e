"""Cajal: per-cell-type markers and count features -> its tuned MLP for the direction."""

from dataclasses import replace

from scmib.component import ComponentRun, run_component
from scmib.data.filters import FilterLog
from scmib.errors import NotApplicable
from scmib.methods.cajal import SETTINGS, cajal_inputs, input_features, train_cajal
from scmib.methods.torch_models import resolve_device
from scmib.processing.predict_modality import modality_of, prediction_file


def main(run: ComponentRun) -> None:
    train_mod1, train_mod2 = run.read("input_train_mod1"), run.read("input_train_mod2")
    direction = (modality_of(train_mod1), modality_of(train_mod2))
    if direction[0] != "ADT" and "cell_type" not in train_mod1.obs:  # ADT->GEX reads every protein
        raise NotApplicable(
            "needs training cell-type labels (obs['cell_type'] in train_mod1) for its markers"
        )
    test_mod1, par = run.read("input_test_mod1"), run.par
    settings = SETTINGS[direction]
    if par["epochs"] is not None:
        settings = replace(settings, epochs=par["epochs"])
    features = input_features(train_mod1, train_mod2, direction, par["n_markers"], FilterLog())
    print(f"Cajal {direction[0]}->{direction[1]}: {len(features):,} features of modality 1, {settings}")
    x_train, x_test = cajal_inputs(train_mod1, test_mod1, features, gex=direction[0] == "GEX")
    targets = train_mod2.layers["normalized"]
    values = train_cajal(x_train, targets, x_test, settings, resolve_device(par["device"]), par["seed"])
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

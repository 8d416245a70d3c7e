"""RMSE and MAE of a predict-modality prediction, with each cell's contribution."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.contributions import Contributions
from scmib.metrics.inputs import aligned_layers, score_file
from scmib.metrics.regression import mae, per_cell_error, rmse


def main(run: ComponentRun) -> None:
    prediction, solution = run.read("input_prediction"), run.read("input_test_mod2")
    truth, predicted = aligned_layers(prediction, solution, str(run.path("input_prediction")))
    scores = {"rmse": rmse(truth, predicted), "mae": mae(truth, predicted)}
    per_cell = {
        "rmse": Contributions(per_cell_error(truth, predicted, power=2), transform="sqrt"),
        "mae": Contributions(per_cell_error(truth, predicted, power=1)),
    }
    run.write("output", score_file(prediction, scores, contributions=per_cell, cells=solution.obs_names))


if __name__ == "__main__":
    run_component(__file__, main)

"""RMSE and MAE of a predict-modality prediction."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.inputs import aligned_layers, score_file
from scmib.metrics.regression import mae, rmse


def main(run: ComponentRun) -> None:
    prediction, solution = run.read("input_prediction"), run.read("input_test_mod2")
    truth, predicted = aligned_layers(prediction, solution, str(run.path("input_prediction")))
    scores = {"rmse": rmse(truth, predicted), "mae": mae(truth, predicted)}
    run.write("output", score_file(prediction, scores))


if __name__ == "__main__":
    run_component(__file__, main)

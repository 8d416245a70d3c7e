"""Pearson and Spearman correlations of a predict-modality prediction."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.inputs import aligned_layers, score_file
from scmib.metrics.regression import pearson, spearman


def main(run: ComponentRun) -> None:
    prediction, solution = run.read("input_prediction"), run.read("input_test_mod2")
    truth, predicted = aligned_layers(prediction, solution, str(run.path("input_prediction")))
    scores = {
        f"{name}_{label}": function(truth, predicted, axis)
        for name, function in (("pearson", pearson), ("spearman", spearman))
        for axis, label in (("cell", "per_cell"), ("feature", "per_feature"), ("overall", "overall"))
    }
    run.write("output", score_file(prediction, scores))


if __name__ == "__main__":
    run_component(__file__, main)

"""Pearson and Spearman correlations of a predict-modality prediction (per-cell ones with each
cell's contribution)."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.contributions import Contributions
from scmib.metrics.inputs import aligned_layers, score_file
from scmib.metrics.regression import pearsons, spearmans


def main(run: ComponentRun) -> None:
    prediction, solution = run.read("input_prediction"), run.read("input_test_mod2")
    truth, predicted = aligned_layers(prediction, solution, str(run.path("input_prediction")))
    scores, per_cell = {}, {}
    for name, function in (("pearson", pearsons), ("spearman", spearmans)):
        for axis, label in (("cell", "per_cell"), ("feature", "per_feature"), ("overall", "overall")):
            correlations = function(truth, predicted, axis)
            scores[f"{name}_{label}"] = float(correlations.mean())
            if axis == "cell":
                per_cell[f"{name}_{label}"] = Contributions(correlations)
    run.write("output", score_file(prediction, scores, contributions=per_cell, cells=solution.obs_names))


if __name__ == "__main__":
    run_component(__file__, main)

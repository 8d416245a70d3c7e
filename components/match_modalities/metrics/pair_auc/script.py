"""AUPR and AUROC of the weights for the true pairs."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.inputs import score_file
from scmib.metrics.matching import checked_weights, pair_auc, solution_pairing


def main(run: ComponentRun) -> None:
    prediction, solution = run.read("input_prediction"), run.read("input_test_sol")
    weights = checked_weights(prediction, solution, str(run.path("input_prediction")))
    aupr, auroc = pair_auc(weights, solution_pairing(solution))
    run.write("output", score_file(prediction, {"aupr": aupr, "auroc": auroc}))


if __name__ == "__main__":
    run_component(__file__, main)

"""The competition's match probability, with each test cell's contribution."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.contributions import Contributions
from scmib.metrics.inputs import score_file
from scmib.metrics.matching import checked_weights, match_probabilities, solution_pairing


def main(run: ComponentRun) -> None:
    prediction, solution = run.read("input_prediction"), run.read("input_test_sol")
    weights = checked_weights(prediction, solution, str(run.path("input_prediction")))
    probabilities = match_probabilities(weights, solution_pairing(solution))  # match_probability: their mean
    per_cell = {"match_probability": Contributions(probabilities)}
    value = float(probabilities.mean())
    score = score_file(
        prediction, {"match_probability": value}, contributions=per_cell, cells=solution.obs_names
    )
    run.write("output", score)


if __name__ == "__main__":
    run_component(__file__, main)

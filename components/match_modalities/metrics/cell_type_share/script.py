"""Share of each cell's weight on cells of its own type, with each test cell's contribution."""

from scmib.component import ComponentRun, run_component
from scmib.errors import NotApplicable
from scmib.metrics.contributions import Contributions
from scmib.metrics.inputs import score_file
from scmib.metrics.matching import cell_type_shares, checked_weights, solution_pairing


def main(run: ComponentRun) -> None:
    prediction, solution = run.read("input_prediction"), run.read("input_test_sol")
    if "cell_type" not in solution.obs:
        raise NotApplicable(f"solution '{run.path('input_test_sol')}' has no obs['cell_type']")
    weights = checked_weights(prediction, solution, str(run.path("input_prediction")))
    pairing, cell_types = solution_pairing(solution), solution.obs["cell_type"].to_numpy()
    shares = cell_type_shares(weights, pairing, cell_types)  # cell_type_share is their mean
    per_cell = {"cell_type_share": Contributions(shares)}
    value = {"cell_type_share": float(shares.mean())}
    score = score_file(prediction, value, contributions=per_cell, cells=solution.obs_names)
    run.write("output", score)


if __name__ == "__main__":
    run_component(__file__, main)

"""Whether a matching has the competition's output format."""

import sys

from scmib.component import ComponentRun, run_component
from scmib.metrics.inputs import score_file
from scmib.metrics.matching import format_problems


def main(run: ComponentRun) -> None:
    prediction, solution = run.read("input_prediction"), run.read("input_test_sol")
    problems = format_problems(prediction.X, solution.n_obs)
    for problem in problems:
        print(f"format: {run.path('input_prediction')}: X: {problem}", file=sys.stderr)
    run.write("output", score_file(prediction, {"format_ok": float(not problems)}))


if __name__ == "__main__":
    run_component(__file__, main)

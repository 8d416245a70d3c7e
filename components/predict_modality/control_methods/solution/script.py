"""Positive control: return the solution."""

from scmib.component import ComponentRun, run_component
from scmib.processing.predict_modality import prediction_file


def main(run: ComponentRun) -> None:
    test_mod1 = run.read("input_test_mod1", layers=())
    test_mod2 = run.read("input_test_mod2", layers=("normalized",))
    run.write("output", prediction_file(test_mod2.layers["normalized"], test_mod1, test_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

"""Positive control: the true pairing."""

from scmib.component import ComponentRun, run_component
from scmib.methods.matching import matching_file


def main(run: ComponentRun) -> None:
    # Cell names and batches only: the matrices are not used.
    test_mod1 = run.read("input_test_mod1", layers=())
    test_mod2 = run.read("input_test_mod2", layers=())
    run.write("output", matching_file(run.read("input_test_sol").X, test_mod1, test_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

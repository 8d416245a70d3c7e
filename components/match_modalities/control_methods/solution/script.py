"""Positive control: the true pairing."""

from scmib.component import ComponentRun, run_component
from scmib.methods.matching import matching_file


def main(run: ComponentRun) -> None:
    test_mod1, test_mod2 = run.read("input_test_mod1"), run.read("input_test_mod2")
    run.write("output", matching_file(run.read("input_test_sol").X, test_mod1, test_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

"""Make match-modalities task files from a common dataset."""

from scmib.component import ComponentRun, run_component
from scmib.processing.match_modalities import make_match_modalities


def main(run: ComponentRun) -> None:
    files = make_match_modalities(
        run.read("input_rna"),
        run.read("input_mod2"),
        run.par["direction"],
        n_test_cells=run.par["n_test_cells"],
        seed=run.par["seed"],
    )
    for name in ("train_mod1", "train_mod2", "train_sol", "test_mod1", "test_mod2", "test_sol"):
        run.write(f"output_{name}", getattr(files, name))


if __name__ == "__main__":
    run_component(__file__, main)

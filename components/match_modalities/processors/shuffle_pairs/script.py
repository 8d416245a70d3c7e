"""Make match-modalities task files from a common dataset."""

from scmib.component import ComponentRun, run_component
from scmib.processing.match_modalities import make_match_modalities


def main(run: ComponentRun) -> None:
    # The inputs' matrices stay on disk: each task file's layers are read from them as it is written.
    files = make_match_modalities(
        run.read("input_rna", lazy=True),
        run.read("input_mod2", lazy=True),
        run.par["direction"],
        n_test_cells=run.par["n_test_cells"],
        seed=run.par["seed"],
    )
    for name in ("train_mod1", "train_mod2", "test_mod1", "test_mod2"):
        task_file = getattr(files, name)
        run.write(f"output_{name}", task_file.adata, task_file.layers)
    for name in ("train_sol", "test_sol"):
        run.write(f"output_{name}", getattr(files, name))


if __name__ == "__main__":
    run_component(__file__, main)

"""Make predict-modality task files from a common dataset."""

from scmib.component import ComponentRun, run_component
from scmib.processing.predict_modality import make_predict_modality


def main(run: ComponentRun) -> None:
    files = make_predict_modality(
        run.read("input_rna"),
        run.read("input_mod2"),
        run.par["direction"],
        n_test_cells=run.par["n_test_cells"],
        n_target_peaks=run.par["n_target_peaks"],
        seed=run.par["seed"],
    )
    # One file at a time: each is written and let go before the next is made.
    for name, task_file in files:
        run.write(f"output_{name}", task_file)


if __name__ == "__main__":
    run_component(__file__, main)

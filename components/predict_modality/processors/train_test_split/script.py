"""Make predict-modality task files from a common dataset."""

from scmib.component import ComponentRun, run_component
from scmib.processing.predict_modality import make_predict_modality


def main(run: ComponentRun) -> None:
    # The inputs' matrices stay on disk: each task file's layers are read from them as it is written.
    files = make_predict_modality(
        run.read("input_rna", lazy=True),
        run.read("input_mod2", lazy=True),
        run.par["direction"],
        n_test_cells=run.par["n_test_cells"],
        n_target_peaks=run.par["n_target_peaks"],
        seed=run.par["seed"],
    )
    for name, task_file in files.items():
        run.write(f"output_{name}", task_file.adata, task_file.layers)


if __name__ == "__main__":
    run_component(__file__, main)

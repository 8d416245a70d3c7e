"""Make joint-embedding task files from a common dataset."""

from scmib.component import ComponentRun, run_component
from scmib.processing.joint_embedding import make_joint_embedding


def main(run: ComponentRun) -> None:
    files = make_joint_embedding(
        run.read("input_rna"),
        run.read("input_mod2"),
        run.par["pair"],
        seed=run.par["seed"],
        n_cells=run.par["n_cells"],
    )
    for name in ("mod1", "mod2"):
        task_file = getattr(files, name)
        run.write(f"output_{name}", task_file.adata, task_file.layers)
    run.write("output_solution", files.solution)


if __name__ == "__main__":
    run_component(__file__, main)

"""PCA/LSI of each modality, balanced and concatenated."""

from scmib.component import ComponentRun, run_component
from scmib.methods.embedding import read_embedding_inputs


def main(run: ComponentRun) -> None:
    inputs = read_embedding_inputs(run)
    run.write("output", inputs.output(inputs.concatenated(run.par["n_components"], run.par["seed"])))


if __name__ == "__main__":
    run_component(__file__, main)

"""MNN correction of the concatenated per-modality reductions."""

from scmib.component import ComponentRun, run_component
from scmib.methods.embedding import read_embedding_inputs
from scmib.methods.mnn import mnn_correct


def main(run: ComponentRun) -> None:
    inputs = read_embedding_inputs(run)
    concat = inputs.concatenated(run.par["n_components"], run.par["seed"])
    corrected = mnn_correct(concat, inputs.batches.to_numpy(), k=run.par["k"], sigma=run.par["sigma"])
    run.write("output", inputs.output(corrected))


if __name__ == "__main__":
    run_component(__file__, main)

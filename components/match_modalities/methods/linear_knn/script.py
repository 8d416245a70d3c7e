"""Ridge regression between per-modality reductions, then kNN weights within batch."""

from scmib.component import ComponentRun, run_component
from scmib.methods.alignment import ridge_map
from scmib.methods.matching import knn_weights
from scmib.methods.paired_inputs import read_paired_reductions


def main(run: ComponentRun) -> None:
    data = read_paired_reductions(run, run.par["n_components"], run.par["seed"])
    predicted = ridge_map(data.train1, data.train2, data.test1, run.par["alpha"])
    k = run.par["n_neighbors"]
    run.write("output", data.prediction(lambda rows, cols: knn_weights(predicted[rows], data.test2[cols], k)))


if __name__ == "__main__":
    run_component(__file__, main)

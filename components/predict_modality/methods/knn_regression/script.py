"""kNN regression in a joint truncated-SVD space of the input modality."""

import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from scmib.component import ComponentRun, run_component
from scmib.methods.reduction import joint_svd
from scmib.processing.predict_modality import prediction_file, read_normalized_inputs


def main(run: ComponentRun) -> None:
    train_mod1, train_mod2, test_mod1 = read_normalized_inputs(run)
    train_emb, test_emb = joint_svd(
        train_mod1.layers["normalized"],
        test_mod1.layers["normalized"],
        run.par["n_components"],
        run.par["seed"],
    )
    k = run.at_most("n_neighbors", train_mod1.n_obs, f"{train_mod1.n_obs:,} training cells")
    # Averaging neighbours is a sparse (test x train) matrix with 1/k per row times the
    # targets: it never densifies the training targets (10k ATAC peaks x all cells).
    weights = NearestNeighbors(n_neighbors=k).fit(train_emb).kneighbors_graph(test_emb) / k
    values = sp.csr_matrix(weights) @ sp.csr_matrix(train_mod2.layers["normalized"])
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

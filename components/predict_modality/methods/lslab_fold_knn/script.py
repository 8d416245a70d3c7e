"""LS lab: kNN regression in SVD space, averaged over models fitted on k-fold subsets."""

import scipy.sparse as sp
from sklearn.model_selection import KFold
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
    targets = sp.csr_matrix(train_mod2.layers["normalized"])
    n_folds = min(run.par["n_folds"], train_mod1.n_obs)
    folds = KFold(n_folds, shuffle=True, random_state=run.par["seed"]).split(train_emb)
    # Sum over models of a sparse (test x train) neighbour-averaging matrix, then one product.
    weights = sp.csr_matrix((test_mod1.n_obs, train_mod1.n_obs))
    for kept, _ in folds:
        k = min(run.par["n_neighbors"], len(kept))
        graph = NearestNeighbors(n_neighbors=k).fit(train_emb[kept]).kneighbors_graph(test_emb) / k
        weights = weights + graph @ sp.identity(train_mod1.n_obs, format="csr")[kept]
    values = (weights / n_folds) @ targets
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

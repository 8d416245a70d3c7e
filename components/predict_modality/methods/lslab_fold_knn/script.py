"""LS lab: kNN regression in SVD space onto a target SVD, averaged over models fitted on k-fold subsets."""

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors

from scmib.component import ComponentRun, run_component
from scmib.methods.reduction import joint_svd
from scmib.processing.predict_modality import prediction_file, read_normalized_inputs


def main(run: ComponentRun) -> None:
    train_mod1, train_mod2, test_mod1 = read_normalized_inputs(run)
    seed = run.par["seed"]
    train_emb, test_emb = joint_svd(
        train_mod1.layers["normalized"], test_mod1.layers["normalized"], run.par["n_components"], seed
    )
    targets = sp.csr_matrix(train_mod2.layers["normalized"])
    n_target = max(1, min(run.par["n_components_target"], min(targets.shape) - 1))
    batches = train_mod1.obs["batch"].astype(str).to_numpy()
    n_folds = run.at_most("n_folds", train_mod1.n_obs, f"{train_mod1.n_obs:,} training cells")
    # As LS lab: folds stratified by batch, each fold's model leaves one out.
    folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(train_emb, batches)
    values = np.zeros((test_mod1.n_obs, targets.shape[1]))
    for kept, _ in folds:
        target_svd = TruncatedSVD(n_target, random_state=seed)
        target_components = target_svd.fit_transform(targets[kept])
        k = min(run.par["n_neighbors"], len(kept))
        neighbours = NearestNeighbors(n_neighbors=k).fit(train_emb[kept]).kneighbors_graph(test_emb) / k
        values += (neighbours @ target_components) @ target_svd.components_
    run.write("output", prediction_file(values / n_folds, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

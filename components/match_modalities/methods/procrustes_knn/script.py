"""Procrustes alignment of per-modality reductions, then kNN weights within batch."""

from scmib.component import ComponentRun, run_component
from scmib.methods.alignment import procrustes_map
from scmib.methods.features import modality_embedding
from scmib.methods.matching import (
    batch_groups,
    knn_weights,
    match_within_groups,
    matching_file,
    training_pairs,
)


def main(run: ComponentRun) -> None:
    train_mod1, test_mod1, test_mod2 = (
        run.read("input_train_mod1"),
        run.read("input_test_mod1"),
        run.read("input_test_mod2"),
    )
    train_mod2 = training_pairs(run.read("input_train_mod2"), run.read("input_train_sol"))
    k, seed = run.par["n_components"], run.par["seed"]
    train1, test1 = modality_embedding(train_mod1, test_mod1, k, seed)
    train2, test2 = modality_embedding(train_mod2, test_mod2, k, seed)
    mapped, target = procrustes_map(train1, train2, test1, test2)
    weights = match_within_groups(
        batch_groups(test_mod1, test_mod2),
        (test_mod1.n_obs, test_mod2.n_obs),
        lambda rows, cols: knn_weights(mapped[rows], target[cols], run.par["n_neighbors"]),
    )
    run.write("output", matching_file(weights, test_mod1, test_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

"""CLIP-style contrastive encoders, then a one-to-one assignment within batch."""

import numpy as np

from scmib.component import ComponentRun, run_component
from scmib.methods.features import modality_embedding
from scmib.methods.matching import assign, batch_groups, match_within_groups, matching_file, training_pairs


def main(run: ComponentRun) -> None:
    from scmib.methods.contrastive import ContrastiveConfig, embed, train_dual_encoder
    from scmib.methods.torch_models import resolve_device

    par = run.par
    train_mod1, test_mod1, test_mod2 = (
        run.read("input_train_mod1"),
        run.read("input_test_mod1"),
        run.read("input_test_mod2"),
    )
    train_mod2 = training_pairs(run.read("input_train_mod2"), run.read("input_train_sol"))
    train1, test1 = modality_embedding(train_mod1, test_mod1, par["n_components"], par["seed"])
    train2, test2 = modality_embedding(train_mod2, test_mod2, par["n_components"], par["seed"])
    config = ContrastiveConfig(hidden=par["hidden"], n_latent=par["n_latent"], epochs=par["epochs"])
    device = resolve_device(par["device"])
    batches = train_mod1.obs["batch"].astype(str).to_numpy()
    # Concatenating each model's unit embeddings scaled by 1/sqrt(M) makes one dot product
    # the ensemble's mean cosine similarity.
    parts = [
        embed(
            train_dual_encoder(train1, train2, batches, config, device, par["seed"] + m), test1, test2, device
        )
        for m in range(par["n_models"])
    ]
    z1 = np.hstack([p[0] for p in parts]) / np.sqrt(len(parts))
    z2 = np.hstack([p[1] for p in parts]) / np.sqrt(len(parts))
    weights = match_within_groups(
        batch_groups(test_mod1, test_mod2),
        (test_mod1.n_obs, test_mod2.n_obs),
        lambda rows, cols: assign(
            z1[rows] @ z2[cols].T, par["assignment"], par["n_neighbors"], reg=par["sinkhorn_reg"]
        ),
    )
    run.write("output", matching_file(weights, test_mod1, test_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

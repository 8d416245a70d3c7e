"""CLUE-style cross-linked VAE, then mutual nearest neighbours within batch."""

from scmib.component import ComponentRun, run_component
from scmib.methods.features import modality_embedding
from scmib.methods.matching import (
    batch_groups,
    match_within_groups,
    matching_file,
    mutual_nearest_neighbours,
    training_pairs,
)


def main(run: ComponentRun) -> None:
    from scmib.methods.cross_vae import CrossVAEConfig, joint_embedding, train_cross_vae
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
    config = CrossVAEConfig(
        hidden=par["hidden"],
        n_latent=par["n_latent"],
        epochs=par["epochs"],
        align_weight=par["align_weight"],
        adversarial_weight=par["adversarial_weight"],
    )
    device = resolve_device(par["device"])
    batches = train_mod1.obs["batch"].astype(str).to_numpy()
    model = train_cross_vae(train1, train2, batches, config, device, par["seed"])
    z1, z2 = joint_embedding(model, 0, test1, device), joint_embedding(model, 1, test2, device)
    weights = match_within_groups(
        batch_groups(test_mod1, test_mod2),
        (test_mod1.n_obs, test_mod2.n_obs),
        lambda rows, cols: mutual_nearest_neighbours(z1[rows] @ z2[cols].T, par["n_neighbors"]),
    )
    run.write("output", matching_file(weights, test_mod1, test_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

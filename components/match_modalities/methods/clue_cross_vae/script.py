"""CLUE-style cross-linked VAE, then mutual nearest neighbours within batch."""

from scmib.component import ComponentRun, run_component
from scmib.methods.matching import mutual_nearest_neighbours
from scmib.methods.paired_inputs import read_paired_reductions


def main(run: ComponentRun) -> None:
    from scmib.methods.cross_vae import CrossVAEConfig, joint_embedding, train_cross_vae
    from scmib.methods.torch_models import resolve_device

    par = run.par
    data = read_paired_reductions(run, par["n_components"], par["seed"])
    config = CrossVAEConfig(
        hidden=par["hidden"],
        n_latent=par["n_latent"],
        epochs=par["epochs"],
        align_weight=par["align_weight"],
        adversarial_weight=par["adversarial_weight"],
    )
    device = resolve_device(par["device"])
    model = train_cross_vae(data.train1, data.train2, data.train_batches, config, device, par["seed"])
    z1, z2 = joint_embedding(model, 0, data.test1, device), joint_embedding(model, 1, data.test2, device)
    k = par["n_neighbors"]
    run.write(
        "output", data.prediction(lambda rows, cols: mutual_nearest_neighbours(z1[rows] @ z2[cols].T, k))
    )


if __name__ == "__main__":
    run_component(__file__, main)

"""CLIP-style contrastive encoders, then a one-to-one assignment within batch."""

import numpy as np

from scmib.component import ComponentRun, run_component
from scmib.methods.matching import assign
from scmib.methods.paired_inputs import read_paired_reductions


def main(run: ComponentRun) -> None:
    from scmib.methods.contrastive import ContrastiveConfig, embed, train_dual_encoder
    from scmib.methods.torch_models import fold_validation, resolve_device

    par = run.par
    data = read_paired_reductions(run, par["n_components"], par["seed"])
    config = ContrastiveConfig(hidden=par["hidden"], n_latent=par["n_latent"], epochs=par["epochs"])
    device = resolve_device(par["device"])
    n_models, n_cells = par["n_models"], len(data.train_batches)
    parts = []
    for m in range(n_models):
        # Novel's k-fold ensemble: model m stops early on fold m of the training cells.
        folds = fold_validation(n_cells, n_models, m, par["seed"]) if n_models > 1 else None
        # Seeds seed * M + m: the runs of seeds 0, 1, 2 (--seeds) share no model's initialisation.
        model = train_dual_encoder(
            data.train1, data.train2, data.train_batches, config, device, par["seed"] * n_models + m, folds
        )
        parts.append(embed(model, data.test1, data.test2, device))
    # Concatenating each model's unit embeddings scaled by 1/sqrt(M) makes one dot product
    # the ensemble's mean cosine similarity.
    z1 = np.hstack([p[0] for p in parts]) / np.sqrt(len(parts))
    z2 = np.hstack([p[1] for p in parts]) / np.sqrt(len(parts))
    prediction = data.prediction(
        lambda rows, cols: assign(
            z1[rows] @ z2[cols].T, par["assignment"], par["n_neighbors"], reg=par["sinkhorn_reg"]
        )
    )
    run.write("output", prediction)


if __name__ == "__main__":
    run_component(__file__, main)

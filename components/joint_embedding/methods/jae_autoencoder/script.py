"""JAE-style autoencoder with supervised latent units."""

import harmonypy
import numpy as np
import pandas as pd

from scmib.component import ComponentRun, run_component
from scmib.methods.autoencoders import AutoencoderConfig, train_joint_autoencoder
from scmib.methods.embedding import balanced_concat, pseudo_labels, read_embedding_inputs
from scmib.methods.features import zscore_rows
from scmib.methods.torch_models import resolve_device
from scmib.processing.cell_cycle import cell_cycle_scores


def main(run: ComponentRun) -> None:
    par = run.par
    inputs = read_embedding_inputs(run)
    blocks = inputs.reductions(par["n_components"], par["seed"])
    batches = pd.Categorical(inputs.batches)
    corrected = harmonypy.run_harmony(
        balanced_concat(blocks),
        pd.DataFrame({"batch": batches}),
        "batch",
        random_state=par["seed"],
        verbose=False,
    ).Z_corr
    types = pseudo_labels(corrected, par["resolution"], par["seed"])
    gex = inputs.mod1.copy()
    gex.X = gex.layers["normalized"]
    organism = str(inputs.mod1.uns.get("organism", ""))
    scores = cell_cycle_scores(gex, inputs.batches, organism) if organism in ("human", "mouse") else None
    # Raw scores (spread ~0.2): z-scored targets made the cycle units dominate the latent variance.
    cycle = None if scores is None else scores.to_numpy()
    config = AutoencoderConfig(
        hidden=par["hidden"],
        n_latent=max(par["n_latent"], types.max() + 4),
        epochs=par["epochs"],
        confusion_weight=par["confusion_weight"],
    )
    features = np.hstack([zscore_rows(b) for b in blocks]).astype(np.float32)
    latent = train_joint_autoencoder(
        features,
        types,
        cycle,
        batches.codes.astype(np.int64),
        config,
        resolve_device(par["device"]),
        par["seed"],
    )
    run.write("output", inputs.output(latent[:, :100]))


if __name__ == "__main__":
    run_component(__file__, main)

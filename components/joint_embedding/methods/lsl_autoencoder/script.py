"""LSL-style autoencoder with a shared linear bottleneck."""

import numpy as np

from scmib.component import ComponentRun, run_component
from scmib.methods.autoencoders import AutoencoderConfig, train_shared_linear_autoencoder
from scmib.methods.embedding import read_embedding_inputs
from scmib.methods.features import zscore_rows
from scmib.methods.torch_models import resolve_device


def main(run: ComponentRun) -> None:
    par = run.par
    inputs = read_embedding_inputs(run)
    blocks = tuple(
        zscore_rows(b).astype(np.float32) for b in inputs.reductions(par["n_components"], par["seed"])
    )
    config = AutoencoderConfig(
        hidden=par["hidden"],
        n_latent=par["n_latent"],
        epochs=par["epochs"],
        orthogonal_weight=par["orthogonal_weight"],
    )
    latent = train_shared_linear_autoencoder(blocks, config, resolve_device(par["device"]), par["seed"])
    run.write("output", inputs.output(latent))


if __name__ == "__main__":
    run_component(__file__, main)

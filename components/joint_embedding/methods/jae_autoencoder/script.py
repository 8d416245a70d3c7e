"""JAE: an autoencoder whose latent units learn cell types, batch confusion and the cell cycle."""

import anndata as ad
import harmonypy
import pandas as pd

from scmib.component import ComponentRun, run_component
from scmib.errors import ScmibError
from scmib.methods.embedding import balanced_concat, pseudo_labels, read_embedding_inputs
from scmib.methods.jae import JaeConfig, jae_inputs, train_jae
from scmib.methods.torch_models import resolve_device
from scmib.processing.cell_cycle import cell_cycle_scores
from scmib.processing.predict_modality import modality_of

#: PCA/LSI components per modality of the embedding the pseudo-labels are clustered on.
LABEL_COMPONENTS = 50


def main(run: ComponentRun) -> None:
    par = run.par
    inputs = read_embedding_inputs(run)
    batches = pd.Categorical(inputs.batches)
    # The task gives no cell types: Leiden clusters of the Harmony-corrected PCA/LSI stand in
    # for the labelled cells JAE pre-trained on.
    corrected = harmonypy.run_harmony(
        balanced_concat(inputs.reductions(LABEL_COMPONENTS, par["seed"])),
        pd.DataFrame({"batch": batches}),
        "batch",
        random_state=par["seed"],
        verbose=False,
    ).Z_corr
    types = pseudo_labels(corrected, par["resolution"], par["seed"])
    mod1 = inputs.mod1  # the cell cycle is scored on its normalised values (no copy of the file)
    gex = ad.AnnData(
        mod1.layers["normalized"],
        obs=pd.DataFrame(index=mod1.obs_names),
        var=pd.DataFrame(index=mod1.var_names),
    )
    organism = str(inputs.mod1.uns.get("organism", ""))
    scores = cell_cycle_scores(gex, inputs.batches, organism) if organism in ("human", "mouse") else None
    n_latent = types.max() + 1 + len(batches.categories) + (0 if scores is None else 2) + 5
    if n_latent > 100:
        raise ScmibError(
            f"{n_latent} latent units ({types.max() + 1} pseudo cell types, {len(batches.categories)} "
            "batches, the cell cycle and 5 free) exceed the task's 100 dimensions: lower --resolution"
        )
    atac = modality_of(inputs.mod2) == "ATAC"
    features = jae_inputs(
        (inputs.mod1.layers["counts"], inputs.mod2.layers["counts"]),
        reduce=(True, atac),
        n_components=par["n_components"],
        seed=par["seed"],
    )
    config = JaeConfig(
        max_epochs=par["max_epochs"], patience=par["patience"], fine_tune_epochs=2 if atac else 1
    )
    latent = train_jae(
        features,
        types,
        batches.codes,
        None if scores is None else scores.to_numpy(),
        config,
        resolve_device(par["device"]),
        par["seed"],
    )
    run.write("output", inputs.output(latent))


if __name__ == "__main__":
    run_component(__file__, main)

"""Per-modality truncated SVD, each z-scored per cell, concatenated (Guanlab)."""

import numpy as np

from scmib.component import ComponentRun, run_component
from scmib.methods.embedding import read_embedding_inputs
from scmib.methods.features import zscore_rows
from scmib.methods.reduction import truncated_svd
from scmib.processing.predict_modality import modality_of

#: Guanlab's component counts (GEX, second modality).
GUANLAB_SIZES = {"ADT": (73, 27), "ATAC": (38, 62)}


def main(run: ComponentRun) -> None:
    inputs = read_embedding_inputs(run, layers=("normalized",))
    default = GUANLAB_SIZES[modality_of(inputs.mod2)]
    blocks = []
    for adata, name, fallback in zip((inputs.mod1, inputs.mod2), ("n_mod1", "n_mod2"), default, strict=True):
        values = adata.layers["normalized"]
        k = max(1, min(run.par[name] or fallback, min(values.shape) - 1))
        # As Guanlab's code: an uncentred SVD of each modality's normalised values (ATAC's binary
        # ones too, first component kept), each cell z-scored within its modality.
        blocks.append(zscore_rows(truncated_svd(values, k, run.par["seed"])))
    run.write("output", inputs.output(np.hstack(blocks)))


if __name__ == "__main__":
    run_component(__file__, main)

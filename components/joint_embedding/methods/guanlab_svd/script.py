"""Per-modality truncated SVD, concatenated, z-scored per cell (Guanlab)."""

import numpy as np

from scmib.component import ComponentRun, run_component
from scmib.methods.embedding import read_embedding_inputs
from scmib.methods.features import zscore_rows
from scmib.processing.predict_modality import modality_of

#: Guanlab's component counts (GEX, second modality).
GUANLAB_SIZES = {"ADT": (73, 27), "ATAC": (38, 62)}


def main(run: ComponentRun) -> None:
    inputs = read_embedding_inputs(run)
    default = GUANLAB_SIZES[modality_of(inputs.mod2)]
    sizes = tuple(
        run.par[name] or fallback for name, fallback in zip(("n_mod1", "n_mod2"), default, strict=True)
    )
    blocks = inputs.reductions(sizes, run.par["seed"], centred=False)
    run.write("output", inputs.output(zscore_rows(np.hstack(blocks))))


if __name__ == "__main__":
    run_component(__file__, main)

"""Harmony on the concatenated per-modality reductions."""

import harmonypy
import pandas as pd

from scmib.component import ComponentRun, run_component
from scmib.methods.embedding import read_embedding_inputs


def main(run: ComponentRun) -> None:
    inputs = read_embedding_inputs(run)
    concat = inputs.concatenated(run.par["n_components"], run.par["seed"])
    meta = pd.DataFrame({"batch": inputs.batches.to_numpy()})
    harmony = harmonypy.run_harmony(
        concat, meta, "batch", theta=run.par["theta"], random_state=run.par["seed"], verbose=False
    )
    corrected = harmony.Z_corr if harmony.Z_corr.shape[0] == len(concat) else harmony.Z_corr.T
    run.write("output", inputs.output(corrected))


if __name__ == "__main__":
    run_component(__file__, main)

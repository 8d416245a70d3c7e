"""Landmark MDS of both modalities' normalised values side by side (the organisers' LMDS baseline)."""

import scipy.sparse as sp

from scmib.component import ComponentRun, run_component
from scmib.methods.embedding import read_embedding_inputs
from scmib.methods.landmark_mds import landmark_mds


def main(run: ComponentRun) -> None:
    par = run.par
    inputs = read_embedding_inputs(run, layers=("normalized",))
    values = sp.hstack(
        [sp.csr_matrix(adata.layers["normalized"]) for adata in (inputs.mod1, inputs.mod2)], format="csr"
    )
    del inputs.mod1.layers["normalized"], inputs.mod2.layers["normalized"]
    embedding = landmark_mds(values, par["n_dims"], par["n_landmarks"], par["distance"], par["seed"])
    run.write("output", inputs.output(embedding))


if __name__ == "__main__":
    run_component(__file__, main)

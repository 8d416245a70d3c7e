"""UMAP of the PCA of both modalities' most variable features (the organisers' UMAP baseline)."""

from scmib.component import ComponentRun, run_component
from scmib.methods.embedding import most_variable_columns, read_embedding_inputs, umap_of_pca


def main(run: ComponentRun) -> None:
    par = run.par
    inputs = read_embedding_inputs(run, layers=("normalized",))
    blocks = [
        most_variable_columns(adata.layers["normalized"], par["n_features"])
        for adata in (inputs.mod1, inputs.mod2)
    ]
    embedding = umap_of_pca(blocks, par["n_pcs"], par["n_dims"], par["n_neighbors"], par["seed"])
    run.write("output", inputs.output(embedding))


if __name__ == "__main__":
    run_component(__file__, main)

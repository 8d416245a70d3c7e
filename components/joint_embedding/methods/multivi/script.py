"""MultiVI latent space as the joint embedding."""

from scmib.component import ComponentRun, run_component
from scmib.methods.embedding import read_embedding_inputs
from scmib.methods.scvi_models import multivi_latent


def main(run: ComponentRun) -> None:
    par = run.par
    inputs = read_embedding_inputs(run)
    latent = multivi_latent(
        inputs.mod1,
        inputs.mod2,
        par["n_genes"],
        par["n_latent"],
        par["max_epochs"],
        par["device"],
        par["seed"],
        par["min_cell_fraction"],
    )
    run.write("output", inputs.output(latent))


if __name__ == "__main__":
    run_component(__file__, main)

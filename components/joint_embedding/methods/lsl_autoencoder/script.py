"""LSL_AE: per-modality orthogonal encoders joined by a shared linear bottleneck."""

from scmib.component import ComponentRun, run_component
from scmib.data.filters import FilterLog
from scmib.methods.embedding import read_embedding_inputs
from scmib.methods.lsl_ae import LslConfig, lsl_inputs, train_lsl_ae
from scmib.methods.torch_models import resolve_device


def main(run: ComponentRun) -> None:
    par = run.par
    inputs = read_embedding_inputs(run)
    gex, mod2 = lsl_inputs(inputs.mod1, inputs.mod2, inputs.batches, par["min_cell_fraction"], FilterLog())
    config = LslConfig(max_epochs=par["max_epochs"], patience=par["patience"])
    latent = train_lsl_ae((gex, mod2), config, resolve_device(par["device"]), par["seed"])
    run.write("output", inputs.output(latent))


if __name__ == "__main__":
    run_component(__file__, main)

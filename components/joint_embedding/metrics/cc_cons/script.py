"""Cell-cycle conservation of the embedding."""

import numpy as np

from scmib.component import ComponentRun, run_component
from scmib.errors import NotApplicable
from scmib.metrics.embedding.cell_cycle import cell_cycle_conservation, stored_variance_before
from scmib.metrics.embedding.inputs import embedding_inputs


def main(run: ComponentRun) -> None:
    solution = run.read("input_solution")
    if not {"S_score", "G2M_score"} <= set(solution.obs):
        raise NotApplicable("the solution has no S_score/G2M_score (too few cell-cycle genes measured)")
    inputs = embedding_inputs(run.read("input_prediction"), solution, str(run.path("input_prediction")))
    if inputs.degenerate:
        run.write(
            "output", inputs.worst({"cc_cons": 0.0}, "every cell at one point: no principal components")
        )
        return
    batches, scores = inputs.obs["batch"].to_numpy(), inputs.obs[["S_score", "G2M_score"]].to_numpy()
    before = stored_variance_before(solution, batches, scores)
    value = cell_cycle_conservation(before, inputs.embedding, batches, scores)
    if np.isnan(value):
        raise NotApplicable("no batch has cell-cycle variance (S/G2M scores explain none of its GEX)")
    run.write("output", inputs.score({"cc_cons": value}))


if __name__ == "__main__":
    run_component(__file__, main)

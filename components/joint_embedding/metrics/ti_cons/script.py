"""Trajectory conservation of the embedding, per modality's pseudotime."""

from scmib.component import ComponentRun, run_component
from scmib.errors import NotApplicable
from scmib.metrics.embedding.inputs import embedding_inputs
from scmib.metrics.embedding.trajectory import trajectory_columns, trajectory_conservation


def main(run: ComponentRun) -> None:
    solution = run.read("input_solution")
    columns = trajectory_columns(solution.obs)
    if columns is None:
        raise NotApplicable("the solution has no pseudotime_order_GEX and pseudotime_order_ADT/ATAC")
    names = dict(zip(("ti_cons_batch_gex", "ti_cons_batch_mod2"), columns, strict=True))
    if empty := [key for key in names.values() if not solution.obs[key].notna().any()]:
        raise NotApplicable(f"no cell of the solution is on a trajectory: {', '.join(empty)} is all NaN")
    inputs = embedding_inputs(run.read("input_prediction"), solution, str(run.path("input_prediction")))
    if inputs.degenerate:
        run.write(
            "output",
            inputs.worst(dict.fromkeys(["ti_cons_batch_mean", *names], 0.0), "every cell at one point"),
        )
        return
    graph = run.read("input_graph")
    labels, batches = inputs.obs["cell_type"].to_numpy(), inputs.obs["batch"].to_numpy()
    values = {
        name: trajectory_conservation(graph, inputs.obs[key].to_numpy(), labels, batches)
        for name, key in names.items()
    }
    run.write("output", inputs.score({"ti_cons_batch_mean": sum(values.values()) / 2, **values}))


if __name__ == "__main__":
    run_component(__file__, main)

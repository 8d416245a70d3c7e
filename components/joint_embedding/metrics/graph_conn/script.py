"""Graph connectivity of the cell types in the embedding's kNN graph."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.embedding.graph import graph_connectivity
from scmib.metrics.embedding.inputs import embedding_inputs


def main(run: ComponentRun) -> None:
    inputs = embedding_inputs(
        run.read("input_prediction"), run.read("input_solution"), str(run.path("input_prediction"))
    )
    if inputs.degenerate:
        run.write("output", inputs.worst({"graph_conn": 0.0}, "every cell at one point: no neighbour graph"))
        return
    graph = run.read("input_graph")
    run.write(
        "output",
        inputs.score(
            {"graph_conn": graph_connectivity(graph.obsp["connectivities"], inputs.obs["cell_type"])}
        ),
    )


if __name__ == "__main__":
    run_component(__file__, main)

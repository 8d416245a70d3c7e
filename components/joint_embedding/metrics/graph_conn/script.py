"""Graph connectivity of the cell types in the embedding's kNN graph, with each cell's contribution."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.contributions import Contributions
from scmib.metrics.embedding.graph import graph_connectivity, in_largest_part
from scmib.metrics.embedding.inputs import embedding_inputs


def main(run: ComponentRun) -> None:
    inputs = embedding_inputs(
        run.read("input_prediction"), run.read("input_solution"), str(run.path("input_prediction"))
    )
    if inputs.degenerate:
        run.write("output", inputs.worst({"graph_conn": 0.0}, "every cell at one point: no neighbour graph"))
        return
    connectivities, labels = run.read("input_graph").obsp["connectivities"], inputs.obs["cell_type"]
    value = graph_connectivity(connectivities, labels)
    per_cell = {"graph_conn": Contributions(in_largest_part(connectivities, labels), labels.to_numpy())}
    run.write("output", inputs.score({"graph_conn": value}, contributions=per_cell))


if __name__ == "__main__":
    run_component(__file__, main)

"""NMI and ARI of the optimal Louvain clustering against the cell types."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.embedding.clustering import ari, optimal_louvain
from scmib.metrics.embedding.inputs import embedding_inputs


def main(run: ComponentRun) -> None:
    inputs = embedding_inputs(
        run.read("input_prediction"), run.read("input_solution"), str(run.path("input_prediction"))
    )
    if inputs.degenerate:
        run.write(
            "output", inputs.worst({"nmi": 0.0, "ari": 0.0}, "every cell at one point: no neighbour graph")
        )
        return
    labels = inputs.obs["cell_type"].to_numpy()
    clusters, nmi, _ = optimal_louvain(run.read("input_graph"), labels)
    run.write("output", inputs.score({"nmi": nmi, "ari": ari(labels, clusters)}))


if __name__ == "__main__":
    run_component(__file__, main)

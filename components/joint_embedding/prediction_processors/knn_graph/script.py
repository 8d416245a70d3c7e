"""The kNN graph of one joint embedding, for every graph metric."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.embedding.graph import embedding_graph
from scmib.metrics.embedding.inputs import embedding_inputs


def main(run: ComponentRun) -> None:
    inputs = embedding_inputs(
        run.read("input_prediction"), run.read("input_solution"), str(run.path("input_prediction"))
    )
    run.write("output", embedding_graph(inputs))


if __name__ == "__main__":
    run_component(__file__, main)

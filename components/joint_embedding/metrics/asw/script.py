"""Silhouette widths of cell types and of batches within cell types."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.embedding.inputs import embedding_inputs
from scmib.metrics.embedding.silhouette import asw_batch, asw_label


def main(run: ComponentRun) -> None:
    inputs = embedding_inputs(
        run.read("input_prediction"), run.read("input_solution"), str(run.path("input_prediction"))
    )
    if inputs.degenerate:
        # Every distance is 0: silhouettes are 0/0 (scikit-learn would call batches perfectly mixed).
        run.write("output", inputs.worst({"asw_label": 0.0, "asw_batch": 0.0}, "every cell at one point"))
        return
    labels, batches = inputs.obs["cell_type"].to_numpy(), inputs.obs["batch"].to_numpy()
    if inputs.one_batch:
        not_applicable = {"asw_batch": "the dataset has one batch: there are no batches to mix"}
        run.write("output", inputs.score({"asw_label": asw_label(inputs.embedding, labels)}, not_applicable))
        return
    values = {
        "asw_label": asw_label(inputs.embedding, labels),
        "asw_batch": asw_batch(inputs.embedding, batches, labels),
    }
    run.write("output", inputs.score(values))


if __name__ == "__main__":
    run_component(__file__, main)

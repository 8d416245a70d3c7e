"""Silhouette widths of cell types and of batches within cell types, with each cell's contribution."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.contributions import Contributions
from scmib.metrics.embedding.inputs import embedding_inputs
from scmib.metrics.embedding.silhouette import asw_batch_per_cell, asw_label_per_cell, mean_over_types


def main(run: ComponentRun) -> None:
    inputs = embedding_inputs(
        run.read("input_prediction"), run.read("input_solution"), str(run.path("input_prediction"))
    )
    # Decided from the data alone, so every embedding of a dataset gets the same metrics.
    not_applicable = (
        {"asw_batch": "the dataset has one batch: there are no batches to mix"} if inputs.one_batch else {}
    )
    if inputs.obs["cell_type"].nunique() < 2:
        not_applicable["asw_label"] = "the dataset has one cell type: there are no types to separate"
    if inputs.degenerate:
        # Every distance is 0: silhouettes are 0/0 (scikit-learn would call batches perfectly mixed).
        worst = {"asw_label": 0.0, "asw_batch": 0.0}
        run.write("output", inputs.worst(worst, "every cell at one point", not_applicable))
        return
    labels, batches = inputs.obs["cell_type"].to_numpy(), inputs.obs["batch"].to_numpy()
    # One silhouette computation gives both the value and each cell's contribution.
    values, per_cell = {}, {}
    if "asw_label" not in not_applicable:
        label_widths = asw_label_per_cell(inputs.embedding, labels)
        values["asw_label"], per_cell["asw_label"] = float(label_widths.mean()), Contributions(label_widths)
    if "asw_batch" not in not_applicable:
        batch_widths = asw_batch_per_cell(inputs.embedding, batches, labels)
        values["asw_batch"] = mean_over_types(batch_widths, labels)
        per_cell["asw_batch"] = Contributions(batch_widths, labels)
    run.write("output", inputs.score(values, not_applicable, per_cell))


if __name__ == "__main__":
    run_component(__file__, main)

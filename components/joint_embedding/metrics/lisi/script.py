"""iLISI and cLISI of the embedding."""

from scmib.component import ComponentRun, run_component
from scmib.metrics.embedding.inputs import embedding_inputs
from scmib.metrics.embedding.lisi import clisi, ilisi


def main(run: ComponentRun) -> None:
    inputs = embedding_inputs(
        run.read("input_prediction"), run.read("input_solution"), str(run.path("input_prediction"))
    )
    obs, emb = inputs.obs, inputs.embedding
    # Decided from the data alone, so every embedding of a dataset gets the same metrics.
    not_applicable = {}
    if inputs.one_batch:
        not_applicable["ilisi"] = "the dataset has one batch: there are no batches to mix"
    if "site" not in obs or obs["site"].nunique() < 2:
        not_applicable["ilisi_site"] = "the dataset has no two sites"
    if inputs.degenerate:
        worst = {"ilisi": 0.0, "ilisi_site": 0.0, "clisi": 0.0}
        run.write("output", inputs.worst(worst, "every cell at one point", not_applicable))
        return
    values = {"clisi": clisi(emb, obs["cell_type"].to_numpy())}
    if "ilisi" not in not_applicable:
        values["ilisi"] = ilisi(emb, obs["batch"].to_numpy())
    if "ilisi_site" not in not_applicable:
        values["ilisi_site"] = ilisi(emb, obs["site"].to_numpy())
    run.write("output", inputs.score(values, not_applicable))


if __name__ == "__main__":
    run_component(__file__, main)

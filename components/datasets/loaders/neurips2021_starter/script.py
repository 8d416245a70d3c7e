"""Load the NeurIPS 2021 starter cells into the common format."""

from scmib.component import ComponentRun, run_component
from scmib.data import sources
from scmib.data.cache import fetch
from scmib.data.common import DatasetMeta, make_common, split_neurips_batch
from scmib.io import read_h5ad


def main(run: ComponentRun) -> None:
    modality = run.par["modality"]
    paths = {
        part: fetch(
            sources.neurips2021_starter(modality, part),
            mirror=run.par["data_mirror"],
            cache_dir=run.par["cache_dir"],
        )
        for part in ("rna", "mod2")
    }
    rna_in, mod2_in = (read_h5ad(paths[p], role=f"source {p}") for p in ("rna", "mod2"))
    obs = rna_in.obs[["batch", "cell_type", "pseudotime_order_GEX", "is_train", "phase"]].copy()
    obs["is_train"] = obs["is_train"].astype(bool)
    obs = obs.join(split_neurips_batch(obs["batch"]))
    mod2_modality = "ADT" if modality == "cite" else "ATAC"
    obs[f"pseudotime_order_{mod2_modality}"] = mod2_in.obs[f"pseudotime_order_{mod2_modality}"]
    rna, mod2 = make_common(
        rna_counts=rna_in.layers["counts"],
        mod2_counts=mod2_in.layers["counts"],
        obs=obs,
        rna_var=rna_in.var[["gene_ids"]],
        mod2_var=mod2_in.var[[]],
        mod2_modality=mod2_modality,
        size_factors=rna_in.obs["size_factors"].to_numpy(),
        # The starter keeps only 600 peaks picked by the organisers: keep them all (no peak filter).
        min_cells_per_peak=None,
        meta=DatasetMeta(
            dataset_id=f"neurips2021_starter_{modality}",
            dataset_name=f"NeurIPS 2021 BMMC {modality} starter",
            organism="human",
            source=str(sources.neurips2021_starter(modality, "rna").url),
            reference="10.5555/3495724.3497112",
        ),
    )
    run.write("output_rna", rna)
    run.write("output_mod2", mod2)


if __name__ == "__main__":
    run_component(__file__, main)

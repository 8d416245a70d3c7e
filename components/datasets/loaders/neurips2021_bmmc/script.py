"""Load the NeurIPS 2021 BMMC data from GEO GSE194122 into the common format."""

import dataclasses

import pandas as pd

from scmib.component import ComponentRun, run_component
from scmib.data import sources
from scmib.data.cache import fetch, gunzipped
from scmib.data.common import DatasetMeta, make_common, split_neurips_batch
from scmib.data.filters import FilterLog
from scmib.errors import ContractError
from scmib.io import read_h5ad
from scmib.processing.split import (
    NEURIPS_TEST_BATCHES,
    NEURIPS_TRAIN_BATCHES,
    NEURIPS_VALID_BATCHES,
)


def main(run: ComponentRun) -> None:
    modality = run.par["modality"]
    source = sources.neurips2021_geo(modality)
    if run.par["source_sha256"]:
        source = dataclasses.replace(source, sha256=run.par["source_sha256"])
    archive = fetch(source, mirror=run.par["data_mirror"], cache_dir=run.par["cache_dir"])
    path = gunzipped(archive, run.par["cache_dir"], sha256=source.sha256)
    adata = read_h5ad(path, role="GEO file")
    mod2_modality = "ADT" if modality == "cite" else "ATAC"
    for column in ("batch", "cell_type", "GEX_size_factors"):
        if column not in adata.obs:
            raise ContractError(f"GEO file '{archive}': obs['{column}'] is missing")
    if "counts" not in adata.layers:
        raise ContractError(f"GEO file '{archive}': layers['counts'] is missing")
    found = set(adata.var["feature_types"].astype(str)) if "feature_types" in adata.var else set()
    if not {"GEX", mod2_modality} <= found:
        raise ContractError(
            f"GEO file '{archive}': var['feature_types'] must name GEX and {mod2_modality} features, "
            f"found {sorted(found) or 'no such column'}"
        )
    competition = {*NEURIPS_TRAIN_BATCHES, *NEURIPS_VALID_BATCHES, *NEURIPS_TEST_BATCHES}
    in_competition = adata.obs["batch"].astype(str).isin(competition).to_numpy()
    filters = FilterLog()
    filters.record("cells", adata.n_obs, int((~in_competition).sum()), "batch not in the competition's split")
    # GEO's obs.is_train: train, test, or iid_holdout, cells the competition did not give out
    # (GEO has 90,261 CITE and 69,249 Multiome cells; its phase 2 had 81,241 and 62,501).
    split = adata.obs.get("is_train", pd.Series("", index=adata.obs_names)).astype(str)
    holdout = (split == "iid_holdout").to_numpy()
    kept = int(in_competition.sum())
    filters.record("cells", kept, int((holdout & in_competition).sum()), "GEO's iid_holdout cells")
    adata = adata[in_competition & ~holdout]
    obs = adata.obs[["batch", "cell_type"]].copy()
    obs = obs.join(split_neurips_batch(obs["batch"]))
    obs["is_train"] = ~obs["batch"].astype(str).isin(NEURIPS_TEST_BATCHES)
    for prefix in ("GEX", mod2_modality):
        if f"{prefix}_pseudotime_order" in adata.obs:
            obs[f"pseudotime_order_{prefix}"] = adata.obs[f"{prefix}_pseudotime_order"]
    if "GEX_phase" in adata.obs:
        obs["phase"] = adata.obs["GEX_phase"].astype(str)
    is_gex = (adata.var["feature_types"] == "GEX").to_numpy()
    is_mod2 = (adata.var["feature_types"] == mod2_modality).to_numpy()
    rna, mod2 = make_common(
        rna_counts=adata.layers["counts"][:, is_gex],
        mod2_counts=adata.layers["counts"][:, is_mod2],
        obs=obs,
        rna_var=adata.var.loc[is_gex, []],
        mod2_var=adata.var.loc[is_mod2, []],
        mod2_modality=mod2_modality,
        size_factors=adata.obs["GEX_size_factors"].to_numpy(),
        filters=filters,
        meta=DatasetMeta(
            dataset_id=f"neurips2021_bmmc_{modality}",
            dataset_name=f"NeurIPS 2021 BMMC {modality} (GEO GSE194122)",
            organism="human",
            source=source.url,
            reference="10.5555/3495724.3497112",
        ),
    )
    run.write("output_rna", rna)
    run.write("output_mod2", mod2)


if __name__ == "__main__":
    run_component(__file__, main)

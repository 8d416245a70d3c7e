"""Synthetic paired data of the NeurIPS 2021 competition's shapes, in the common format."""

from scmib.component import ComponentRun, run_component
from scmib.data.common import DatasetMeta, make_common
from scmib.data.synthetic import SHAPES, synthetic_paired


def main(run: ComponentRun) -> None:
    modality = run.par["modality"]
    gex, mod2, obs, gex_var, mod2_var = synthetic_paired(
        modality, run.par["n_train_cells"], run.par["n_test_cells"], seed=run.par["seed"]
    )
    rna, mod2_file = make_common(
        rna_counts=gex,
        mod2_counts=mod2,
        obs=obs,
        rna_var=gex_var,
        mod2_var=mod2_var,
        mod2_modality=SHAPES[modality].mod2,
        meta=DatasetMeta(
            dataset_id=f"synthetic_competition_{modality}",
            dataset_name=f"Synthetic {modality} data of the NeurIPS 2021 competition's size",
            organism="human",
            source="scmib.data.synthetic (seeded, no download)",
            reference="10.5555/3495724.3497112",
        ),
    )
    run.write("output_rna", rna)
    run.write("output_mod2", mod2_file)


if __name__ == "__main__":
    run_component(__file__, main)

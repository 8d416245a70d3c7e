"""Load the Triana 2021 bone-marrow Abseq data (RNA + protein) into the common format."""

import numpy as np
import pandas as pd
import rdata

from scmib.component import ComponentRun, run_component
from scmib.data import sources
from scmib.data.cache import fetch
from scmib.data.common import DatasetMeta, make_common


def _features(array, prefix: str) -> pd.DataFrame:
    names = [str(n).removeprefix(prefix) for n in array.coords["dim_1"].values]
    return pd.DataFrame(index=pd.Index(names, name=None))


def main(run: ComponentRun) -> None:
    path = fetch(sources.TRIANA2021, mirror=run.par["data_mirror"], cache_dir=run.par["cache_dir"])
    data = rdata.read_rda(path)["triana_data"]
    rna_raw, adt_raw, metadata = data["rna_raw"], data["adt_raw"], data["metadata"]
    cells = rna_raw.coords["dim_0"].values.astype(str)
    if not np.array_equal(cells, adt_raw.coords["dim_0"].values.astype(str)):
        raise ValueError(f"{path}: rna_raw and adt_raw list different cells")
    meta = metadata.loc[cells]
    obs = pd.DataFrame(
        {
            "batch": meta["sample_batch"].astype(str).to_numpy(),
            "cell_type": meta["cellType_refined"].astype(str).to_numpy(),
            "cell_type_broad": meta["cellType_broad"].astype(str).to_numpy(),
            "age_group": meta["sample_class"].astype(str).to_numpy(),
        },
        index=pd.Index(cells),
    )
    rna, adt = make_common(
        rna_counts=np.asarray(rna_raw.values),
        mod2_counts=np.asarray(adt_raw.values),
        obs=obs,
        rna_var=_features(rna_raw, "mod1_"),
        mod2_var=_features(adt_raw, "mod2_"),
        mod2_modality="ADT",
        meta=DatasetMeta(
            dataset_id="triana2021_bm_abseq",
            dataset_name="Triana 2021 human bone marrow Abseq",
            organism="human",
            source=sources.TRIANA2021.url,
            reference="10.1038/s41590-021-01059-0",
        ),
    )
    run.write("output_rna", rna)
    run.write("output_mod2", adt)


if __name__ == "__main__":
    run_component(__file__, main)

"""Load the SNARE-seq2 mouse motor cortex data (RNA + ATAC) into the common format."""

import pandas as pd
import scipy.sparse as sp

from scmib.component import ComponentRun, run_component
from scmib.data import sources
from scmib.data.cache import fetch
from scmib.data.common import DatasetMeta, make_common


def main(run: ComponentRun) -> None:
    files = {
        name: fetch(source, mirror=run.par["data_mirror"], cache_dir=run.par["cache_dir"])
        for name, source in sources.SNARESEQ2_MOP.items()
    }
    meta = pd.read_csv(files["meta_c1.csv"], index_col=0)
    genes = files["genes.txt"].read_text().split()
    regions = files["regions.txt"].read_text().split()
    # The npz matrices are features x cells.
    rna_counts = sp.load_npz(files["GxC1.npz"]).T.tocsr()
    atac_counts = sp.load_npz(files["RxC1.npz"]).T.tocsr()
    if rna_counts.shape != (len(meta), len(genes)) or atac_counts.shape != (len(meta), len(regions)):
        raise ValueError(
            f"matrix shapes {rna_counts.shape}, {atac_counts.shape} do not match "
            f"{len(meta)} cells, {len(genes)} genes, {len(regions)} regions"
        )
    obs = pd.DataFrame(
        {
            "batch": meta["Batch"].astype(str).to_numpy(),
            "cell_type": meta["Ident"].astype(str).to_numpy(),
            "cell_type_broad": meta["cluster (remapped)"].astype(str).to_numpy(),
        },
        index=meta.index.astype(str),
    )
    rna, atac = make_common(
        rna_counts=rna_counts,
        mod2_counts=atac_counts,
        obs=obs,
        rna_var=pd.DataFrame(index=pd.Index(genes)),
        mod2_var=pd.DataFrame(index=pd.Index(regions)),
        mod2_modality="ATAC",
        meta=DatasetMeta(
            dataset_id="snareseq2_mop2021",
            dataset_name="SNARE-seq2 mouse primary motor cortex",
            organism="mouse",
            source=sources.SNARESEQ2_MOP["GxC1.npz"].url,
            reference="10.1038/s41586-021-03950-0",
        ),
    )
    run.write("output_rna", rna)
    run.write("output_mod2", atac)


if __name__ == "__main__":
    run_component(__file__, main)

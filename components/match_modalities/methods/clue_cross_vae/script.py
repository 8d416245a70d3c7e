"""CLUE, the competition's matching winner: its cross-linked VAE, fine-tuned on the test cells,
then shared nearest neighbours within batch."""

import numpy as np
import scipy.sparse as sp

from scmib.component import ComponentRun, run_component
from scmib.methods.matching import (
    batch_groups,
    match_within_groups,
    matching_file,
    shared_nearest_neighbours,
    training_order,
)
from scmib.processing.predict_modality import modality_of

FILES = ("train_mod1", "train_mod2", "test_mod1", "test_mod2")


def main(run: ComponentRun) -> None:
    from scmib.methods import clue
    from scmib.methods.torch_models import resolve_device

    par = run.par
    files = {name: run.read(f"input_{name}", layers=("counts", "normalized")) for name in FILES}
    pairing = training_order(run.read("input_train_sol", layers=()))
    files["train_mod2"] = files["train_mod2"][pairing].copy()
    # The organisers' Multiome starter files give ATAC no batch: training cells take their pair's.
    files["train_mod2"].obs["batch"] = files["train_mod1"].obs["batch"].to_numpy()
    kinds = (modality_of(files["train_mod1"]), modality_of(files["train_mod2"]))
    settings = clue.settings_for(kinds[1] if kinds[0] == "GEX" else kinds[0])
    names = sorted({str(b) for f in files.values() for b in f.obs.get("batch", ["(none)"])})
    train, test = [], []
    for k, kind in enumerate(kinds):
        first, second = files[f"train_mod{k + 1}"], files[f"test_mod{k + 1}"]
        counts = (sp.csr_matrix(first.layers["counts"]), sp.csr_matrix(second.layers["counts"]))
        if kind == "ATAC":
            keep = clue.top_peaks(first.layers["normalized"], settings.n_peaks)
            reduced = clue.clue_lsi(*counts, settings.n_comps)
        else:
            keep = np.ones(first.n_vars, dtype=bool)
            if kind == "GEX":
                batches = first.obs["batch"].astype(str).to_numpy()
                keep = clue.variable_genes(counts[0], batches, first.var_names, settings, "ADT" in kinds)
            reduced = clue.scaled_pca(
                first.layers["normalized"][:, keep], second.layers["normalized"][:, keep], settings.n_comps
            )
        print(
            f"CLUE: {kind} decoded: {keep.sum():,} of {keep.size:,} features; encoded: {reduced[0].shape[1]}"
        )
        for part, cells, values, out in zip((first, second), counts, reduced, (train, test), strict=True):
            batch = part.obs["batch"].astype(str) if "batch" in part.obs else np.full(part.n_obs, "(none)")
            codes = np.searchsorted(names, np.asarray(batch)).astype(np.int64)
            out.append(clue.ModalityData(cells[:, keep].astype(np.float32), values, codes))
    z1, z2 = clue.clue_embeddings(
        tuple(train),
        tuple(test),
        len(names),
        settings,
        resolve_device(par["device"]),
        par["seed"],
        par["max_epochs"],
        par["finetune_epochs"],
    )
    cells = (files["test_mod1"], files["test_mod2"])
    weights = match_within_groups(
        batch_groups(*cells),
        (cells[0].n_obs, cells[1].n_obs),
        lambda r, c: shared_nearest_neighbours(z1[r], z2[c]),
    )
    run.write("output", matching_file(weights, *cells))


if __name__ == "__main__":
    run_component(__file__, main)

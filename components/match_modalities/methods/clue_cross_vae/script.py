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
    pairing = training_order(run.read("input_train_sol", layers=()))
    files = {name: run.read(f"input_{name}", layers=("counts", "normalized")) for name in FILES}
    kinds = (modality_of(files["train_mod1"]), modality_of(files["train_mod2"]))
    settings = clue.settings_for(kinds[1] if kinds[0] == "GEX" else kinds[0])
    # Training cells in mod1's order; the organisers' Multiome starter ATAC files have no batch,
    # so a training cell's batch is read from mod1 and a test file without one gets "(none)".
    batches = files["train_mod1"].obs["batch"].astype(str).to_numpy()
    test_batches = [
        f.obs["batch"].astype(str).to_numpy() if "batch" in f.obs else np.full(f.n_obs, "(none)")
        for f in (files["test_mod1"], files["test_mod2"])
    ]
    names = np.array(sorted({*batches, *test_batches[0], *test_batches[1]}))
    data = []
    for k, kind in enumerate(kinds):
        first, second = files[f"train_mod{k + 1}"], files[f"test_mod{k + 1}"]
        order = pairing if k else np.arange(first.n_obs)  # stored row of each training pair
        if kind == "ATAC":
            keep = clue.top_peaks(first.layers["normalized"], settings.n_peaks)
            train, test = clue.clue_lsi(first.layers["counts"], second.layers["counts"], settings.n_comps)
        else:
            keep = np.ones(first.n_vars, dtype=bool)
            if kind == "GEX":
                stored = np.empty_like(batches)
                stored[order] = batches
                keep = clue.variable_genes(
                    first.layers["counts"], stored, first.var_names, settings, "ADT" in kinds
                )
            train, test = clue.scaled_pca(
                first.layers["normalized"][:, keep], second.layers["normalized"][:, keep], settings.n_comps
            )
        print(f"CLUE: {kind} decoded: {keep.sum():,} of {keep.size:,} features; encoded: {train.shape[1]}")
        parts = [
            sp.csr_matrix(first.layers["counts"])[order][:, keep],
            sp.csr_matrix(second.layers["counts"])[:, keep],
        ]
        for part in (first, second):  # the files' matrices are no longer needed
            for name in list(part.layers):
                del part.layers[name]
        codes = np.searchsorted(names, np.concatenate([batches, test_batches[k]])).astype(np.int64)
        counts = sp.vstack(parts, format="csr", dtype=np.float32)
        data.append(clue.ModalityData(counts, np.concatenate([train[order], test]), codes))
    z1, z2 = clue.clue_embeddings(
        tuple(data),
        len(batches),
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

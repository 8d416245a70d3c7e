"""Novel's matching: CLIP encoders on LSI inputs, one per left-out batch, then a bipartite matching."""

import numpy as np
import scipy.sparse as sp

from scmib.component import ComponentRun, run_component
from scmib.io import keep_layers
from scmib.methods.matching import assign, batch_groups, match_within_groups, matching_file, training_order
from scmib.processing.predict_modality import modality_of

FILES = ("train_mod1", "train_mod2", "test_mod1", "test_mod2")


def main(run: ComponentRun) -> None:
    from scmib.methods import novel_matching as novel
    from scmib.methods.torch_models import resolve_device

    par, seed, device = run.par, run.par["seed"], resolve_device(run.par["device"])
    files = {name: keep_layers(run.read(f"input_{name}", lazy=True), ["normalized"]) for name in FILES}
    mod1, mod2 = modality_of(files["train_mod1"]), modality_of(files["train_mod2"])
    settings = novel.settings_for((mod1, mod2))
    other = mod2 if mod1 == "GEX" else mod1
    pairing = training_order(run.read("input_train_sol"))
    train = {mod1: files["train_mod1"].layers["normalized"],
             mod2: sp.csr_matrix(files["train_mod2"].layers["normalized"])[pairing]}  # fmt: skip
    test = {mod1: files["test_mod1"].layers["normalized"], mod2: files["test_mod2"].layers["normalized"]}
    batches = files["train_mod1"].obs["batch"].astype(str).to_numpy()
    groups = novel.validation_groups(batches, settings, seed)
    similarity = np.zeros((files["test_mod1"].n_obs, files["test_mod2"].n_obs))
    for m, validation in enumerate(groups):
        x_other, t_other = novel.model_inputs(train[other], test[other], settings.other_lsi, validation, seed)
        x_gex, t_gex = novel.model_inputs(train["GEX"], test["GEX"], settings.gex_lsi, validation, seed)
        # Seeds seed * M + m: the runs of seeds 0, 1, 2 (--seeds) share no model's initialisation.
        model = novel.train_novel_clip(
            x_other,
            x_gex,
            validation,
            settings,
            device,
            seed * len(groups) + m,
            par["max_epochs"],
            par["patience"],
        )
        z_other, z_gex = novel.embed(model, t_other, t_gex, device)
        similarity += z_gex @ z_other.T if mod1 == "GEX" else z_other @ z_gex.T
    cells = (files["test_mod1"], files["test_mod2"])
    whole = [(np.arange(cells[0].n_obs), np.arange(cells[1].n_obs))]

    def weights(rows: np.ndarray, cols: np.ndarray) -> sp.spmatrix:
        block = similarity[np.ix_(rows, cols)]
        if par["assignment"] == "bipartite":
            return novel.novel_assignment(block)
        return assign(block / len(groups), par["assignment"], par["n_neighbors"], reg=par["sinkhorn_reg"])

    groups_of_cells = batch_groups(*cells) if par["within_batch"] else whole
    run.write(
        "output", matching_file(match_within_groups(groups_of_cells, similarity.shape, weights), *cells)
    )


if __name__ == "__main__":
    run_component(__file__, main)

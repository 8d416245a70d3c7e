"""DANCE: a graph neural network over cells, genes and hallmark pathways for GEX->ADT and
GEX->ATAC; an SVD linear model for ADT->GEX; the training mean for ATAC->GEX."""

import sys

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from scmib.component import ComponentRun, run_component
from scmib.errors import ScmibError
from scmib.methods.linear import ridge_predict
from scmib.methods.reduction import as_dense
from scmib.processing.predict_modality import modality_of, prediction_file, read_normalized_inputs


def graph_network(run: ComponentRun, train_mod1, train_mod2, test_mod1) -> np.ndarray:
    """The mean of ``n_models`` DANCE networks, each with its own seed and validation cells."""
    from scmib.methods.graph_regression import (
        DanceConfig,
        batch_statistics,
        build_graph,
        fit_dance,
        pathway_edges,
        predict_dance,
    )
    from scmib.methods.torch_models import resolve_device

    par = run.par
    try:
        config = DanceConfig(
            epochs=par["epochs"],
            select_after=par["select_after"],
            hidden=par["hidden"],
            conv_layers=par["conv_layers"],
            learning_rate=par["learning_rate"],
            edge_dropout=par["edge_dropout"],
            model_dropout=par["model_dropout"],
        )
    except ValueError as exc:
        raise ScmibError(f"arguments: {exc}") from None
    train_x = sp.csr_matrix(train_mod1.layers["normalized"], dtype=np.float32)
    test_x = sp.csr_matrix(test_mod1.layers["normalized"], dtype=np.float32)
    train_y = as_dense(train_mod2.layers["normalized"])
    train_batches = train_mod1.obs["batch"].astype(str).to_numpy()
    *pathway, n_matched = pathway_edges(train_mod1.var_names, train_x)
    print(
        f"dance_gnn: {n_matched} of {train_mod1.n_vars} genes are in a hallmark gene set: "
        f"{len(pathway[0])} gene-gene edges",
        file=sys.stderr,
    )
    device = resolve_device(par["device"])
    models = []
    for member in range(par["n_models"]):
        seed = par["seed"] * par["n_models"] + member  # distinct over seeds and members
        model, info = fit_dance(
            train_x, train_y, train_batches, pathway, config, device, seed, f"dance model {member + 1}"
        )
        print(
            f"dance_gnn: model {member + 1}/{par['n_models']} kept epoch {info['best_epoch'] + 1} "
            f"(validation RMSE {info['best_val_rmse']:.4f})",
            file=sys.stderr,
        )
        models.append(model)
    # The test graph: every training cell, then the test cells, as DANCE's run script builds it
    # (made after training, so that it never shares memory with the training graphs).
    all_x = sp.vstack([train_x, test_x]).tocsr()
    all_batches = np.concatenate([train_batches, test_mod1.obs["batch"].astype(str).to_numpy()])
    test_graph = build_graph(all_x, batch_statistics(all_x, all_batches), pathway).to(device)
    predictions = [predict_dance(model, test_graph, test_mod1.n_obs) for model in models]
    return np.mean(predictions, axis=0)


def linear_from_adt(run: ComponentRun, train_mod1, train_mod2, test_mod1) -> np.ndarray:
    """DANCE's ADT->GEX: linear regression between 50-component SVDs of ADT and of GEX, mapped
    back to genes, trained without the batches in ``exclude_batches``."""
    excluded = {name.strip() for name in run.par["exclude_batches"].split(",") if name.strip()}
    keep = ~train_mod1.obs["batch"].astype(str).isin(excluded).to_numpy()
    if not keep.any():
        raise ScmibError(
            f"exclude_batches '{run.par['exclude_batches']}' leaves out every training cell "
            f"(input_train_mod1 obs['batch'] has {sorted(set(train_mod1.obs['batch'].astype(str)))})"
        )
    print(
        f"dance_gnn: ADT->GEX leaves out {int((~keep).sum())} training cells of batches "
        f"{sorted(excluded) or 'none'}",
        file=sys.stderr,
    )
    n, seed = run.par["n_components"], run.par["seed"]
    inputs = TruncatedSVD(min(n, train_mod1.n_vars - 1), random_state=seed)
    outputs = TruncatedSVD(min(n, train_mod2.n_vars - 1), random_state=seed)
    train_in = inputs.fit_transform(train_mod1.layers["normalized"][keep])
    train_out = outputs.fit_transform(train_mod2.layers["normalized"][keep])
    test_in = inputs.transform(test_mod1.layers["normalized"])
    return ridge_predict(train_in, train_out, test_in, alpha=0.0) @ outputs.components_


def main(run: ComponentRun) -> None:
    train_mod1, train_mod2, test_mod1 = read_normalized_inputs(run)
    direction = modality_of(train_mod1), modality_of(train_mod2)
    if direction[0] == "GEX":
        values = graph_network(run, train_mod1, train_mod2, test_mod1)
    elif direction == ("ADT", "GEX"):
        values = linear_from_adt(run, train_mod1, train_mod2, test_mod1)
    else:  # ATAC->GEX: DANCE predicted the training mean of every gene
        mean = np.asarray(train_mod2.layers["normalized"].mean(axis=0)).ravel()
        values = np.tile(mean, (test_mod1.n_obs, 1))
    run.write("output", prediction_file(values, test_mod1, train_mod2))


if __name__ == "__main__":
    run_component(__file__, main)

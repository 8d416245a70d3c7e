"""Score your own outputs in Python: the benchmark's metrics on arrays and AnnData objects.

The metric components score files that a run makes; these functions give the same values for
objects in a notebook, from the same kernels (:mod:`scmib.metrics`), so a method can be tried
before it is a component::

    import scmib.evaluate

    scmib.evaluate.predict_modality(truth, prediction)        # RMSE, MAE, correlations
    scmib.evaluate.match_modalities(prediction, solution)     # match probability, AUPR, ...
    scmib.evaluate.joint_embedding(adata, "X_emb")            # the competition's six and more

Each returns a :class:`pandas.Series` indexed by the metric ids of the results table
(``results.tsv``), NaN where a metric does not apply (one batch: nothing to mix). Inputs that
cannot be scored raise ``ValueError`` (:class:`~scmib.errors.ContractError` for AnnData objects)
naming the slot and what was expected. The tests check every value against the components' own
on a run of the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scmib.metrics.embedding.cell_cycle import cell_cycle_conservation, stored_variance_before
from scmib.metrics.embedding.clustering import ari, optimal_louvain
from scmib.metrics.embedding.graph import graph_connectivity, knn_graph
from scmib.metrics.embedding.inputs import checked_embedding, is_degenerate
from scmib.metrics.embedding.lisi import clisi, ilisi
from scmib.metrics.embedding.silhouette import asw_batch, asw_label
from scmib.metrics.embedding.trajectory import trajectory_columns, trajectory_conservation
from scmib.metrics.inputs import aligned_layers
from scmib.metrics.matching import (
    cell_type_shares,
    checked_weights,
    format_problems,
    match_probabilities,
    pair_auc,
    solution_pairing,
)
from scmib.metrics.regression import mae, pearsons, rmse, spearmans
from scmib.metrics.summary import summary_value
from scmib.runner.plan import load_task_info

#: The metric ids :func:`predict_modality` returns.
PREDICTION_METRICS = (
    "rmse", "mae", "pearson_per_cell", "pearson_per_feature", "pearson_overall",
    "spearman_per_cell", "spearman_per_feature", "spearman_overall",
)  # fmt: skip
#: The metric ids :func:`match_modalities` returns.
MATCHING_METRICS = ("match_probability", "aupr", "auroc", "cell_type_share", "format_ok")
#: The metric ids :func:`joint_embedding` computes (all by default).
EMBEDDING_METRICS = (
    "asw_label", "asw_batch", "nmi", "ari", "graph_conn", "ti_cons_batch_mean", "ti_cons_batch_gex",
    "ti_cons_batch_mod2", "cc_cons", "clisi", "ilisi", "ilisi_site", "mean_of_six",
)  # fmt: skip
_TRAJECTORY = ("ti_cons_batch_mean", "ti_cons_batch_gex", "ti_cons_batch_mod2")
_GRAPH = ("nmi", "ari", "graph_conn", *_TRAJECTORY)


def _dense(values) -> np.ndarray:
    return np.asarray(values.toarray() if sp.issparse(values) else values, dtype=np.float64)


def predict_modality(
    truth: ad.AnnData | np.ndarray, prediction: ad.AnnData | np.ndarray, layer: str = "normalized"
) -> pd.Series:
    """The prediction metrics: :data:`PREDICTION_METRICS` (RMSE, MAE, and Pearson and Spearman
    correlations per cell, per feature and overall).

    ``truth`` and ``prediction`` are cells x features: arrays (dense or sparse) of the same shape,
    or AnnData objects whose ``layers[layer]`` hold the values (a test ``mod2`` file and a
    prediction file), the prediction's cells and features put in the truth's order by name.
    Scores are on the normalised values, as the competition's (log-normalised GEX, CLR ADT, ...).
    """
    if isinstance(truth, ad.AnnData) or isinstance(prediction, ad.AnnData):
        if not (isinstance(truth, ad.AnnData) and isinstance(prediction, ad.AnnData)):
            raise TypeError("truth and prediction: give two AnnData objects or two arrays")
        expected, predicted = aligned_layers(prediction, truth, "(in memory)", layer)
    else:
        expected, predicted = _dense(truth), _dense(prediction)
        if expected.shape != predicted.shape:
            raise ValueError(f"prediction has shape {predicted.shape}, the truth {expected.shape}")
    for name, array in (("truth", expected), ("prediction", predicted)):
        if not np.isfinite(array).all():
            bad = int((~np.isfinite(array)).sum())
            raise ValueError(f"{name}: {bad} values are NaN or infinite; expected finite values")
    values = {"rmse": rmse(expected, predicted), "mae": mae(expected, predicted)}
    for name, function in (("pearson", pearsons), ("spearman", spearmans)):
        for axis, label in (("cell", "per_cell"), ("feature", "per_feature"), ("overall", "overall")):
            values[f"{name}_{label}"] = float(function(expected, predicted, axis).mean())
    return pd.Series(values, dtype=np.float64)[list(PREDICTION_METRICS)]


def match_modalities(
    prediction: ad.AnnData | np.ndarray | sp.spmatrix,
    solution: ad.AnnData | Sequence[int],
    cell_types: Sequence[str] | None = None,
) -> pd.Series:
    """The matching metrics: :data:`MATCHING_METRICS` (match probability, AUPR, AUROC, the share
    of weight on the right cell type, and whether the format holds).

    Either two AnnData objects, a prediction file (``X``: test mod1 cells x test mod2 rows, put in
    the solution's order by name where its names are the solution's in another order) and its
    solution (``uns["pairing_ix"]``, ``obs["cell_type"]`` if it has one); or the N x N weights
    (dense or sparse) and ``pairing_ix`` itself, where ``pairing_ix[j]`` is the mod1 row whose
    true pair is mod2 row ``j``, with the mod1 cells' ``cell_types`` if there are any. Without
    cell types ``cell_type_share`` is NaN. ``format_ok`` is 1 when the competition's format holds
    (sparse, non-negative, rows summing to 1, at most 1,000 non-zeros per cell); the other metrics
    are computed either way, as the competition did.
    """
    if isinstance(solution, ad.AnnData):
        if not isinstance(prediction, ad.AnnData):
            raise TypeError("with a solution AnnData, give the prediction as an AnnData too")
        weights, pairing = checked_weights(prediction, solution, "(in memory)"), solution_pairing(solution)
        if cell_types is None and "cell_type" in solution.obs:
            cell_types = solution.obs["cell_type"].to_numpy()
    else:
        given = np.asarray(solution)
        floats = given.dtype.kind == "f"
        whole = given.dtype.kind in "iu" or (floats and np.array_equal(given, np.round(given)))
        if not whole:
            raise ValueError(f"pairing_ix: expected whole row numbers, found {given[:5]!r:.60}")
        weights, pairing = prediction, given.astype(np.int64)
        if weights.shape != (len(pairing), len(pairing)):
            raise ValueError(
                f"weights have shape {weights.shape}, expected ({len(pairing)}, {len(pairing)}) "
                "from pairing_ix"
            )
    n_cells = len(pairing)
    if not np.array_equal(np.sort(pairing), np.arange(n_cells)):
        raise ValueError(f"pairing_ix: expected a permutation of 0..{n_cells - 1}")
    if cell_types is not None and len(cell_types) != n_cells:
        raise ValueError(f"cell_types: {len(cell_types)} values, expected one per test cell ({n_cells})")
    aupr, auroc = pair_auc(weights, pairing)
    share = np.nan if cell_types is None else cell_type_shares(weights, pairing, np.asarray(cell_types))
    values = {
        "match_probability": float(match_probabilities(weights, pairing).mean()),
        "aupr": aupr,
        "auroc": auroc,
        "cell_type_share": float(np.mean(share)),
        "format_ok": float(not format_problems(weights, n_cells)),
    }
    return pd.Series(values, dtype=np.float64)


def joint_embedding(
    adata: ad.AnnData,
    embedding: str = "X_emb",
    *,
    batch_key: str = "batch",
    label_key: str = "cell_type",
    pseudotime_keys: tuple[str, str] | None = None,
    cell_cycle_keys: tuple[str, str] = ("S_score", "G2M_score"),
    site_key: str | None = "site",
    metrics: Sequence[str] | None = None,
) -> pd.Series:
    """The joint-embedding metrics of ``adata.obsm[embedding]`` (cells x 1-100 dimensions).

    With scib 1.x semantics, as the components score them: ``asw_label``, ``asw_batch``, ``nmi``
    and ``ari`` (Louvain at the best of 20 resolutions), ``graph_conn``, ``ti_cons_batch_mean``
    (with its ``_gex`` and ``_mod2`` halves), ``cc_cons``, ``clisi``, ``ilisi`` and
    ``ilisi_site``; the graph metrics share one scanpy kNN graph (15 neighbours) of the embedding.
    ``mean_of_six`` is the competition's ranking score: the plain mean of the six it scored, those
    that do not apply left out (NaN if one that applies is NaN, as in the results table).
    ``metrics``: only these ids (default: all of :data:`EMBEDDING_METRICS`).

    ``adata.obs`` holds ``batch_key`` and ``label_key``, and (where the metrics apply) the
    trajectory orders ``pseudotime_keys`` of the GEX and the other modality (NaN off the
    trajectories; by default the task's ``pseudotime_order_GEX`` and ``pseudotime_order_ADT`` or
    ``_ATAC``), the S and G2M scores ``cell_cycle_keys``, and the sites ``site_key``.
    ``adata.X`` is the log-normalised GEX before integration, whose cell-cycle variance
    ``cc_cons`` compares with the embedding's (scib's ``adata_pre``); a task's solution file
    stores that variance per batch in ``uns`` (``cc_batches``, ``cc_variance_before``), which is
    used where its batches are the cells' (delete it after keeping only some cells of a batch).
    A metric whose columns are missing, that measures batch mixing in one batch, or ``asw_label``
    with one cell type, is NaN; an embedding with every cell at one point (in float32) scores the
    worst value, 0, where a metric is undefined, as in a run. Louvain's resolutions run one after
    another here (in a run, in parallel).
    """
    summary = load_task_info("joint_embedding")["summary_metric"]
    wanted = list(EMBEDDING_METRICS if metrics is None else metrics)
    if unknown := sorted(set(wanted) - set(EMBEDDING_METRICS)):
        raise ValueError(f"metrics: unknown {unknown}; known: {', '.join(EMBEDDING_METRICS)}")
    computed = set(wanted) | (set(summary["of"]) if summary["name"] in wanted else set())
    if embedding not in adata.obsm:
        raise ValueError(f"obsm['{embedding}'] is missing: expected the embedding (cells x dimensions)")
    obs = adata.obs
    for key, what in ((label_key, "cell types"), (batch_key, "batches")):
        if key not in obs:
            raise ValueError(f"obs['{key}'] is missing: expected the cells' {what}")
    values = checked_embedding(adata.obsm[embedding], f"obsm['{embedding}']")
    labels, batches = obs[label_key].astype(str).to_numpy(), obs[batch_key].astype(str).to_numpy()
    one_batch = len(np.unique(batches)) < 2
    columns = trajectory_columns(obs) if pseudotime_keys is None else pseudotime_keys
    on_trajectories = columns is not None and all(key in obs and obs[key].notna().any() for key in columns)
    applies = {
        "asw_label": obs[label_key].nunique() >= 2,  # as the component: one cell type, nothing to separate
        "asw_batch": not one_batch,
        "ilisi": not one_batch,
        "ilisi_site": site_key is not None and site_key in obs and obs[site_key].nunique() >= 2,
        "cc_cons": set(cell_cycle_keys) <= set(obs),
        **dict.fromkeys(_TRAJECTORY, on_trajectories),
    }
    todo = {name for name in computed - {summary["name"]} if applies.get(name, True)}
    result = dict.fromkeys(EMBEDDING_METRICS, np.nan)
    if is_degenerate(values):  # every cell at one point: distances and graphs undefined
        result.update(dict.fromkeys(todo, 0.0))
        todo = set()

    if "asw_label" in todo:
        result["asw_label"] = asw_label(values, labels)
    if "asw_batch" in todo:
        result["asw_batch"] = asw_batch(values, batches, labels)
    if todo & set(_GRAPH):
        graph = knn_graph(values)
    if todo & {"nmi", "ari"}:
        # One resolution at a time: forking a pool after numba's OpenMP code ran in this process
        # (pynndescent, from 4,096 cells) can abort it; a run builds the graph in another process.
        clusters, result["nmi"], _ = optimal_louvain(graph, labels, workers=1)
        result["ari"] = ari(labels, clusters)
    if "graph_conn" in todo:
        result["graph_conn"] = graph_connectivity(graph.obsp["connectivities"], obs[label_key])
    if todo & set(_TRAJECTORY):
        halves = [trajectory_conservation(graph, obs[key].to_numpy(), labels, batches) for key in columns]
        result["ti_cons_batch_gex"], result["ti_cons_batch_mod2"] = halves
        result["ti_cons_batch_mean"] = sum(halves) / 2
    if "cc_cons" in todo:
        scores = obs[list(cell_cycle_keys)].to_numpy(dtype=np.float64)
        before = stored_variance_before(adata, batches, scores)
        result["cc_cons"] = cell_cycle_conservation(before, values, batches, scores)
        # As the component: no batch with cell-cycle variance to conserve is "does not apply".
        applies["cc_cons"] = not np.isnan(result["cc_cons"])
    if "clisi" in todo:
        result["clisi"] = clisi(values, labels)
    if "ilisi" in todo:
        result["ilisi"] = ilisi(values, batches)
    if "ilisi_site" in todo:
        result["ilisi_site"] = ilisi(values, obs[site_key].astype(str).to_numpy())
    parts = [result[name] for name in summary["of"] if applies.get(name, True)]
    result[summary["name"]] = summary_value(parts)
    return pd.Series({name: result[name] for name in wanted}, dtype=np.float64)

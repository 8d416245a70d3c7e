"""Score your own outputs in Python: the benchmark's metrics on arrays and AnnData objects.

The metric components score files that a run makes; these functions give the same values for
objects in a notebook, from the same kernels (:mod:`scmib.metrics`), so a method can be tried
before it is a component::

    import scmib.evaluate

    scmib.evaluate.predict_modality(truth, prediction)               # RMSE, MAE, correlations
    scmib.evaluate.match_modalities(weights, pairing_ix, cell_types)  # match probability, AUPR, ...
    scmib.evaluate.joint_embedding(adata, "X_emb")                   # the competition's six and more

Each returns a :class:`pandas.Series` indexed by the metric ids of the results table
(``results.tsv``), NaN where a metric does not apply (one batch: nothing to mix). The tests
check every value against the components' own on a run of the benchmark.
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
from scmib.metrics.embedding.lisi import clisi, ilisi
from scmib.metrics.embedding.silhouette import asw_batch, asw_label
from scmib.metrics.embedding.trajectory import trajectory_conservation
from scmib.metrics.inputs import aligned_layers
from scmib.metrics.matching import cell_type_shares, format_problems, match_probabilities, pair_auc
from scmib.metrics.regression import mae, pearsons, rmse, spearmans
from scmib.runner.plan import load_task_info


def _dense(values) -> np.ndarray:
    return np.asarray(values.toarray() if sp.issparse(values) else values, dtype=np.float64)


def predict_modality(
    truth: ad.AnnData | np.ndarray, prediction: ad.AnnData | np.ndarray, layer: str = "normalized"
) -> pd.Series:
    """RMSE, MAE and Pearson/Spearman correlations (per cell, per feature, overall) of a prediction.

    ``truth`` and ``prediction`` are cells x features: arrays (dense or sparse) of the same shape,
    or AnnData objects whose ``layers[layer]`` hold the values (the test ``mod2`` file and a
    prediction file), the prediction's cells and features put in the truth's order by name.
    Scores are on the normalised values, as the competition's (log-normalised GEX, CLR ADT, ...).
    """
    if isinstance(truth, ad.AnnData) or isinstance(prediction, ad.AnnData):
        if not (isinstance(truth, ad.AnnData) and isinstance(prediction, ad.AnnData)):
            raise TypeError("truth and prediction: give two AnnData objects or two arrays")
        expected, predicted = aligned_layers(prediction, truth, "prediction", layer)
    else:
        expected, predicted = _dense(truth), _dense(prediction)
        if expected.shape != predicted.shape:
            raise ValueError(f"prediction has shape {predicted.shape}, the truth {expected.shape}")
    values = {"rmse": rmse(expected, predicted), "mae": mae(expected, predicted)}
    for name, function in (("pearson", pearsons), ("spearman", spearmans)):
        for axis, label in (("cell", "per_cell"), ("feature", "per_feature"), ("overall", "overall")):
            values[f"{name}_{label}"] = float(function(expected, predicted, axis).mean())
    return pd.Series(values, dtype=np.float64)


def match_modalities(
    weights: np.ndarray | sp.spmatrix, pairing_ix: Sequence[int], cell_types: Sequence[str] | None = None
) -> pd.Series:
    """Match probability, AUPR, AUROC, the share of weight on the right cell type, and the format.

    ``weights`` is N x N (test mod1 cells x test mod2 rows, dense or sparse; the competition's
    format is sparse, non-negative, rows summing to 1, at most 1,000 non-zeros per cell).
    ``pairing_ix[j]`` is the mod1 row whose true pair is mod2 row ``j`` (a solution's
    ``uns["pairing_ix"]``). ``cell_types`` are the mod1 cells' types; without them
    ``cell_type_share`` is NaN. ``format_ok`` is 1 when the format holds; the other metrics are
    computed either way, as the competition did.
    """
    pairing = np.asarray(pairing_ix).astype(np.int64)
    n_cells = len(pairing)
    if weights.shape != (n_cells, n_cells):
        raise ValueError(
            f"weights have shape {weights.shape}, expected ({n_cells}, {n_cells}) from pairing_ix"
        )
    aupr, auroc = pair_auc(weights, pairing)
    share = (
        float(cell_type_shares(weights, pairing, np.asarray(cell_types)).mean())
        if cell_types is not None
        else np.nan
    )
    values = {
        "match_probability": float(match_probabilities(weights, pairing).mean()),
        "aupr": aupr,
        "auroc": auroc,
        "cell_type_share": share,
        "format_ok": float(not format_problems(weights, n_cells)),
    }
    return pd.Series(values, dtype=np.float64)


#: The metric ids :func:`joint_embedding` computes, as in the results table.
EMBEDDING_METRICS = (
    "asw_label", "asw_batch", "nmi", "ari", "graph_conn", "ti_cons_batch_mean", "ti_cons_batch_gex",
    "ti_cons_batch_mod2", "cc_cons", "clisi", "ilisi", "ilisi_site", "mean_of_six",
)  # fmt: skip


def joint_embedding(
    adata: ad.AnnData,
    embedding: str = "X_emb",
    *,
    batch_key: str = "batch",
    label_key: str = "cell_type",
    pseudotime_keys: tuple[str, str] | None = None,
    cell_cycle_keys: tuple[str, str] = ("S_score", "G2M_score"),
    site_key: str | None = None,
    metrics: Sequence[str] | None = None,
) -> pd.Series:
    """The joint-embedding metrics of ``adata.obsm[embedding]`` (cells x 1-100 dimensions).

    With scib 1.x semantics, as the components score them: ``asw_label``, ``asw_batch``, ``nmi``
    and ``ari`` (Louvain at the best of 20 resolutions), ``graph_conn``, ``ti_cons_batch_mean``
    (with its ``_gex`` and ``_mod2`` halves), ``cc_cons``, ``clisi``, ``ilisi`` and
    ``ilisi_site``; the graph metrics share one scanpy kNN graph (15 neighbours) of the embedding.
    ``mean_of_six`` is the competition's ranking score, the plain mean of the six it scored
    (those that apply). ``metrics``: only these ids (default: all of :data:`EMBEDDING_METRICS`).

    ``adata.obs`` holds ``batch_key`` and ``label_key``. ``pseudotime_keys`` are the columns of
    the GEX and the other modality's trajectory order (NaN off the trajectories); by default the
    competition's ``pseudotime_order_GEX`` and ``pseudotime_order_ADT`` or ``_ATAC``.
    ``cell_cycle_keys`` are the S and G2M scores, and ``adata.X`` the log-normalised GEX before
    integration, whose cell-cycle variance ``cc_cons`` compares with the embedding's (scib's
    ``adata_pre``; a task's solution file stores that variance in ``uns``, and it is used).
    ``site_key``: a column of sites for ``ilisi_site``. A metric whose columns are missing, or
    that measures batch mixing in one batch, is NaN; an embedding with every cell at one point
    scores the worst value, 0, where the metric is undefined, as in a run.
    """
    summary = load_task_info("joint_embedding")["summary_metric"]
    wanted = list(EMBEDDING_METRICS if metrics is None else metrics)
    if unknown := sorted(set(wanted) - set(EMBEDDING_METRICS)):
        raise ValueError(f"metrics: unknown {unknown}; known: {', '.join(EMBEDDING_METRICS)}")
    computed = set(wanted) | (set(summary["of"]) if summary["name"] in wanted else set())
    values = np.asarray(adata.obsm[embedding], dtype=np.float64)
    if values.ndim != 2 or not 1 <= values.shape[1] <= 100 or not np.all(np.isfinite(values)):
        raise ValueError(
            f"obsm['{embedding}']: expected finite values of 1 to 100 dimensions, got {values.shape}"
        )
    obs = adata.obs
    labels, batches = obs[label_key].astype(str).to_numpy(), obs[batch_key].astype(str).to_numpy()
    one_batch = len(np.unique(batches)) < 2
    if pseudotime_keys is None:
        mod2 = next(
            (f"pseudotime_order_{m}" for m in ("ADT", "ATAC") if f"pseudotime_order_{m}" in obs), None
        )
        pseudotime_keys = ("pseudotime_order_GEX", mod2) if mod2 else None
    trajectories = pseudotime_keys is not None and all(
        key in obs and obs[key].notna().any() for key in pseudotime_keys
    )
    applies = {
        "asw_batch": not one_batch,
        "ilisi": not one_batch,
        "ilisi_site": site_key is not None and obs[site_key].nunique() >= 2,
        "cc_cons": set(cell_cycle_keys) <= set(obs),
        **dict.fromkeys(["ti_cons_batch_mean", "ti_cons_batch_gex", "ti_cons_batch_mod2"], trajectories),
    }
    todo = {name for name in computed if applies.get(name, True)}
    result = dict.fromkeys(EMBEDDING_METRICS[:-1], np.nan)
    if np.all(np.ptp(values, axis=0) == 0):  # every cell at one point: distances and graphs undefined
        result.update(dict.fromkeys(todo - {summary["name"]}, 0.0))
        return _selected(result, wanted, summary)

    if "asw_label" in todo:
        result["asw_label"] = asw_label(values, labels)
    if "asw_batch" in todo:
        result["asw_batch"] = asw_batch(values, batches, labels)
    if todo & {"nmi", "ari", "graph_conn", "ti_cons_batch_mean", "ti_cons_batch_gex", "ti_cons_batch_mod2"}:
        graph = knn_graph(values)
    if todo & {"nmi", "ari"}:
        clusters, result["nmi"], _ = optimal_louvain(graph, labels)
        result["ari"] = ari(labels, clusters)
    if "graph_conn" in todo:
        result["graph_conn"] = graph_connectivity(graph.obsp["connectivities"], obs[label_key])
    if todo & {"ti_cons_batch_mean", "ti_cons_batch_gex", "ti_cons_batch_mod2"}:
        halves = [
            trajectory_conservation(graph, obs[key].to_numpy(), labels, batches) for key in pseudotime_keys
        ]
        result["ti_cons_batch_gex"], result["ti_cons_batch_mod2"] = halves
        result["ti_cons_batch_mean"] = sum(halves) / 2
    if "cc_cons" in todo:
        scores = obs[list(cell_cycle_keys)].to_numpy(dtype=np.float64)
        before = stored_variance_before(adata, batches, scores)
        result["cc_cons"] = cell_cycle_conservation(before, values, batches, scores)
    if "clisi" in todo:
        result["clisi"] = clisi(values, labels)
    if "ilisi" in todo:
        result["ilisi"] = ilisi(values, batches)
    if "ilisi_site" in todo:
        result["ilisi_site"] = ilisi(values, obs[site_key].astype(str).to_numpy())
    return _selected(result, wanted, summary)


def _selected(result: dict[str, float], wanted: list[str], summary: dict) -> pd.Series:
    """The ``wanted`` metrics of ``result``, with the competition's summary (``mean_of_six``: the
    plain mean of its six that apply, as the results table derives it) where wanted."""
    applicable = [result[name] for name in summary["of"] if not np.isnan(result[name])]
    result[summary["name"]] = float(np.mean(applicable)) if applicable else np.nan
    return pd.Series({name: result[name] for name in wanted}, dtype=np.float64)

"""Joint-embedding metrics equal scib 1.x (and harmonypy's LISI) on real cells.

The reference implementations run in the same process on the same embedding
and the same solution; agreement is asserted within 1e-3 (observed: ~1e-9).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from conftest import read, run_cli
from sklearn.decomposition import TruncatedSVD
from sklearn.metrics import silhouette_samples

from scmib.metrics.embedding import cell_cycle, clustering, graph, lisi, silhouette, trajectory

scib = pytest.importorskip("scib", reason="scib is the reference implementation (pip install '.[test]')")
harmonypy = pytest.importorskip("harmonypy")

#: scib's values are matched to rounding (observed differences are about 1e-9), not to a looser bar.
TOLERANCE = 1e-6
#: harmonypy finds each cell's perplexity-30 bandwidth by a bisection that stops at 1e-5 (its ``tol``).
LISI_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def triana_embedding_task(tmp_path_factory, triana_common) -> dict[str, ad.AnnData]:
    """2,500 Triana cells as joint-embedding task files, and an SVD embedding of their GEX."""
    folder = tmp_path_factory.mktemp("je_metrics")
    files = {n: folder / f"{n}.h5ad" for n in ("mod1", "mod2", "solution")}
    run_cli(
        "joint_embedding/processors/embedding_task",
        input_rna=triana_common[0],
        input_mod2=triana_common[1],
        pair="gex_adt",
        n_cells=2500,
        **{f"output_{k}": v for k, v in files.items()},
    )
    solution = read(files["solution"])
    embedding = TruncatedSVD(20, random_state=0).fit_transform(solution.X)
    return {"solution": solution, "embedding": embedding, "files": files}


@pytest.fixture(scope="module")
def scib_post(triana_embedding_task) -> ad.AnnData:
    """The embedding as scib expects it: obsm['X_emb'], labels in obs, scanpy neighbours."""
    solution, embedding = triana_embedding_task["solution"], triana_embedding_task["embedding"]
    post = ad.AnnData(X=embedding.astype(np.float32), obs=solution.obs.copy())
    post.obsm["X_emb"] = embedding.astype(np.float32)
    post.obs["cell_type"] = post.obs["cell_type"].astype("category")
    sc.pp.neighbors(post, use_rep="X_emb")
    return post


@pytest.fixture(scope="module")
def ours(triana_embedding_task) -> ad.AnnData:
    return graph.knn_graph(triana_embedding_task["embedding"])


def test_the_graph_is_scanpys(ours, scib_post):
    difference = ours.obsp["connectivities"] - scib_post.obsp["connectivities"]
    assert abs(difference).max() < 1e-5


def test_nmi_and_ari_equal_scib_opt_louvain(ours, scib_post, triana_embedding_task):
    labels = triana_embedding_task["solution"].obs["cell_type"].to_numpy()
    clusters, nmi, _ = clustering.optimal_louvain(ours, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scib.cl.opt_louvain(
            scib_post, label_key="cell_type", cluster_key="cluster", plot=False, verbose=False
        )
    assert nmi == pytest.approx(scib.me.nmi(scib_post, "cluster", "cell_type"), abs=TOLERANCE)
    assert clustering.ari(labels, clusters) == pytest.approx(
        scib.me.ari(scib_post, "cluster", "cell_type"), abs=TOLERANCE
    )
    assert 0.3 < nmi < 1


def test_louvain_at_each_resolution_is_scanpys(ours):
    """One igraph for all resolutions, clustered in parallel: each clustering is sc.tl.louvain's."""
    resolutions = clustering.RESOLUTIONS[::3]
    clusterings = clustering.louvain_clusterings(ours, resolutions, workers=2)
    scanpy_graph = ours.copy()
    for resolution, clusters in zip(resolutions, clusterings, strict=True):
        sc.tl.louvain(scanpy_graph, resolution=resolution, random_state=0, key_added="scanpy")
        np.testing.assert_array_equal(clusters, scanpy_graph.obs["scanpy"].astype(str).to_numpy())
    assert len(set(clusterings[0])) < len(set(clusterings[-1]))


def test_silhouettes_equal_scib(scib_post, triana_embedding_task):
    obs, embedding = triana_embedding_task["solution"].obs, triana_embedding_task["embedding"]
    labels, batches = obs["cell_type"].to_numpy(), obs["batch"].to_numpy()
    assert silhouette.asw_label(embedding, labels) == pytest.approx(
        scib.me.silhouette(scib_post, "cell_type", "X_emb"), abs=TOLERANCE
    )
    assert silhouette.asw_batch(embedding, batches, labels) == pytest.approx(
        scib.me.silhouette_batch(scib_post, "batch", "cell_type", "X_emb", verbose=False), abs=TOLERANCE
    )


def test_block_silhouettes_equal_scikit_learns_cell_by_cell(triana_embedding_task):
    """Every cell's width, with a label of one cell (width 0) and blocks that do not divide the cells."""
    embedding = np.asarray(triana_embedding_task["embedding"], dtype=np.float64)
    labels = triana_embedding_task["solution"].obs["cell_type"].astype(str).to_numpy().copy()
    labels[0] = "a type of one cell"
    ours = silhouette.silhouette_samples(embedding, labels, block_rows=997)
    np.testing.assert_allclose(ours, silhouette_samples(embedding, labels), rtol=0, atol=1e-12)
    assert ours[0] == 0.0


def test_graph_connectivity_equals_scib(ours, scib_post, triana_embedding_task):
    labels = triana_embedding_task["solution"].obs["cell_type"]
    value = graph.graph_connectivity(ours.obsp["connectivities"], labels)
    assert value == pytest.approx(scib.me.graph_connectivity(scib_post, "cell_type"), abs=TOLERANCE)


def test_cell_cycle_conservation_equals_scib(scib_post, triana_embedding_task):
    solution, embedding = triana_embedding_task["solution"], triana_embedding_task["embedding"]
    batches, scores = solution.obs["batch"].to_numpy(), solution.obs[["S_score", "G2M_score"]].to_numpy()
    # The processor precomputed the reference; it must equal a fresh computation (to float32
    # rounding: the processor's process may sum in another order; 1e-8 relative was seen in CI).
    stored = dict(zip(solution.uns["cc_batches"], solution.uns["cc_variance_before"], strict=True))
    fresh = cell_cycle.variance_before(solution.X, batches, scores)
    assert stored == pytest.approx(fresh, rel=1e-6)
    value = cell_cycle.cell_cycle_conservation(stored, embedding, batches, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = scib.me.cell_cycle(solution, scib_post, "batch", embed="X_emb", recompute_cc=False)
    assert value == pytest.approx(reference, abs=TOLERANCE)
    assert 0 < value <= 1


@pytest.mark.parametrize("key", ["pseudotime_order_GEX", "pseudotime_order_ADT"])
def test_trajectory_conservation_equals_scib(ours, scib_post, triana_embedding_task, key):
    solution = triana_embedding_task["solution"]
    obs = solution.obs
    value = trajectory.trajectory_conservation(
        ours, obs[key].to_numpy(), obs["cell_type"].to_numpy(), obs["batch"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = scib.me.trajectory_conservation(
            solution, scib_post, label_key="cell_type", batch_key="batch", pseudotime_key=key
        )
    assert value == pytest.approx(reference, abs=TOLERANCE)
    assert value > 0.7  # the GEX SVD keeps the erythroid order the processor found


def test_lisi_equals_harmonypy(triana_embedding_task):
    obs, embedding = triana_embedding_task["solution"].obs, triana_embedding_task["embedding"]
    for column in ("batch", "cell_type"):
        ours_per_cell = lisi.lisi(embedding, obs[column].to_numpy())
        reference = harmonypy.compute_lisi(embedding, obs, [column])[:, 0]
        assert np.abs(ours_per_cell - reference).max() < LISI_TOLERANCE
    n_batches = obs["batch"].nunique()
    expected = (np.median(harmonypy.compute_lisi(embedding, obs, ["batch"])[:, 0]) - 1) / (n_batches - 1)
    assert lisi.ilisi(embedding, obs["batch"].to_numpy()) == pytest.approx(expected, abs=LISI_TOLERANCE)


def test_metric_components_equal_scib_on_the_organisers_starter_prediction(data_dir, tmp_path):
    """The organisers' own starter prediction and solution, scored through the command lines."""
    folder = data_dir / "neurips2021_starter" / "cite" / "joint_embedding"
    prediction, solution = read(folder / "prediction.h5ad"), read(folder / "solution.h5ad")
    values = {}
    # The graph metrics read the one kNN graph the prediction processor computes.
    graph = tmp_path / "graph.h5ad"
    run_cli(
        "joint_embedding/prediction_processors/knn_graph",
        input_prediction=folder / "prediction.h5ad",
        input_solution=folder / "solution.h5ad",
        output=graph,
    )
    for metric in ("clustering", "asw", "graph_conn", "ti_cons", "lisi"):
        out = tmp_path / f"{metric}.h5ad"
        run_cli(
            f"joint_embedding/metrics/{metric}",
            input_prediction=folder / "prediction.h5ad",
            input_solution=folder / "solution.h5ad",
            output=out,
            **({"input_graph": graph} if metric in ("clustering", "graph_conn", "ti_cons") else {}),
        )
        score = read(out)
        values.update(zip(score.uns["metric_ids"], map(float, score.uns["metric_values"]), strict=True))
    post = ad.AnnData(X=np.asarray(prediction.X), obs=solution.obs.loc[prediction.obs_names].copy())
    post.obsm["X_emb"] = np.asarray(prediction.X, dtype=np.float32)
    post.obs["cell_type"] = post.obs["cell_type"].astype("category")
    sc.pp.neighbors(post, use_rep="X_emb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scib.cl.opt_louvain(post, label_key="cell_type", cluster_key="cluster", plot=False, verbose=False)
        reference = {
            "nmi": scib.me.nmi(post, "cluster", "cell_type"),
            "asw_label": scib.me.silhouette(post, "cell_type", "X_emb"),
            "asw_batch": scib.me.silhouette_batch(post, "batch", "cell_type", "X_emb", verbose=False),
            "graph_conn": scib.me.graph_connectivity(post, "cell_type"),
            "ti_cons_batch_gex": scib.me.trajectory_conservation(
                solution,
                post,
                label_key="cell_type",
                batch_key="batch",
                pseudotime_key="pseudotime_order_GEX",
            ),
        }
    for name, expected in reference.items():
        assert values[name] == pytest.approx(expected, abs=TOLERANCE), name
    # No cell-cycle scores in the organisers' starter solution, and too few genes to make them.
    proc = run_cli(
        "joint_embedding/metrics/cc_cons",
        check=False,
        input_prediction=folder / "prediction.h5ad",
        input_solution=folder / "solution.h5ad",
        output=tmp_path / "cc.h5ad",
    )
    assert proc.returncode == 99 and not (tmp_path / "cc.h5ad").exists()


def test_a_batch_without_cell_cycle_variance_is_left_out_of_cell_cycle_conservation():
    """Before = 0 (scores that explain nothing) leaves nothing to conserve: the batch is left out
    (scib's 1 - after / 0 gives 0 or NaN on the rounding of ``after``); none left gives NaN."""
    rng = np.random.default_rng(0)
    batches = np.repeat(["cycling", "flat"], 200)
    scores = rng.normal(size=(400, 2))
    scores[200:] = 0.0  # constant within the batch "flat": nothing can be explained there
    embedding = np.column_stack([scores[:, 0] + rng.normal(0, 0.1, 400), rng.normal(size=(400, 9))])
    before = {"cycling": 0.05, "flat": 0.0}
    kept = cell_cycle.cell_cycle_conservation(before, embedding, batches, scores)
    alone = cell_cycle.cell_cycle_conservation({"cycling": 0.05}, embedding, batches, scores)
    assert kept == alone and 0 <= kept <= 1
    assert np.isnan(cell_cycle.cell_cycle_conservation({"flat": 0.0}, embedding, batches, scores))


def test_lisi_of_a_mixed_and_a_separated_embedding():
    rng = np.random.default_rng(0)
    points = rng.standard_normal((600, 5))
    mixed = rng.integers(0, 3, 600)
    apart = np.repeat([0, 1, 2], 200)
    separated = points + 50 * np.eye(5)[apart]
    assert lisi.ilisi(points, mixed) > 0.7  # ~30 effective neighbours of 3 random labels: about 2.6 of 3
    assert lisi.ilisi(separated, apart) < 0.01
    assert lisi.clisi(separated, apart) > 0.99
    assert pd.isna(lisi.ilisi(points, np.zeros(600)))


def test_the_graph_code_compiles_once_into_numbas_cache(tmp_path):
    """UMAP's graph functions are not declared cacheable; scmib turns caching on, so a process that
    builds a graph leaves them in NUMBA_CACHE_DIR for every later one (as the images ship it)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    warm = [sys.executable, "-m", "scmib.metrics.embedding.graph", "--warm-numba-cache"]
    subprocess.run(warm, env=env, check=True, capture_output=True)
    cached = {path.name.split("-")[0] for path in tmp_path.rglob("*.nbi")}
    # Neither is declared cache=True by UMAP: both used to compile in every graph job.
    assert {"umap_.smooth_knn_dist", "umap_.compute_membership_strengths"} <= cached, sorted(cached)[:20]
    # pynndescent compiles its distances when imported (seconds in every process): a later process
    # loads them from the cache instead.
    # numba's decorators are themselves again afterwards; UMAP's serial and parallel wraps of one
    # function stay uncached (the cache would give either the other's code).
    probe = (
        "import numba; from scmib.metrics.embedding.graph import preload_graph_code; preload_graph_code();"
        " from pynndescent.distances import squared_euclidean as f; import umap.layouts as l;"
        " print(sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values()),"
        " numba.njit is numba.core.decorators.njit and numba.jit is numba.core.decorators.jit,"
        " type(l._nb_optimize_layout_euclidean_single_epoch_parallel._cache).__name__)"
    )
    later = subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True)
    hits, misses, restored, parallel_cache = later.stdout.split()
    assert int(hits) > 0 and int(misses) == 0
    assert restored == "True" and parallel_cache == "NullCache"


def test_trajectory_conservation_says_why_it_is_0_when_the_start_is_cut_off(capsys):
    """Start-type cells outside the graph's largest part: scib scores 0, and the log says why."""
    import anndata as ad
    import scipy.sparse as sp

    n = 12
    edges = [(i, i + 1) for i in range(8)] + [(9, 10), (10, 11)]  # parts of 9 and 3 cells
    rows, cols = zip(*edges, strict=True)
    adjacency = sp.coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(n, n)).tocsr()
    graph = ad.AnnData(np.zeros((n, 2)), obsp={"connectivities": adjacency + adjacency.T})
    labels = np.array(["late"] * 9 + ["HSC"] * 3)
    pseudotime = np.r_[np.arange(1, 10), 0.0, 0.1, 0.2]
    value = trajectory.trajectory_conservation(graph, pseudotime, labels, np.zeros(n))
    assert value == 0.0
    assert "none of the 3 HSC cells (the trajectory's start) is in the largest" in capsys.readouterr().out

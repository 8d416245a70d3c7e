"""The kNN graph every graph metric reads, and ``graph_conn``."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

if TYPE_CHECKING:
    from scmib.metrics.embedding.inputs import ScoredEmbedding

#: The competition's metrics ran scanpy's neighbours on the embedding with its defaults.
N_NEIGHBORS = 15
#: scanpy (1.10 on) finds euclidean neighbours exactly below this many cells, with pynndescent from it.
PYNNDESCENT_MIN_CELLS = 8192
#: Modules whose numba functions scanpy's neighbours call (UMAP weights; pynndescent from 8,192 cells).
_NUMBA_MODULES = (
    "umap.umap_",
    "umap.utils",
    "umap.sparse",
    "umap.distances",
    "pynndescent.pynndescent_",
    "pynndescent.utils",
    "pynndescent.rp_trees",
    "pynndescent.distances",
    "pynndescent.sparse",
    "pynndescent.graph_utils",
)


#: One thread at a time patches numba's decorators (a second would save the first's patch as original).
_PATCHING = threading.Lock()


@contextlib.contextmanager
def _numba_caches_by_default() -> Iterator[None]:
    """While open, ``numba.njit`` and ``numba.jit`` cache what they compile unless told not to.

    pynndescent compiles dozens of distance functions with explicit signatures the
    moment it is imported (about 8 s in every process that builds a large graph);
    none is declared ``cache=True``, and they are compiled before
    :func:`preload_graph_code` could turn caching on. Importing it inside this window
    lets numba load them from its cache instead (about 1 s). Left alone (compiled
    per process, as before): closures, and a function wrapped a second time (UMAP
    wraps one function as a serial and a parallel version; numba's cache, keyed by
    the function and its signature, would hand either the other's code).
    """
    import numba

    original = numba.njit, numba.jit
    wrapped_before: set[Any] = set()

    def caching(decorator: Callable[..., Any]) -> Callable[..., Any]:
        def options(func: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
            first = func.__code__ not in wrapped_before
            wrapped_before.add(func.__code__)
            return {"cache": True, **kwargs} if first and func.__closure__ is None else kwargs

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if args and inspect.isfunction(args[0]):  # @njit, or njit(func, ...)
                return decorator(*args, **options(args[0], kwargs))
            # @njit(signature, fastmath=True, ...): the function comes next
            return lambda func: decorator(*args, **options(func, kwargs))(func)

        return wrapped

    with _PATCHING:
        numba.njit, numba.jit = caching(numba.njit), caching(numba.jit)
        try:
            yield
        finally:
            numba.njit, numba.jit = original


def preload_graph_code() -> int:
    """Import UMAP and pynndescent, and let numba cache what they compile.

    Their numba functions are not declared ``cache=True``, so they were compiled
    anew in every process: pynndescent's distances eagerly on import (about 8 s),
    the rest on first use (several seconds for each graph). Imported here, they
    cache (:func:`_numba_caches_by_default`, and caching turned on for those
    compiled later) in ``NUMBA_CACHE_DIR``, which the runner and the images set, so
    only the first process compiles them. The warm-start server calls this once for
    all jobs; a cold graph job, in :func:`knn_graph`. Returns how many functions
    compile lazily with caching turned on here.
    """
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    dispatchers: dict[int, Dispatcher] = {}
    for name in _NUMBA_MODULES:
        try:
            if name in sys.modules:  # imported already: nothing to compile on import
                module = sys.modules[name]
            else:
                with _numba_caches_by_default():
                    module = importlib.import_module(name)
        except ImportError:  # another version's layout: no caching, same results
            continue
        dispatchers.update({id(v): v for v in vars(module).values() if isinstance(v, Dispatcher)})
    # A function wrapped twice (other options) is left uncached, as in _numba_caches_by_default.
    wraps = Counter(d.py_func.__code__ for d in dispatchers.values())
    once = [d for d in dispatchers.values() if wraps[d.py_func.__code__] == 1]
    lazy = [d for d in once if isinstance(d._cache, NullCache)]
    for dispatcher in lazy:
        dispatcher.enable_caching()
    return len(lazy)


def knn_graph(embedding: np.ndarray, n_neighbors: int = N_NEIGHBORS, seed: int = 0) -> ad.AnnData:
    """An AnnData holding ``embedding`` (``obsm["X_emb"]``) and scanpy's UMAP-weighted kNN graph.

    ``embedding`` is cells x dimensions. The graph is ``sc.pp.neighbors(adata,
    use_rep="X_emb")`` as in the organisers' metric scripts: exact neighbours
    below :data:`PYNNDESCENT_MIN_CELLS` cells, pynndescent (seeded) from there on.
    """
    preload_graph_code()
    adata = ad.AnnData(X=sp.csr_matrix((embedding.shape[0], 0), dtype=np.float32))
    adata.obsm["X_emb"] = np.asarray(embedding, dtype=np.float32)
    sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep="X_emb", random_state=seed)
    return adata


def embedding_graph(inputs: ScoredEmbedding) -> ad.AnnData:
    """The graph file of a prediction (contract ``joint_embedding/graph``): :func:`knn_graph` of its
    embedding in the solution's cell order, without the embedding itself.

    A degenerate embedding (every cell at one point) gets empty matrices and ``uns['undefined']``:
    the metrics score it as their worst value without reading the graph.
    """
    n_cells = inputs.embedding.shape[0]
    if inputs.degenerate:
        graph = ad.AnnData(X=sp.csr_matrix((n_cells, 0), dtype=np.float32))
        empty = sp.csr_matrix((n_cells, n_cells), dtype=np.float32)
        graph.obsp["connectivities"], graph.obsp["distances"] = empty, empty.copy()
        graph.uns["neighbors"] = {"connectivities_key": "connectivities", "distances_key": "distances"}
        graph.uns["undefined"] = "every cell at one point: no neighbour graph"
    else:
        graph = knn_graph(inputs.embedding)
        del graph.obsm["X_emb"]
    graph.obs_names = inputs.solution.obs_names
    graph.uns["dataset_id"] = str(inputs.solution.uns.get("dataset_id", ""))
    graph.uns["method_id"] = str(inputs.prediction.uns.get("method_id", ""))
    return graph


def graph_connectivity(connectivities: sp.spmatrix, labels: pd.Series | np.ndarray) -> float:
    """Mean over labels of the share of a label's cells in the largest connected part of its subgraph."""
    in_largest = in_largest_part(connectivities, labels)
    codes = pd.Categorical(np.asarray(labels).astype(str)).codes
    return float(np.mean(np.bincount(codes, weights=in_largest) / np.bincount(codes)))


def in_largest_part(connectivities: sp.spmatrix, labels: pd.Series | np.ndarray) -> np.ndarray:
    """1 for each cell in the largest connected part of its label's subgraph, else 0: per label,
    their mean is the share :func:`graph_connectivity` averages."""
    labels = pd.Categorical(np.asarray(labels).astype(str))
    graph = sp.csr_matrix(connectivities)
    inside = np.zeros(len(labels))
    for code in range(len(labels.categories)):
        cells = np.flatnonzero(labels.codes == code)
        if len(cells) == 0:
            continue
        _, parts = connected_components(graph[cells][:, cells], connection="strong")
        inside[cells[parts == np.bincount(parts).argmax()]] = 1.0
    return inside


def compile_neighbour_search() -> None:
    """Build one graph on scanpy's pynndescent path, so that processes forked afterwards find
    pynndescent's numba code compiled.

    Most of pynndescent's search functions take the distance function as an argument, and
    numba cannot cache such a function on disk: every process that built a graph of
    :data:`PYNNDESCENT_MIN_CELLS` cells or more compiled them again (about 13 s of CPU, where a
    10,000-cell graph itself takes 1.6 s). The runner's graph server (``scmib.runner.warm``)
    calls this once; each component it forks inherits the compiled code. numba's threading
    layer is set to ``workqueue`` first: GNU OpenMP, numba's choice here, aborts a process
    forked after OpenMP has run. The graphs are the same either way (tested).
    """
    import numba

    numba.config.THREADING_LAYER = "workqueue"
    knn_graph(np.random.default_rng(0).standard_normal((PYNNDESCENT_MIN_CELLS, 8)))


def warm_numba_cache() -> None:
    """Compile (and cache, under ``NUMBA_CACHE_DIR``) the graph code for both of scanpy's paths:
    exact neighbours and pynndescent (:data:`PYNNDESCENT_MIN_CELLS` cells). Run when an image is
    built."""
    rng = np.random.default_rng(0)
    for n_cells in (600, PYNNDESCENT_MIN_CELLS):
        knn_graph(rng.standard_normal((n_cells, 10)))


if __name__ == "__main__":
    if sys.argv[1:] != ["--warm-numba-cache"]:
        sys.exit("usage: python -m scmib.metrics.embedding.graph --warm-numba-cache")
    warm_numba_cache()

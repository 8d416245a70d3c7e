"""Reading and writing AnnData files with clear errors and without partial outputs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from scmib.errors import ContractError

#: A sparse matrix kept in its file, read a part at a time (see :func:`read_h5ad` ``lazy``).
OnDisk = ad.abc.CSRDataset | ad.abc.CSCDataset
#: Rows of an on-disk matrix read at once where a column subset keeps only part of each.
ROW_CHUNK = 4096
#: Stored values looked at at once when a whole matrix is checked or summed.
VALUE_CHUNK = 1 << 24


def read_h5ad(path: str | os.PathLike, *, role: str = "input", lazy: bool = False) -> ad.AnnData:
    """Read an ``.h5ad`` file.

    With ``lazy``, sparse ``X`` and ``layers`` stay in the file as
    ``anndata.abc.CSRDataset`` (or CSC) and are read a part at a time (see
    :func:`rows`); everything else is read into memory. A task processor reads
    a competition-size ATAC file (245 million counts, 3.9 GB in memory) this way.

    Raises :class:`~scmib.errors.ContractError` naming the file when it is missing
    or is not an HDF5/AnnData file, instead of h5py's low-level message.
    """
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"{role} file '{path}': does not exist")
    if not h5py.is_hdf5(path):
        raise ContractError(f"{role} file '{path}': is not an h5ad (HDF5) file")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:  # h5py.is_hdf5 passes a truncated file; opening it fails
        raise ContractError(f"{role} file '{path}': is a damaged HDF5 file ({exc})") from exc
    with handle:
        missing = [group for group in ("obs", "var") if group not in handle]
        if missing:
            found = ", ".join(sorted(handle)) or "nothing"
            raise ContractError(
                f"{role} file '{path}': is an HDF5 file but not AnnData (no {' or '.join(missing)} group; "
                f"it holds {found})"
            )
    try:
        return _read_lazy(path) if lazy else ad.read_h5ad(path)
    except Exception as exc:  # anndata raises many types for corrupt files
        raise ContractError(f"{role} file '{path}': could not be read as AnnData ({exc})") from exc


def _read_lazy(path: Path) -> ad.AnnData:
    # The datasets keep the file open for as long as the AnnData holding them lives.
    handle = h5py.File(path, "r")

    def element(node: h5py.Group | h5py.Dataset) -> Any:
        if node.attrs.get("encoding-type") in ("csr_matrix", "csc_matrix"):
            return ad.io.sparse_dataset(node)
        return ad.io.read_elem(node)

    slots = ("obs", "var", "uns", "obsm", "varm", "obsp", "varp")
    kept = {slot: ad.io.read_elem(handle[slot]) for slot in slots if slot in handle}
    layers = {name: element(node) for name, node in handle["layers"].items()} if "layers" in handle else {}
    return ad.AnnData(X=element(handle["X"]) if "X" in handle else None, layers=layers, **kept)


def keep_layers(adata: ad.AnnData, names: Collection[str], to_memory: bool = True) -> ad.AnnData:
    """Of a file read lazily, drop the layers other than ``names`` (and an on-disk ``X``) unread
    and, with ``to_memory``, read the kept ones into memory; returns ``adata``. A method that uses
    one layer of a competition-size ATAC file then holds 1.8 GB, not 3.9."""
    for name in list(adata.layers):
        if name not in names:
            del adata.layers[name]
        elif to_memory and isinstance(adata.layers[name], OnDisk):
            adata.layers[name] = adata.layers[name].to_memory()
    if isinstance(adata.X, OnDisk):
        adata.X = None
    return adata


def rows(matrix: Any, selected: np.ndarray, columns: np.ndarray | None = None) -> sp.csr_matrix:
    """Rows ``selected`` (in that order) and optionally ``columns`` of a matrix, as CSR in memory.

    ``matrix`` may be in memory (dense or sparse) or on disk (:data:`OnDisk`); with
    ``columns`` an on-disk matrix is read :data:`ROW_CHUNK` rows at a time, so only
    the kept part of it is ever held in full.
    """
    if not isinstance(matrix, OnDisk):
        dense = not sp.issparse(matrix)
        subset = sp.csr_matrix(np.asarray(matrix)[selected]) if dense else sp.csr_matrix(matrix)[selected]
        return subset if columns is None else subset[:, columns]
    if columns is None:
        return sp.csr_matrix(matrix[selected])
    parts = [
        sp.csr_matrix(matrix[selected[start : start + ROW_CHUNK]])[:, columns]
        for start in range(0, len(selected), ROW_CHUNK)
    ]
    return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, len(columns)), dtype=matrix.dtype)


def stack_rows(matrices: Sequence[Any], dtype: Any = None) -> sp.csr_matrix:
    """The rows of ``matrices`` one after another, as one CSR matrix of ``dtype`` (default: theirs).

    Each matrix may be dense, sparse or on disk (:data:`OnDisk`). The result is
    allocated once and filled :data:`VALUE_CHUNK` stored values at a time, so
    stacking a competition-size ATAC file's training and test counts (245
    million values) from disk holds the result alone: ``scipy.sparse.vstack``
    of matrices in memory holds them and the result, and a change of dtype
    one more copy.
    """
    if not matrices:
        raise ValueError("nothing to stack")
    widths = {matrix.shape[1] for matrix in matrices}
    if len(widths) != 1:
        raise ValueError(f"matrices to stack have different numbers of columns: {sorted(widths)}")
    parts = [_csr_parts(matrix) for matrix in matrices]
    dtype = np.dtype(dtype) if dtype is not None else np.result_type(*(p[0].dtype for p in parts))
    n_stored = sum(int(p[2][-1]) for p in parts)
    index_dtype = np.int32 if max(n_stored, *widths) < np.iinfo(np.int32).max else np.int64
    data = np.empty(n_stored, dtype=dtype)
    indices = np.empty(n_stored, dtype=index_dtype)
    indptr = [np.zeros(1, dtype=index_dtype)]
    offset = 0
    for values, columns, pointers in parts:
        count = int(pointers[-1])
        for start in range(0, count, VALUE_CHUNK):
            stop = min(start + VALUE_CHUNK, count)
            data[offset + start : offset + stop] = values[start:stop]
            indices[offset + start : offset + stop] = columns[start:stop]
        indptr.append(np.asarray(pointers[1:], dtype=index_dtype) + offset)
        offset += count
    shape = (sum(matrix.shape[0] for matrix in matrices), widths.pop())
    return sp.csr_matrix((data, indices, np.concatenate(indptr)), shape=shape)


def _csr_parts(matrix: Any) -> tuple[Any, Any, np.ndarray]:
    """(data, indices, indptr) of a matrix as CSR; an on-disk CSR's data and indices stay on disk."""
    if isinstance(matrix, OnDisk) and matrix.format == "csr":
        group = matrix.group
        return group["data"], group["indices"], np.asarray(group["indptr"][:])
    if isinstance(matrix, OnDisk):
        matrix = matrix.to_memory()
    matrix = sp.csr_matrix(matrix)
    return matrix.data, matrix.indices, matrix.indptr


def stored_values(matrix: Any) -> Iterator[np.ndarray]:
    """The stored values of a matrix (a sparse one's non-zeros, a dense one's every entry),
    :data:`VALUE_CHUNK` at a time, whether it is in memory or on disk."""
    if isinstance(matrix, OnDisk):
        values: Any = matrix.group["data"]
    elif sp.issparse(matrix):
        values = matrix.data
    else:
        values = np.asarray(matrix).reshape(-1)
    for start in range(0, values.shape[0], VALUE_CHUNK):
        yield np.asarray(values[start : start + VALUE_CHUNK])


def columns_with_positive_values(matrix: Any) -> np.ndarray:
    """Indices of the columns of a CSR matrix (in memory or on disk) with a value above zero
    (for counts: the features seen in at least one cell), read a part at a time."""
    if not isinstance(matrix, OnDisk):
        return np.flatnonzero(np.asarray((sp.csr_matrix(matrix) > 0).sum(axis=0)).ravel())
    if matrix.format != "csr":
        raise ValueError(f"expected a CSR matrix on disk, found {matrix.format}")
    data, indices = matrix.group["data"], matrix.group["indices"]
    seen = np.zeros(matrix.shape[1], dtype=bool)
    for start in range(0, data.shape[0], VALUE_CHUNK):
        stop = start + VALUE_CHUNK
        seen[np.asarray(indices[start:stop])[np.asarray(data[start:stop]) > 0]] = True
    return np.flatnonzero(seen)


#: HDF5 compression of every file a component writes. gzip, which every HDF5 reader has (h5py's LZF
#: filter is not in R's rhdf5), at level 1: on a competition-size GEX file (57,000 x 13,431, two
#: layers) it writes in 0.62x the time of h5py's default level 4 with the same size (404 vs 405 MB)
#: and reads as fast (``benchmarks/h5ad_compression.py``). Uncompressed is 3.4x larger.
COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 1}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path in ``path``'s folder to write ``path`` through: renamed to ``path`` when the
    block ends, removed if it raises.

    A crash or Ctrl-C half-way never leaves a truncated file under the final name
    (a resumed run would take it for a finished output) and never spoils the file
    that was there before.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file 0600; give it the permissions a plain open() would (umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_tsv_atomic(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """``table`` as a tab-separated file without its index, written through :func:`atomic_path`."""
    return write_text_atomic(path, table.to_csv(sep="\t", index=False))


def write_h5ad_atomic(
    adata: ad.AnnData,
    path: str | os.PathLike,
    layers: Mapping[str, Callable[[], Any]] | None = None,
) -> Path:
    """Write ``adata`` to ``path`` through :func:`atomic_path`.

    ``layers`` are made (each by calling it) and written one at a time after the
    rest, so a file larger than memory allows twice is never held whole.
    """
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, **COMPRESSION)
        if layers:
            with h5py.File(tmp, "a") as handle:
                for name, make in layers.items():
                    ad.io.write_elem(handle["layers"], name, make(), dataset_kwargs=COMPRESSION)
    return Path(path)


def index_length(frame: h5py.Group) -> int:
    """Rows of a data frame (``obs``, ``var``) of an open ``.h5ad`` file, read from its index alone."""
    return int(frame[frame.attrs["_index"]].shape[0])


def describe_h5ad(path: str | os.PathLike) -> dict[str, Any]:
    """Cells, features, modality, batches and the ``uns`` source/reference of an ``.h5ad`` file,
    read without loading its matrices (for a report's dataset cards); empty if it is missing."""
    path = Path(path)
    if not path.is_file():
        return {}
    with h5py.File(path, "r") as handle:
        obs, var, uns = handle["obs"], handle["var"], handle.get("uns", {})
        found: dict[str, Any] = {"cells": index_length(obs), "features": index_length(var)}
        if "batch" in obs:
            found["batches"] = len(pd.unique(np.asarray(ad.io.read_elem(obs["batch"]))))
        for key in ("modality", "source", "reference"):
            if key in uns:
                found[key] = str(ad.io.read_elem(uns[key]))
    return found

"""Reading and writing AnnData files with clear errors and without partial outputs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import anndata as ad
import h5py

from scmib.errors import ContractError


def read_h5ad(path: str | os.PathLike, *, role: str = "input") -> ad.AnnData:
    """Read an ``.h5ad`` file into memory.

    Raises :class:`~scmib.errors.ContractError` naming the file when it is missing
    or is not an HDF5/AnnData file, instead of h5py's low-level message.
    """
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"{role} file '{path}': does not exist")
    if not h5py.is_hdf5(path):
        raise ContractError(f"{role} file '{path}': is not an h5ad (HDF5) file")
    with h5py.File(path, "r") as handle:
        missing = [group for group in ("obs", "var") if group not in handle]
        if missing:
            found = ", ".join(sorted(handle)) or "nothing"
            raise ContractError(
                f"{role} file '{path}': is an HDF5 file but not AnnData (no {' or '.join(missing)} group; "
                f"it holds {found})"
            )
    try:
        return ad.read_h5ad(path)
    except Exception as exc:  # anndata raises many types for corrupt files
        raise ContractError(f"{role} file '{path}': could not be read as AnnData ({exc})") from exc


def write_h5ad_atomic(adata: ad.AnnData, path: str | os.PathLike) -> Path:
    """Write ``adata`` to ``path`` through a temporary file in the same folder, then rename.

    A crash half-way never leaves a truncated file under the final name, so a
    resumed run never mistakes it for a finished output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        adata.write_h5ad(tmp, compression="gzip")
        # mkstemp creates the file 0600; give it the permissions a plain open() would (umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path

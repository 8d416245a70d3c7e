"""Verified downloads with an offline mirror.

Every source file has a URL and (where known) a sha256. :func:`fetch` serves a
file from a mirror folder when one is set and holds it (the layout of
``shared/data``: ``<mirror>/<relpath>``), and otherwise downloads it once into
a pooch cache, checking its hash either way.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pooch

from scmib.errors import ScmibError

#: Environment variable naming the mirror folder when no ``--data_mirror`` is given.
MIRROR_ENV = "SCMIB_DATA_MIRROR"
CACHE_ENV = "SCMIB_CACHE_DIR"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """scmib's cache folder: ``cache_dir``, else ``$SCMIB_CACHE_DIR``, else ``~/.cache/scmib``."""
    return Path(cache_dir or os.environ.get(CACHE_ENV) or pooch.os_cache("scmib"))


def numba_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where runs keep numba's compiled code: a folder per version of numba, UMAP and pynndescent
    under ``numba/`` of :func:`cache_root`. numba notices a changed source file, not a changed
    function that a cached one calls from another package: an upgrade starts a new folder."""
    versions = []
    for package in ("numba", "umap-learn", "pynndescent"):
        try:
            versions.append(f"{package}-{importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package}-none")
    return cache_root(cache_dir) / "numba" / "_".join(versions)


@dataclass(frozen=True)
class Source:
    """One downloadable file: where it lives online and in a mirror folder."""

    relpath: str
    url: str
    sha256: str | None = None
    size_bytes: int | None = None


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The file's SHA-256, computed once per version of it (path, size, modification time): a
    multi-GB download is checked and then named by it without being read twice."""
    stat = os.stat(path)
    return _sha256sum(os.fspath(path), stat.st_size, stat.st_mtime_ns, chunk)


@functools.lru_cache(maxsize=64)
def _sha256sum(path: str, _size: int, _mtime_ns: int, chunk: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, source: Source) -> Path:
    if source.size_bytes is not None and path.stat().st_size != source.size_bytes:
        raise ScmibError(f"{path}: size {path.stat().st_size} bytes, expected {source.size_bytes}")
    if source.sha256 is None:
        # Nothing published to check against: say so, with the hash that would pin this copy.
        print(
            f"scmib: {path}: no known sha256 to check this file against (its sha256 is "
            f"{sha256sum(path)}; a loader's source_sha256 argument pins it)",
            file=sys.stderr,
        )
    elif (found := sha256sum(path)) != source.sha256:
        raise ScmibError(f"{path}: sha256 {found} does not match the expected {source.sha256}")
    return path


def fetch(source: Source, *, mirror: str | None = None, cache_dir: str | None = None) -> Path:
    """Path to a verified local copy of ``source`` (from the mirror, the cache, or downloaded)."""
    mirror = mirror or os.environ.get(MIRROR_ENV)
    if mirror:
        candidate = Path(mirror) / source.relpath
        if candidate.is_file():
            return _verify(candidate, source)
    cache = cache_root(cache_dir)
    known_hash = f"sha256:{source.sha256}" if source.sha256 else None
    cached = cache / source.relpath.replace("/", "__")
    if cached.is_file():
        try:
            return _verify(cached, source)
        except ScmibError as exc:
            # A damaged or tampered copy must not stay where the next run would find it.
            cached.unlink()
            print(f"scmib: removed a cached file that failed its check ({exc}); downloading it again")
    try:
        local = pooch.retrieve(
            source.url,
            known_hash=known_hash,
            fname=source.relpath.replace("/", "__"),
            path=cache,
            progressbar=False,
        )
    except Exception as exc:  # network errors come in many types
        if isinstance(exc, ValueError) and "hash" in str(exc).lower():  # pooch: the file, not the network
            raise ScmibError(
                f"downloaded {source.url}, but its sha256 is not the expected {source.sha256} ({exc}); "
                "the file at that address changed or the download was damaged"
            ) from exc
        where = f" nor in the mirror '{mirror}'" if mirror else ""
        raise ScmibError(
            f"could not download {source.url} ({exc}); the file was not in the cache{where}. "
            f"Set --data_mirror or ${MIRROR_ENV} to a folder holding '{source.relpath}'."
        ) from exc
    return _verify(Path(local), source)


def gunzipped(path: Path, cache_dir: str | None = None, sha256: str | None = None) -> Path:
    """A decompressed copy of ``path`` (a ``.gz`` file), made once beside the cache, atomically.

    The copy is named after the source's content (``sha256``, or the file's own
    hash when none is known), so a replaced source is decompressed again and
    an unchanged one never is.
    """
    import gzip
    import shutil

    from scmib.io import atomic_path

    cache = cache_root(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{path.name.removesuffix('.gz')}.{(sha256 or sha256sum(path))[:16]}"
    if not target.exists():
        with atomic_path(target) as tmp, open(tmp, "wb") as out, gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, out, length=1 << 22)
    return target

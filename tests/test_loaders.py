"""Dataset loaders, run through their command lines on the real data."""

from __future__ import annotations

import gzip
import os
import shutil
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from conftest import read, run_cli

from scmib.contracts import check_file, load_contract
from scmib.data.cache import Source, fetch, gunzipped, sha256sum
from scmib.data.filters import read_filters
from scmib.errors import ScmibError


def _check_common(rna_path, mod2_path):
    rna, mod2 = read(rna_path), read(mod2_path)
    check_file(rna, load_contract("datasets/rna"), rna_path)
    check_file(mod2, load_contract("datasets/mod2"), mod2_path)
    assert np.array_equal(rna.obs_names, mod2.obs_names)
    return rna, mod2


def test_triana_loader(triana_common):
    rna, adt = _check_common(*triana_common)
    assert rna.shape == (9663, 422) and adt.shape == (9663, 97)
    assert sorted(rna.obs["batch"].unique()) == ["Aged1", "Aged2", "Aged3", "BM1", "BM2", "BM3"]
    assert rna.obs["cell_type"].nunique() == 41
    assert adt.uns["modality"] == "ADT" and rna.uns["organism"] == "human"
    assert "CD34" in adt.var_names and not any(v.startswith("mod2_") for v in adt.var_names)
    np.testing.assert_allclose(rna.obs["size_factors"].mean(), 1.0)


def test_snareseq2_loader_filters_rare_peaks(snare_common):
    rna, atac = _check_common(*snare_common)
    assert rna.shape == (10309, 1677)
    assert atac.n_vars < 25734
    open_in = np.asarray((atac.layers["counts"] > 0).sum(axis=0)).ravel()
    assert open_in.min() >= 15
    assert set(np.unique(atac.layers["normalized"].data)) == {1.0}
    assert rna.obs["batch"].nunique() == 12 and rna.uns["organism"] == "mouse"


def test_starter_loader_keeps_the_organisers_values_and_split(starter_cite_common, data_dir):
    rna, _ = _check_common(*starter_cite_common)
    source = read(data_dir / "neurips2021_starter/cite/common/output_rna.h5ad")
    np.testing.assert_allclose(rna.layers["normalized"].toarray(), source.X.toarray(), atol=1e-5)
    assert rna.obs["is_train"].sum() == 311
    assert set(rna.obs["site"]) == {"s1"} and set(rna.obs["donor"]) == {"d1", "d2"}
    assert "pseudotime_order_ADT" in rna.obs


@pytest.fixture
def geo_mirror(tmp_path, data_dir):
    """A small file in GEO GSE194122's layout, built from the starter cells.

    One AnnData with both modalities (``var.feature_types``), raw counts in
    ``layers["counts"]``, the GEO obs column names, gzipped. Batch s1d2 is
    renamed s4d1 so the competition's site split has test cells.
    """
    folder = data_dir / "neurips2021_starter/cite/common"
    rna, adt = read(folder / "output_rna.h5ad"), read(folder / "output_mod2.h5ad")
    # Gene and protein names overlap (CD4, ...), as in the real GEO file; the loader splits
    # on var.feature_types, so the duplicate names are expected here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Variable names are not unique")
        combined = ad.concat([rna, adt], axis=1, merge="first")
    combined.var["feature_types"] = ["GEX"] * rna.n_vars + ["ADT"] * adt.n_vars
    obs = pd.DataFrame(index=rna.obs_names)
    obs["batch"] = rna.obs["batch"].astype(str).replace({"s1d2": "s4d1"})
    obs.iloc[:20, 0] = "s5d1"  # a batch the competition did not use: left out, and said so
    obs["cell_type"] = rna.obs["cell_type"].astype(str)
    obs["GEX_size_factors"] = rna.obs["size_factors"]
    obs["GEX_phase"] = rna.obs["phase"].astype(str)
    obs["GEX_pseudotime_order"] = rna.obs["pseudotime_order_GEX"]
    obs["ADT_pseudotime_order"] = rna.obs["pseudotime_order_ADT"]
    obs["Site"] = obs["batch"].str[:2]
    # GEO's own split: the 30 cells after the unused batch are iid_holdout (left out, and said so).
    obs["is_train"] = np.where(obs["batch"].str.startswith("s4"), "test", "train")
    obs.iloc[20:50, obs.columns.get_loc("is_train")] = "iid_holdout"
    combined.obs = obs
    combined.layers["counts"] = combined.layers["counts"].tocsr()
    mirror = tmp_path / "mirror" / "neurips2021_geo"
    mirror.mkdir(parents=True)
    raw = tmp_path / "geo.h5ad"
    combined.write_h5ad(raw)
    archive = mirror / "GSE194122_openproblems_neurips2021_cite_BMMC_processed.h5ad.gz"
    with open(raw, "rb") as src, gzip.open(archive, "wb") as out:
        shutil.copyfileobj(src, out)
    return mirror.parent, sha256sum(archive)


def test_geo_loader_on_a_file_in_the_geo_layout(tmp_path, geo_mirror):
    mirror, sha = geo_mirror
    out = {"output_rna": tmp_path / "rna.h5ad", "output_mod2": tmp_path / "mod2.h5ad"}
    # The pinned checksum is the real GEO file's: the small copy is refused ...
    refused = run_cli(
        "datasets/loaders/neurips2021_bmmc",
        check=False,
        modality="cite",
        data_mirror=mirror,
        cache_dir=tmp_path / "cache",
        **out,
    )
    assert refused.returncode == 2 and "sha256" in refused.stderr
    assert not out["output_rna"].exists()
    # ... and accepted when its own checksum is given.
    run_cli(
        "datasets/loaders/neurips2021_bmmc",
        modality="cite",
        data_mirror=mirror,
        cache_dir=tmp_path / "cache",
        source_sha256=sha,
        **out,
    )
    rna, adt = _check_common(out["output_rna"], out["output_mod2"])
    assert rna.shape == (550, 1000) and adt.shape == (550, 134)
    filters = read_filters(out["output_rna"])
    unused = {"what": "cells", "why": "batch not in the competition's split", "before": 600, "removed": 20}
    assert unused in filters
    assert {"what": "cells", "why": "GEO's iid_holdout cells", "before": 580, "removed": 30} in filters
    assert adt.var["feature_types"].eq("ADT").all()
    assert rna.obs.loc[rna.obs["batch"] == "s4d1", "is_train"].eq(False).all()
    assert rna.obs.loc[rna.obs["batch"] == "s1d1", "is_train"].all()
    assert set(rna.obs["site"]) == {"s1", "s4"}
    assert rna.uns["dataset_id"] == "neurips2021_bmmc_cite"


def test_fetch_verifies_mirror_files_and_explains_offline_failures(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file.txt").write_text("hello")
    good = Source("x/file.txt", "https://invalid.invalid/file.txt", sha256sum(tmp_path / "x/file.txt"))
    assert fetch(good, mirror=str(tmp_path)) == tmp_path / "x" / "file.txt"
    assert "sha256" not in capsys.readouterr().err
    # A file with no published checksum is served, saying so, with its own hash to pin it.
    assert fetch(Source("x/file.txt", good.url, None), mirror=str(tmp_path)) == tmp_path / "x" / "file.txt"
    assert (
        f"no known sha256 to check this file against (its sha256 is {good.sha256}" in capsys.readouterr().err
    )
    with pytest.raises(ScmibError, match="does not match"):
        fetch(Source("x/file.txt", good.url, "0" * 64), mirror=str(tmp_path))
    with pytest.raises(ScmibError, match="--data_mirror"):
        fetch(Source("y/absent.txt", good.url, None), mirror=str(tmp_path), cache_dir=str(tmp_path / "cache"))


def test_a_geo_copy_that_names_its_features_otherwise_is_refused_clearly(tmp_path, geo_mirror):
    """A re-packaged GEO file whose proteins are labelled "Antibody Capture": a clear error naming
    the slot and what is expected, not a traceback or a dataset without proteins."""
    mirror, _ = geo_mirror
    archive = mirror / "neurips2021_geo" / "GSE194122_openproblems_neurips2021_cite_BMMC_processed.h5ad.gz"
    with gzip.open(archive, "rb") as packed, open(tmp_path / "geo.h5ad", "wb") as raw:
        shutil.copyfileobj(packed, raw)
    adata = read(tmp_path / "geo.h5ad")
    adata.var["feature_types"] = adata.var["feature_types"].replace({"ADT": "Antibody Capture"})
    adata.write_h5ad(tmp_path / "geo.h5ad")
    relabelled = tmp_path / "mirror2" / "neurips2021_geo" / archive.name
    relabelled.parent.mkdir(parents=True)
    with open(tmp_path / "geo.h5ad", "rb") as raw, gzip.open(relabelled, "wb") as packed:
        shutil.copyfileobj(raw, packed)
    out = {"output_rna": tmp_path / "rna.h5ad", "output_mod2": tmp_path / "mod2.h5ad"}
    proc = run_cli(
        "datasets/loaders/neurips2021_bmmc", check=False, modality="cite", data_mirror=tmp_path / "mirror2",
        cache_dir=tmp_path / "cache", source_sha256=sha256sum(relabelled), **out,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    expected = "var['feature_types'] must name GEX and ADT features, found ['Antibody Capture', 'GEX']"
    assert expected in proc.stderr
    assert not out["output_rna"].exists()


def test_a_download_whose_checksum_differs_says_so_not_that_the_network_failed(tmp_path):
    """A file served at the source's address that is not the expected one: the error names the
    checksum, not a download failure (which would send the user to --data_mirror)."""
    import functools
    import http.server
    import threading

    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "file.txt").write_text("not the expected data")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "served"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/file.txt"
        with pytest.raises(ScmibError, match=r"file\.txt, but its sha256 is not the expected 0{64}"):
            fetch(Source("x/file.txt", url, "0" * 64), cache_dir=str(tmp_path / "cache"))
    finally:
        server.shutdown()
        server.server_close()


def test_a_damaged_cached_file_is_removed_and_never_served(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (tmp_path / "original.txt").write_text("the real data")
    source = Source("x/file.txt", "https://invalid.invalid/file.txt", sha256sum(tmp_path / "original.txt"))
    cached = cache / "x__file.txt"
    cached.write_text("the real data")
    assert fetch(source, cache_dir=str(cache)) == cached  # a good copy is served offline
    cached.write_text("tampered")
    with pytest.raises(ScmibError, match="could not download"):
        fetch(source, cache_dir=str(cache))
    assert not cached.exists()


def test_decompressed_copies_are_keyed_on_the_content_of_their_source(tmp_path):
    archive = tmp_path / "data.txt.gz"
    archive.write_bytes(gzip.compress(b"first"))
    first = gunzipped(archive, str(tmp_path / "cache"))
    assert first.read_bytes() == b"first"
    archive.write_bytes(gzip.compress(b"second"))
    os.utime(archive, (0, 0))  # same size class and an old mtime: only the content tells them apart
    second = gunzipped(archive, str(tmp_path / "cache"))
    assert second != first and second.read_bytes() == b"second"
    assert gunzipped(archive, str(tmp_path / "cache")) == second


def test_synthetic_competition_data_has_the_competitions_shapes_and_is_seeded():
    from scmib.data.synthetic import CELL_TYPES, SHAPES, synthetic_paired

    gex, adt, obs, gex_var, _ = synthetic_paired("cite", n_train=600, n_test=200, seed=3)
    assert SHAPES["cite"].n_genes == 13_953 and gex.shape == (800, 13_953) and adt.shape == (800, 134)
    assert 0.03 < gex.nnz / np.prod(gex.shape) < 0.15  # the real CITE GEX is 6-10% non-zero
    assert adt.nnz / np.prod(adt.shape) > 0.5  # antibody counts are dense
    assert obs["is_train"].sum() == 600 and set(obs.loc[~obs["is_train"], "site"]) == {"s4"}
    assert set(obs["cell_type"]) <= set(CELL_TYPES) and {"HSC", "Erythroblast"} <= set(obs["cell_type"])
    assert {"MCM5", "MKI67"} <= set(gex_var.index)  # Tirosh S and G2/M genes, for cc_cons
    again = synthetic_paired("cite", n_train=600, n_test=200, seed=3)[0]
    assert (gex != again).nnz == 0
    _, atac, _, _, peaks = synthetic_paired("multiome", n_train=300, n_test=100)
    assert atac.shape == (400, 116_490) and peaks.index.is_unique
    assert 0.005 < atac.nnz / np.prod(atac.shape) < 0.08


def test_synthetic_competition_loader_writes_the_common_format(tmp_path):
    rna, mod2 = tmp_path / "rna.h5ad", tmp_path / "mod2.h5ad"
    run_cli(
        "datasets/loaders/synthetic_competition",
        output_rna=rna, output_mod2=mod2, modality="cite", n_train_cells=500, n_test_cells=100,
    )  # fmt: skip
    rna_file, mod2_file = read(rna), read(mod2)
    check_file(rna_file, load_contract("datasets/rna"), rna)
    assert rna_file.n_vars == 13_953 and mod2_file.n_vars == 134 and rna_file.n_obs == 600
    assert rna_file.uns["dataset_id"] == "synthetic_competition_cite"

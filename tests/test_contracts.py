"""File contracts: clear errors on bad input, and the organisers' files accepted unchanged."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import organisers_files

from scmib.contracts import check_file, load_contract
from scmib.errors import ContractError
from scmib.io import read_h5ad, write_h5ad_atomic

TASK_FILES = ("train_mod1", "train_mod2", "test_mod1", "test_mod2")


@pytest.mark.parametrize("modality", ["cite", "multiome"])
def test_organisers_files_follow_the_contracts(data_dir, modality):
    files = organisers_files(data_dir, modality)
    for name in TASK_FILES:
        adata = check_file(read_h5ad(files[name]), load_contract(f"predict_modality/{name}"), files[name])
        # Values live in .X in their layout; the reader fills the layer from it.
        assert "normalized" in adata.layers
        np.testing.assert_array_equal(adata.layers["normalized"].toarray(), adata.X.toarray())
    check_file(
        read_h5ad(files["prediction"]), load_contract("predict_modality/prediction"), files["prediction"]
    )


def _tiny(n_obs=5, n_vars=3) -> ad.AnnData:
    counts = sp.csr_matrix(np.arange(n_obs * n_vars, dtype=np.float32).reshape(n_obs, n_vars))
    adata = ad.AnnData(X=None, obs={"batch": ["a"] * n_obs}, layers={"counts": counts})
    adata.obs_names = [f"c{i}" for i in range(n_obs)]
    adata.uns["dataset_id"] = "tiny"
    return adata


def test_missing_layer_names_file_and_slot():
    with pytest.raises(ContractError) as err:
        check_file(_tiny(), load_contract("predict_modality/train_mod1"), "x.h5ad")
    assert "x.h5ad" in str(err.value) and "layers['normalized'] is missing" in str(err.value)


def test_missing_obs_and_uns_are_all_listed():
    adata = _tiny()
    adata.layers["normalized"] = adata.layers["counts"]
    del adata.obs["batch"]
    del adata.uns["dataset_id"]
    with pytest.raises(ContractError) as err:
        check_file(adata, load_contract("predict_modality/test_mod1"), "t.h5ad")
    assert "obs['batch'] is missing" in str(err.value)
    assert "uns['dataset_id'] is missing" in str(err.value)


def test_fractional_counts_and_nan_predictions_are_rejected():
    adata = _tiny()
    adata.layers["counts"] = adata.layers["counts"] * 0.5
    adata.layers["normalized"] = adata.layers["counts"]
    with pytest.raises(ContractError, match="whole-number counts"):
        check_file(adata, load_contract("predict_modality/train_mod1"), "f.h5ad")
    pred = ad.AnnData(X=None, obs=adata.obs[[]], var=adata.var[[]])
    pred.layers["normalized"] = np.full((5, 3), np.nan, dtype=np.float32)
    pred.uns.update(dataset_id="tiny", method_id="m")
    with pytest.raises(ContractError, match=r"layers\['normalized'\].*15 NaN"):
        check_file(pred, load_contract("predict_modality/prediction"), "p.h5ad")


def test_a_file_that_is_not_h5ad_is_named(tmp_path):
    bogus = tmp_path / "prediction.h5ad"
    bogus.write_text("cell,value\n")
    with pytest.raises(ContractError, match=r"prediction\.h5ad.*not an h5ad"):
        read_h5ad(bogus)
    with pytest.raises(ContractError, match="does not exist"):
        read_h5ad(tmp_path / "absent.h5ad")


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.h5ad"

    def broken_write(self, path, **kwargs):
        with open(path, "w") as handle:
            handle.write("half")
        raise OSError("disk full")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", broken_write)
    with pytest.raises(OSError, match="disk full"):
        write_h5ad_atomic(_tiny(), target)
    assert list(tmp_path.iterdir()) == []

"""File contracts: clear errors on bad input, and the organisers' files accepted unchanged."""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import organisers_files, run_cli

from scmib.contracts import check_file, load_contract, score_values, shared_axis_problems
from scmib.errors import ContractError
from scmib.io import atomic_path, read_h5ad, write_h5ad_atomic, write_tsv_atomic

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


def test_a_score_file_holds_one_value_for_each_declared_metric_and_nothing_else():
    def score(ids, values):
        return ad.AnnData(uns={"metric_ids": ids, "metric_values": values})

    assert score_values(score(["rmse", "mae"], [0.5, 0.25]), ["mae", "rmse"], "s.h5ad") == {
        "rmse": 0.5,
        "mae": 0.25,
    }
    for ids, values, message in [
        (["rmse", "mae"], [0.5], r"2 ids but 1 uns\['metric_values'\]"),
        (["rmse", "rmse", "mae"], [0.5, 0.5, 0.25], r"\['rmse'\] given more than once"),
        (
            ["RMSE", "mae"],
            [0.5, 0.25],
            r"expected the component's metrics \['mae', 'rmse'\], found \['RMSE', 'mae'\]",
        ),
        (["mae"], [0.25], r"expected the component's metrics"),
    ]:
        with pytest.raises(ContractError, match=r"s\.h5ad': uns\['metric_ids'\]: " + message):
            score_values(score(ids, values), ["rmse", "mae"], "s.h5ad")
    with pytest.raises(ContractError, match="not a score file"):
        score_values(ad.AnnData(), ["rmse"], "s.h5ad")


def test_a_file_that_is_not_h5ad_is_named(tmp_path):
    bogus = tmp_path / "prediction.h5ad"
    bogus.write_text("cell,value\n")
    with pytest.raises(ContractError, match=r"prediction\.h5ad.*not an h5ad"):
        read_h5ad(bogus)
    with pytest.raises(ContractError, match="does not exist"):
        read_h5ad(tmp_path / "absent.h5ad")
    # A truncated file (a copy cut short) still starts like HDF5: h5py fails only on opening it.
    whole = tmp_path / "whole.h5ad"
    _tiny().write_h5ad(whole)
    truncated = tmp_path / "truncated.h5ad"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ContractError, match=r"truncated\.h5ad.*damaged HDF5"):
        read_h5ad(truncated, role="prediction")


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


def test_an_interrupted_table_write_keeps_the_table_that_was_there(tmp_path):
    """Results tables, records and reports go through atomic_path: Ctrl-C half-way leaves the
    previous file whole and no temporary file behind."""
    target = tmp_path / "results.tsv"
    write_tsv_atomic(target, pd.DataFrame({"method": ["knn"], "value": [0.5]}))
    before = target.read_text()
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("method\tval")
        raise KeyboardInterrupt
    assert target.read_text() == before == "method\tvalue\nknn\t0.5\n"
    assert list(tmp_path.iterdir()) == [target]


def test_every_matrix_is_written_with_gzip_level_1_and_read_back_unchanged(tmp_path):
    """gzip (every HDF5 reader has it) at level 1 (benchmarks/h5ad_compression.py), layers written
    one at a time included."""
    adata = _tiny(n_obs=50, n_vars=20)
    later = sp.random(50, 20, density=0.3, format="csr", dtype=np.float32, random_state=0)
    target = write_h5ad_atomic(adata, tmp_path / "out.h5ad", layers={"normalized": lambda: later})
    with h5py.File(target) as handle:
        for layer in ("counts", "normalized"):
            data = handle[f"layers/{layer}/data"]
            assert (data.compression, data.compression_opts) == ("gzip", 1)
    back = read_h5ad(target)
    np.testing.assert_array_equal(back.layers["counts"].toarray(), adata.layers["counts"].toarray())
    np.testing.assert_array_equal(back.layers["normalized"].toarray(), later.toarray())


@pytest.mark.parametrize("modality", ["cite", "multiome"])
def test_organisers_files_share_their_axes_as_the_contracts_say(data_dir, modality):
    files = organisers_files(data_dir, modality)
    read = {
        name: (read_h5ad(files[name]), load_contract(f"predict_modality/{name}"), files[name])
        for name in (*TASK_FILES, "prediction")
    }
    for first in read.values():
        for second in read.values():
            assert shared_axis_problems(*first, *second) == []


def test_permuted_or_renamed_features_are_a_contract_error_naming_both_files(tmp_path, data_dir):
    """kNN regression given test cells whose genes are permuted must not exit 0 with a wrong prediction."""
    files = organisers_files(data_dir, "cite")
    test = read_h5ad(files["test_mod1"])
    permuted = test[:, np.random.default_rng(0).permutation(test.n_vars)].copy()
    permuted_path = tmp_path / "test_mod1_permuted.h5ad"
    write_h5ad_atomic(permuted, permuted_path)
    renamed = test.copy()
    renamed.var_names = [f"gene_{i}" for i in range(test.n_vars)]
    renamed_path = tmp_path / "test_mod1_renamed.h5ad"
    write_h5ad_atomic(renamed, renamed_path)
    for path, detail in ((permuted_path, "in another order"), (renamed_path, "are not in the second")):
        proc = run_cli(
            "predict_modality/methods/knn_regression",
            check=False,
            input_train_mod1=files["train_mod1"],
            input_train_mod2=files["train_mod2"],
            input_test_mod1=path,
            output=tmp_path / "prediction.h5ad",
        )
        assert proc.returncode != 0 and not (tmp_path / "prediction.h5ad").exists()
        assert str(path) in proc.stderr and str(files["train_mod1"]) in proc.stderr
        assert "same features (var_names)" in proc.stderr and detail in proc.stderr
        # The same check before a run: scmib validate FILE --with OTHER.
        validate = subprocess.run(
            [sys.executable, "-m", "scmib.cli", "validate", str(path),
             "--contract", "predict_modality/test_mod1", "--with", str(files["train_mod1"]),
             "--with-contract", "predict_modality/train_mod1"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert validate.returncode == 2 and detail in validate.stderr


def test_train_files_of_other_cells_are_a_contract_error_not_a_matmul_traceback(tmp_path, data_dir):
    files = organisers_files(data_dir, "cite")
    mod2 = read_h5ad(files["train_mod2"])
    shuffled = mod2[np.random.default_rng(1).permutation(mod2.n_obs)].copy()
    path = tmp_path / "train_mod2_shuffled.h5ad"
    write_h5ad_atomic(shuffled, path)
    proc = run_cli(
        "predict_modality/methods/knn_regression",
        check=False,
        input_train_mod1=files["train_mod1"],
        input_train_mod2=path,
        input_test_mod1=files["test_mod1"],
        output=tmp_path / "prediction.h5ad",
    )
    assert proc.returncode != 0 and "same cells (obs_names)" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("dimensions", [0, 101])
def test_an_embedding_outside_its_contracts_dimensions_is_rejected(dimensions):
    embedding = ad.AnnData(np.zeros((5, dimensions)), uns={"dataset_id": "d", "method_id": "m"})
    with pytest.raises(ContractError, match=f"found {dimensions}"):
        check_file(embedding, load_contract("joint_embedding/prediction"), "embedding.h5ad")


def test_negative_counts_are_rejected():
    adata = ad.AnnData(np.ones((3, 2)), layers={"counts": np.array([[1, -2], [0, 3], [4, 5]])})
    adata.obs["batch"] = "b"
    adata.uns["dataset_id"] = "d"
    with pytest.raises(ContractError, match="expected non-negative counts, found 1 negative"):
        check_file(adata, load_contract("predict_modality/test_mod1"), "x.h5ad")


def test_an_hdf5_file_that_is_not_anndata_is_named(tmp_path):
    path = tmp_path / "foo.h5ad"
    with h5py.File(path, "w") as handle:
        handle["foo"] = [1]
    with pytest.raises(
        ContractError, match=r"is an HDF5 file but not AnnData \(no obs or var group; it holds foo\)"
    ):
        read_h5ad(path)


def test_nan_in_an_input_layer_is_rejected(data_dir):
    files = organisers_files(data_dir, "cite")
    adata = read_h5ad(files["test_mod1"])
    adata.X = adata.X.toarray()
    adata.X[0, 0] = np.inf
    with pytest.raises(ContractError, match=r"expected finite values, found 1 NaN or infinite"):
        check_file(adata, load_contract("predict_modality/test_mod1"), "test_mod1.h5ad")

"""The predict-modality processor: splits, subsampling, directions."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import COMPONENTS, make_task, organisers_files, read, run_cli

import scmib.io
from scmib.component import ComponentRun
from scmib.contracts import check_file, count_problems, load_contract
from scmib.errors import EXIT_NOT_APPLICABLE, ContractError
from scmib.io import read_h5ad
from scmib.processing.predict_modality import make_predict_modality
from scmib.spec import load_spec


def test_triana_split_holds_out_whole_batches(triana_gex2adt):
    files = {name: read(path) for name, path in triana_gex2adt.items()}
    for name, adata in files.items():
        check_file(adata, load_contract(f"predict_modality/{name}"), triana_gex2adt[name])
    train_batches = set(files["train_mod1"].obs["batch"])
    test_batches = set(files["test_mod1"].obs["batch"])
    assert train_batches and test_batches and not train_batches & test_batches
    assert files["test_mod1"].n_obs == 1000
    assert np.array_equal(files["test_mod1"].obs_names, files["test_mod2"].obs_names)
    assert files["train_mod1"].uns["modality"] == "GEX" and files["test_mod2"].uns["modality"] == "ADT"
    assert "cell_type" in files["train_mod1"].obs and "cell_type" not in files["test_mod1"].obs


def test_test_cells_oversample_rare_cell_types(triana_common, triana_gex2adt):
    rna = read(triana_common[0])
    test = read(triana_gex2adt["test_mod1"])
    pool = rna.obs[rna.obs["batch"].isin(set(test.obs["batch"]))]
    drawn = rna.obs.loc[test.obs_names, "cell_type"].value_counts(normalize=True)
    available = pool["cell_type"].value_counts(normalize=True)
    common = available.index[0]
    # sqrt(1/frequency) weights: a type's expected share is about sqrt(f) / sum(sqrt(f)). The most
    # frequent type lands near that, well under its share of the pool (where a uniform draw lands).
    expected = np.sqrt(available) / np.sqrt(available).sum()
    assert abs(drawn[common] - expected[common]) < abs(drawn[common] - available[common]) / 2


def test_gex2atac_target_is_a_peak_subsample(snare_gex2atac):
    train_mod2 = read(snare_gex2atac["train_mod2"])
    test_mod2 = read(snare_gex2atac["test_mod2"])
    assert train_mod2.n_vars == test_mod2.n_vars == 10_000
    assert np.array_equal(train_mod2.var_names, test_mod2.var_names)
    totals = (
        np.asarray(train_mod2.layers["counts"].sum(0)).ravel()
        + np.asarray(test_mod2.layers["counts"].sum(0)).ravel()
    )
    assert (totals > 0).all()


def test_processor_is_seeded(tmp_path, triana_common, triana_gex2adt):
    again = make_task(tmp_path, triana_common, "gex2adt")
    for name in ("train_mod1", "test_mod2"):
        a, b = read(triana_gex2adt[name]), read(again[name])
        assert np.array_equal(a.obs_names, b.obs_names)
        assert (a.layers["normalized"] != b.layers["normalized"]).nnz == 0


def test_direction_that_does_not_fit_exits_99(tmp_path, triana_common):
    outputs = {
        f"output_{n}": tmp_path / f"{n}.h5ad" for n in ("train_mod1", "train_mod2", "test_mod1", "test_mod2")
    }
    proc = run_cli(
        "predict_modality/processors/train_test_split",
        check=False,
        input_rna=triana_common[0],
        input_mod2=triana_common[1],
        direction="gex2atac",
        **outputs,
    )
    assert proc.returncode == EXIT_NOT_APPLICABLE
    assert "not applicable" in proc.stderr
    assert not any(p.exists() for p in outputs.values())


def assert_same_file(a: ad.AnnData, b: ad.AnnData) -> None:
    assert np.array_equal(a.obs_names, b.obs_names) and np.array_equal(a.var_names, b.var_names)
    assert a.obs.equals(b.obs) and a.var.equals(b.var) and a.uns["modality"] == b.uns["modality"]
    for name in ("counts", "normalized"):
        assert (a.layers[name] != b.layers[name]).nnz == 0


def test_matrices_on_disk_give_the_files_an_in_memory_split_gives(tmp_path, monkeypatch, snare_common):
    """The processor reads its inputs lazily (on disk, a few rows at a time): the same task files
    as from inputs held in memory, here with a peak subset read 7 rows at a time."""
    monkeypatch.setattr(scmib.io, "ROW_CHUNK", 7)
    monkeypatch.setattr(scmib.io, "VALUE_CHUNK", 1000)
    in_memory = make_predict_modality(read(snare_common[0]), read(snare_common[1]), "gex2atac")
    lazy = make_predict_modality(
        read_h5ad(snare_common[0], lazy=True), read_h5ad(snare_common[1], lazy=True), "gex2atac"
    )
    assert isinstance(read_h5ad(snare_common[1], lazy=True).layers["counts"], scmib.io.OnDisk)
    for name, task_file in in_memory.items():
        assert_same_file(task_file.load(), lazy[name].load())
    written = make_task(tmp_path, snare_common, "gex2atac")  # through the command line, lazily
    for name, path in written.items():
        assert_same_file(in_memory[name].load(), read(path))


def test_checks_of_a_matrix_on_disk_find_what_they_find_in_memory(tmp_path, monkeypatch):
    counts = sp.csr_matrix(np.array([[1, 0, 2.5], [0, -3, 0], [4, 0, 0]], dtype=np.float32))
    normalized = counts.copy()
    normalized.data[0] = np.nan
    ad.AnnData(layers={"counts": counts, "normalized": normalized}).write_h5ad(tmp_path / "bad.h5ad")
    monkeypatch.setattr(scmib.io, "VALUE_CHUNK", 2)
    on_disk = read_h5ad(tmp_path / "bad.h5ad", lazy=True)
    assert (
        count_problems(on_disk.layers["counts"])
        == count_problems(counts)
        == [
            "whole-number counts, found fractional values (e.g. 2.5)",
            "non-negative counts, found 1 negative values",
        ]
    )
    contract = load_contract("predict_modality/train_mod2")
    with pytest.raises(ContractError, match=r"layers\['normalized'\]: expected finite values, found 1 NaN"):
        check_file(on_disk, contract, tmp_path / "bad.h5ad")


def test_a_layer_made_as_it_is_written_is_checked_and_a_bad_one_leaves_no_file(tmp_path, triana_gex2adt):
    spec = load_spec(COMPONENTS / "predict_modality/processors/train_test_split/config.yaml")
    output = tmp_path / "train_mod2.h5ad"
    run = ComponentRun(spec, {"output_train_mod2": output})
    good = read(triana_gex2adt["train_mod2"])
    annotations = good.copy()
    del annotations.layers["counts"], annotations.layers["normalized"]
    fractional = good.layers["counts"].copy()
    fractional.data[:] = 0.5
    layers = {"counts": lambda: fractional, "normalized": lambda: good.layers["normalized"]}
    with pytest.raises(ContractError, match=r"train_mod2.h5ad \(output '--output_train_mod2'\).*counts"):
        run.write("output_train_mod2", annotations, layers)
    assert list(tmp_path.iterdir()) == []
    layers["counts"] = lambda: good.layers["counts"]
    run.write("output_train_mod2", annotations, layers)
    assert_same_file(read(output), good)


def test_the_processor_remakes_the_organisers_starter_cite_task(tmp_path, data_dir, starter_cite_common):
    """On the organisers' starter CITE cells, GEX->ADT: the same training and test cells, genes and
    proteins, in the same order, as the organisers' own task files (their values are normalised
    otherwise: ADT CLR, see scmib.data.normalize)."""
    ours = {name: read(path) for name, path in make_task(tmp_path, starter_cite_common, "gex2adt").items()}
    theirs = {name: read(path) for name, path in organisers_files(data_dir, "cite").items()}
    for name in ("train_mod1", "train_mod2", "test_mod1", "test_mod2"):
        assert list(ours[name].obs_names) == list(theirs[name].obs_names), name
        assert list(ours[name].var_names) == list(theirs[name].var_names), name

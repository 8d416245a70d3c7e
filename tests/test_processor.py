"""The predict-modality processor: splits, subsampling, directions."""

from __future__ import annotations

import numpy as np
from conftest import make_task, read, run_cli

from scmib.contracts import check_file, load_contract
from scmib.errors import EXIT_NOT_APPLICABLE


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
    # sqrt(1/frequency) weights: the most frequent type is drawn less than its share.
    assert drawn[common] < available[common]


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

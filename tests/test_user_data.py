"""Bring your own data: ``scmib run --data`` on paired files of every shape, made from real cells.

Each fixture rewrites a bundled dataset (Triana's bone-marrow Abseq, the
NeurIPS CITE starter cells, SNARE-seq2's mouse cortex) in a shape a user might
have: one ``.h5mu``, one ``.h5ad`` with the second modality in ``obsm``, one
batch, Ensembl ids with a symbol column, missing cell types. The generic loader
and the runner are run through their command lines, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, read, run_cli

from scmib.data.user_options import DataOptions, data_options
from scmib.errors import ScmibError
from scmib.report.export import quality_control

LOADER = "datasets/loaders/local_file"


def scmib(*args: str, cwd: Path = REPO, check: bool = True) -> subprocess.CompletedProcess:
    # One seed: these tests are about reading a user's data, not seed spread (tests/test_uncertainty.py).
    extra = ["--no-progress", "--seeds", "1"] if args[0] == "run" else []
    cmd = [sys.executable, "-m", "scmib.cli", *args, *extra]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=os.environ.copy())
    if check:
        assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def results(outdir: Path) -> pd.DataFrame:
    return pd.read_csv(outdir / "results" / "results.tsv", sep="\t")


def user_modality(common: ad.AnnData, obs: pd.DataFrame | None = None) -> ad.AnnData:
    """A modality as a user would have it: raw counts in ``X`` and their own obs column names."""
    return ad.AnnData(
        X=common.layers["counts"].copy(),
        obs=obs if obs is not None else common.obs[[]].copy(),
        var=common.var[[]].copy(),
    )


def user_obs(common: ad.AnnData) -> pd.DataFrame:
    return common.obs[["batch", "cell_type"]].rename(columns={"batch": "sample", "cell_type": "celltype"})


@pytest.fixture(scope="module")
def triana_h5mu(tmp_path_factory, triana_common) -> Path:
    rna, adt = read(triana_common[0]), read(triana_common[1])
    path = tmp_path_factory.mktemp("byod") / "triana.h5mu"
    mudata.MuData({"rna": user_modality(rna, user_obs(rna)), "prot": user_modality(adt)}).write(path)
    return path


def test_h5mu_scores_equal_the_bundled_loader(triana_h5mu, data_dir, tmp_path):
    """The README's proof: Triana written as .h5mu gives through --data the scores of its own loader."""
    common = ["run", "--task", "predict_modality", "--methods", "knn_regression", "--metrics", "error"]
    scmib(
        *common,
        "--datasets",
        "triana2021_bm_abseq",
        "--data_mirror",
        str(data_dir),
        "--outdir",
        str(tmp_path / "a"),
    )
    proc = scmib(*common, "--data", str(triana_h5mu), "--outdir", str(tmp_path / "b"))
    # What was picked is said on the terminal.
    for said in (
        "picked GEX: 'rna'",
        "second modality is ADT",
        "batch: obs 'sample'",
        "cell type: obs 'celltype'",
    ):
        assert said in proc.stderr
    bundled, mine = results(tmp_path / "a"), results(tmp_path / "b")
    assert set(mine["dataset"]) == {"triana"}
    keys = ["variant", "method", "metric"]
    merged = bundled.merge(mine, on=keys, suffixes=("_bundled", "_mine"))
    assert len(merged) == len(bundled) == len(mine) > 0
    assert (merged["status_mine"] == "success").all()
    np.testing.assert_allclose(merged["value_mine"], merged["value_bundled"], rtol=1e-9, atol=1e-12)
    # The dataset appears in the run's information with its loader's filters (none removed anything).
    info = json.loads((tmp_path / "b" / "results" / "run_info.json").read_text())
    dataset = info["datasets"]["triana"]
    assert dataset["modalities"] == ["GEX", "ADT"] and dataset["loader"] == LOADER
    assert dataset["filters"] and all(f["removed"] == 0 for f in dataset["filters"])
    report = (tmp_path / "b" / "results" / "report.html").read_text()
    assert "your data: triana.h5mu (GEX 'rna' + ADT 'prot')" in report


@pytest.fixture(scope="module")
def one_batch_obsm(tmp_path_factory, starter_cite_common) -> Path:
    """The CITE starter cells of their largest batch as one .h5ad, proteins in obsm (DataFrame)."""
    rna, adt = read(starter_cite_common[0]), read(starter_cite_common[1])
    largest = rna.obs["batch"].value_counts().index[0]
    cells = (rna.obs["batch"] == largest).to_numpy()
    obs = rna.obs.loc[cells, ["cell_type"]].copy()
    adata = ad.AnnData(X=rna.layers["counts"][cells], obs=obs, var=rna.var[[]].copy())
    adata.obsm["protein_expression"] = pd.DataFrame(
        adt.layers["counts"][cells].toarray(), index=obs.index, columns=adt.var_names
    )
    path = tmp_path_factory.mktemp("byod") / "one_batch.h5ad"
    adata.write_h5ad(path)
    return path


def test_one_batch_gets_a_random_split_and_batch_metrics_do_not_apply(one_batch_obsm, tmp_path):
    proc = scmib(
        "run",
        "--data",
        str(one_batch_obsm),
        "--task",
        "predict_modality,joint_embedding",
        "--methods",
        "knn_regression,pca_concat,harmony_concat,mnn_concat",
        "--metrics",
        "error,asw,lisi,graph_conn,clustering,cc_cons,ti_cons",  # every part of the mean of six
        "--outdir",
        str(tmp_path),
    )
    assert "picked second modality: 'obsm:protein_expression'" in proc.stderr
    assert "no column among" in proc.stderr and "all cells are one batch" in proc.stderr
    table = results(tmp_path)
    predict = table[table["task"] == "predict_modality"]
    assert set(predict["status"]) == {"success"} and predict["value"].notna().all()
    split_log = tmp_path / "predict_modality" / "one_batch" / "gex2adt" / "data" / ".job.log"
    assert "one batch, so a seeded random" in split_log.read_text()
    embed = table[(table["task"] == "joint_embedding") & (table["method"] == "pca_concat")].set_index(
        "metric"
    )
    assert embed.loc["asw_batch", "metric_status"] == "not_applicable" and np.isnan(
        embed.loc["asw_batch", "value"]
    )
    assert embed.loc["asw_label", "metric_status"] == "success"
    assert embed.loc["ilisi", "metric_status"] == "not_applicable" and embed.loc["clisi", "value"] > 0
    # Every embedding gets the same metrics, the one scored as the worst value included.
    joint = table[table["task"] == "joint_embedding"]
    batch_metrics = joint[joint["metric"].isin(["asw_batch", "ilisi", "ilisi_site"])]
    assert set(batch_metrics["metric_status"]) == {"not_applicable"}
    # Batch correction of one batch runs (Harmony and MNN have nothing to correct).
    corrected = joint[joint["method"].isin(["harmony_concat", "mnn_concat"])]
    assert set(corrected["status"]) == {"success"}
    # The mean of six is over the metrics that apply, not NaN.
    assert np.isfinite(embed.loc["mean_of_six", "value"])
    assert "asw_batch" not in embed.loc["mean_of_six", "log"]


@pytest.fixture(scope="module")
def snare_small(tmp_path_factory, snare_common) -> tuple[Path, ad.AnnData, ad.AnnData]:
    """554 SNARE-seq2 nuclei as one .h5ad: RNA counts in X, ATAC counts in obsm (peak names in uns)."""
    rna, atac = read(snare_common[0]), read(snare_common[1])
    cells = np.sort(np.random.default_rng(0).choice(rna.n_obs, 554, replace=False))
    rna, atac = rna[cells].copy(), atac[cells].copy()
    user = user_modality(rna, user_obs(rna))
    user.obsm["atac"] = atac.layers["counts"]
    user.uns["atac_names"] = atac.var_names.to_numpy()
    path = tmp_path_factory.mktemp("byod") / "snare_small.h5ad"
    user.write_h5ad(path)
    return path, rna, atac


def test_atac_filters_scale_with_size_and_are_recorded(snare_small, tmp_path):
    path, _, atac = snare_small
    out = {"output_rna": tmp_path / "rna.h5ad", "output_mod2": tmp_path / "mod2.h5ad"}
    proc = run_cli(LOADER, input=path, dataset_id="snare_small", **out)
    assert "picked second modality: 'obsm:atac'" in proc.stderr
    assert "second modality is ATAC (its name 'obsm:atac')" in proc.stderr
    # 554 cells: peaks need 2 cells (15 at 5,000 cells or more), not the organisers' fixed 15.
    open_in = np.asarray((atac.layers["counts"] > 0).sum(axis=0)).ravel()
    expected_closed = int((open_in < 2).sum())
    assert (
        f"removed {expected_closed:,} of {atac.n_vars:,} ATAC peaks (open in fewer than 2 cells)"
        in proc.stderr
    )
    common_rna, common_atac = read(out["output_rna"]), read(out["output_mod2"])
    assert common_atac.n_vars == atac.n_vars - expected_closed
    assert set(common_atac.var_names) <= set(atac.var_names)  # the peak names came from uns
    filters = pd.DataFrame(dict(common_rna.uns["filters"]))
    peaks = filters[filters["what"] == "ATAC peaks"].iloc[0]
    assert (peaks["before"], peaks["removed"]) == (atac.n_vars, expected_closed)
    # Cells with no ATAC counts in the peaks kept are removed and counted, never kept empty.
    empty = filters[filters["why"] == "no ATAC counts"].iloc[0]
    assert common_rna.n_obs == 554 - empty["removed"]
    assert np.asarray(common_atac.layers["counts"].sum(axis=1)).min() > 0
    # mouse, from capitalised gene symbols
    assert common_rna.uns["organism"] == "mouse"


def test_missing_cell_types_are_dropped_and_counted(starter_cite_common, tmp_path):
    rna, adt = read(starter_cite_common[0]), read(starter_cite_common[1])
    obs = user_obs(rna)
    unlabelled = np.random.default_rng(1).choice(rna.n_obs, 37, replace=False)
    obs["celltype"] = obs["celltype"].astype(object)
    obs.iloc[unlabelled, obs.columns.get_loc("celltype")] = np.nan
    # A pair of files; the protein file holds CLR values in X and the counts in a layer.
    user_modality(rna, obs).write_h5ad(tmp_path / "gex.h5ad")
    proteins = ad.AnnData(X=adt.layers["normalized"], obs=adt.obs[[]].copy(), var=adt.var[[]].copy())
    proteins.layers["counts"] = adt.layers["counts"]
    proteins.write_h5ad(tmp_path / "adt.h5ad")
    out = {"output_rna": tmp_path / "rna.h5ad", "output_mod2": tmp_path / "mod2.h5ad"}
    proc = run_cli(
        LOADER, input=tmp_path / "gex.h5ad", input_mod2=tmp_path / "adt.h5ad", dataset_id="nan_types", **out
    )
    assert "ADT counts: layers['counts']" in proc.stderr
    assert f"removed 37 of {rna.n_obs} cells (no cell type in obs 'celltype')" in proc.stderr
    common = read(out["output_rna"])
    assert common.n_obs == rna.n_obs - 37
    assert "nan" not in set(common.obs["cell_type"].astype(str))


@pytest.fixture(scope="module")
def triana_ids(tmp_path_factory, triana_common) -> Path:
    """Triana's RNA indexed by (made-up) Ensembl-style ids, its symbols in var['gene_name']."""
    rna, adt = read(triana_common[0]), read(triana_common[1])
    user_rna = user_modality(rna, user_obs(rna))
    user_rna.var["gene_name"] = rna.var_names.to_numpy()
    user_rna.var_names = [f"ENSG{i:011d}" for i in range(rna.n_vars)]
    path = tmp_path_factory.mktemp("byod") / "triana_ids.h5mu"
    mudata.MuData({"rna": user_rna, "prot": user_modality(adt)}).write(path)
    return path


def test_cell_cycle_genes_are_matched_through_a_symbol_column(triana_ids, triana_common, tmp_path):
    out = {"output_rna": tmp_path / "rna.h5ad", "output_mod2": tmp_path / "mod2.h5ad"}
    proc = run_cli(LOADER, input=triana_ids, dataset_id="triana_ids", **out)
    assert "gene symbols: var 'gene_name'" in proc.stderr
    assert "organism: human (Ensembl ids ENSG...)" in proc.stderr
    files = {name: tmp_path / f"{name}.h5ad" for name in ("mod1", "mod2", "solution")}
    run_cli(
        "joint_embedding/processors/embedding_task",
        input_rna=out["output_rna"],
        input_mod2=out["output_mod2"],
        pair="gex_adt",
        **{f"output_{k}": v for k, v in files.items()},
    )
    solution = read(files["solution"])
    assert {"S_score", "G2M_score"} <= set(solution.obs)
    # The same scores as from the bundled loader's symbol-indexed genes.
    bundled = {name: tmp_path / f"bundled_{name}.h5ad" for name in files}
    run_cli(
        "joint_embedding/processors/embedding_task",
        input_rna=triana_common[0],
        input_mod2=triana_common[1],
        pair="gex_adt",
        **{f"output_{k}": v for k, v in bundled.items()},
    )
    reference = read(bundled["solution"])
    np.testing.assert_allclose(solution.obs["S_score"], reference.obs["S_score"], atol=1e-9)


def test_a_users_lineage_and_pseudotime_are_checked(triana_h5mu, triana_common, tmp_path):
    lineage = [
        "HSCs & MPPs",
        "Erythro-myeloid progenitors",
        "Early erythroid progenitor",
        "Late erythroid progenitor",
    ]
    mdata = mudata.read_h5mu(triana_h5mu)
    stage = pd.Categorical(mdata.mod["rna"].obs["celltype"], categories=lineage).codes.astype(float)
    noise = np.random.default_rng(0).normal(0, 0.3, len(stage))
    mdata.mod["rna"].obs["dpt"] = np.where(stage >= 0, stage + noise, np.nan)
    mdata.mod["rna"].obs["dpt_reversed"] = -mdata.mod["rna"].obs["dpt"]
    path = tmp_path / "with_pseudotime.h5mu"
    mdata.write(path)
    out = {"output_rna": tmp_path / "rna.h5ad", "output_mod2": tmp_path / "mod2.h5ad"}
    base = {"input": path, "dataset_id": "pt", "lineage": json.dumps(lineage), **out}
    proc = run_cli(LOADER, pseudotime_key="dpt", **base)
    assert "orders the lineage (Spearman rho" in proc.stderr
    common = read(out["output_rna"])
    assert list(common.uns["lineage"]) == lineage
    assert common.obs["pseudotime_order_GEX"].between(0, 1).sum() == (stage >= 0).sum()
    bad = run_cli(LOADER, check=False, pseudotime_key="dpt_reversed", **base)
    assert bad.returncode == 2 and "does not order the lineage" in bad.stderr
    assert not out["output_rna"].with_suffix(".h5ad.partial").exists()
    unknown = run_cli(LOADER, check=False, **{**base, "lineage": json.dumps(["HSCs & MPPs", "Neuron"])})
    assert unknown.returncode == 2 and "not found: ['Neuron']" in unknown.stderr


def test_bad_counts_are_a_clear_error(starter_cite_common, tmp_path):
    rna, adt = read(starter_cite_common[0]), read(starter_cite_common[1])
    normalised = ad.AnnData(X=rna.layers["normalized"], obs=user_obs(rna), var=rna.var[[]].copy())
    path = tmp_path / "normalised.h5mu"
    mudata.MuData({"rna": normalised, "prot": user_modality(adt)}).write(path)
    out = {"output_rna": tmp_path / "rna.h5ad", "output_mod2": tmp_path / "mod2.h5ad"}
    proc = run_cli(LOADER, check=False, input=path, dataset_id="normalised", **out)
    assert proc.returncode == 2
    assert (
        str(path) in proc.stderr
        and "no raw counts found (X holds no whole-number counts, fractional" in proc.stderr
    )
    assert "counts_layer" in proc.stderr
    assert not out["output_rna"].exists() and not out["output_mod2"].exists()
    # A split column with missing values names the column.
    obs = user_obs(rna)
    obs["split"] = pd.array(np.where(np.arange(rna.n_obs) % 4 == 0, "test", "train"), dtype="string")
    obs.iloc[:3, obs.columns.get_loc("split")] = pd.NA
    split_path = tmp_path / "split.h5mu"
    mudata.MuData({"rna": user_modality(rna, obs), "prot": user_modality(adt)}).write(split_path)
    proc = run_cli(LOADER, check=False, input=split_path, dataset_id="split", **out)
    assert proc.returncode == 2 and "split column 'split' has no value for 3 cells" in proc.stderr


def test_data_options_from_a_yaml(tmp_path, one_batch_obsm, triana_h5mu):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.h5ad").symlink_to(one_batch_obsm)
    spec = {
        "datasets": [{"path": "data/a.h5ad", "organism": "human"}, {"path": str(triana_h5mu), "id": "t2"}]
    }
    (tmp_path / "datasets.yaml").write_text(yaml.safe_dump(spec))
    first, second = data_options([str(tmp_path / "datasets.yaml")])
    assert first.dataset_id == "a" and first.path == str(tmp_path / "data" / "a.h5ad")
    assert second.dataset_id == "t2" and second.loader_args()["input"] == str(triana_h5mu)
    with pytest.raises(ScmibError, match="go into"):
        data_options([str(tmp_path / "datasets.yaml")], {"batch_key": "donor"})
    spec["datasets"][1]["id"] = "a"
    (tmp_path / "datasets.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ScmibError, match="appear twice"):
        data_options([str(tmp_path / "datasets.yaml")])
    with pytest.raises(ScmibError, match="does not exist"):
        data_options([str(tmp_path / "missing.h5mu")])
    assert DataOptions(path="My Data-2.h5mu").dataset_id == "my_data_2"


def test_quality_control_flags_scores_outside_the_controls():
    def row(method, kind, value, scaled):
        return {
            "task": "t",
            "dataset": "d",
            "variant": "v",
            "method": method,
            "method_kind": kind,
            "metric": "m",
            "value": value,
            "scaled": scaled,
            "maximize": True,
            "status": "success",
            "metric_status": "success",
        }

    table = pd.DataFrame(
        [
            row("solution", "control_method", 0.8, 0.5),
            row("random", "control_method", 0.2, 0.0),
            row("better", "control_method", 1.4, 1.0),
            row("worse_than_random", "method", 0.1, -1 / 6),
            row("fine", "method", 0.5, 0.25),
            row("beyond", "method", 1.6, 1 + 1 / 6),
        ]
    )
    methods = {"t/solution": {"is_solution": True}}
    flags = quality_control(table, methods)
    by_category = {f["category"]: f for f in flags}
    assert by_category["below_controls"]["name"] == "t/d/v/worse_than_random/m"
    assert "solution control scores m = 0.8, better 1.4" in by_category["controls"]["message"]
    assert by_category["above_controls"]["name"] == "t/d/v/beyond/m"
    assert "fine" not in " ".join(f["name"] for f in flags)


def test_new_loader_from_the_template_runs(tmp_path, triana_h5mu):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "components", repo / "components")
    scmib("new-component", "datasets", "loader", "my_cite_data", cwd=repo)
    mirror = tmp_path / "mirror" / "my_cite_data"
    mirror.mkdir(parents=True)
    (mirror / "data.h5mu").symlink_to(triana_h5mu)
    folder = repo / "components" / "datasets" / "loaders" / "my_cite_data"
    todo = scmib("lint", cwd=repo, check=False)
    assert todo.returncode == 1 and f"{folder / 'script.py'}:8: a TODO is left in the script" in todo.stderr
    for path in (folder / "config.yaml", folder / "script.py"):  # what the contributor fills in
        path.write_text(path.read_text().replace("TODO", "Done"))
    scmib("lint", cwd=repo)
    proc = scmib(
        "run",
        "--datasets",
        "my_cite_data",
        "--task",
        "predict_modality",
        "--methods",
        "knn_regression",
        "--metrics",
        "error",
        "--data_mirror",
        str(tmp_path / "mirror"),
        "--outdir",
        str(tmp_path / "out"),
        cwd=repo,
    )
    table = results(tmp_path / "out")
    assert set(table["status"]) == {"success"} and len(table) > 0, proc.stderr[-2000:]
    assert np.isfinite(table["value"]).all()


def test_two_files_in_the_wrong_order_the_same_file_twice_and_a_wrong_obs_key_stop_before_any_job(
    triana_common, tmp_path
):
    from scmib.data.user import dataset_info

    rna, adt = read(triana_common[0]), read(triana_common[1])
    user_modality(rna, user_obs(rna)).write_h5ad(tmp_path / "rna.h5ad")
    user_modality(adt).write_h5ad(tmp_path / "adt.h5ad")
    rna_file, adt_file = str(tmp_path / "rna.h5ad"), str(tmp_path / "adt.h5ad")

    def run(*args: str) -> subprocess.CompletedProcess:
        return scmib("run", "--profile", "test", "--outdir", str(tmp_path / "out"), *args, check=False)

    swapped = run("--data", adt_file, "--data", rna_file)
    assert swapped.returncode == 2 and "the first file looks like ADT" in swapped.stderr
    assert "give the GEX file first" in swapped.stderr
    twice = run("--data", rna_file, "--data", rna_file)
    assert twice.returncode == 2 and "give one file per modality" in twice.stderr
    wrong = run("--data", rna_file, "--data", adt_file, "--cell_type_key", "cell_type_l1")
    assert wrong.returncode == 2
    assert "cell_type_key 'cell_type_l1' is not an obs column (did you mean 'celltype'?)" in wrong.stderr
    assert not (tmp_path / "out" / "datasets").exists()  # no job ran
    right = data_options([rna_file, adt_file], {"cell_type_key": "celltype", "batch_key": "sample"})
    assert dataset_info(right[0]).modalities == ["GEX", "ADT"]

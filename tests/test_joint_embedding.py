"""Joint embedding on real cells: processor, controls, methods and metrics through their command lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import read, run_cli, run_in_process, spec_of

from scmib.contracts import check_file, load_contract
from scmib.methods import embedding
from scmib.methods.embedding import most_variable_columns
from scmib.methods.features import zscore_rows
from scmib.methods.landmark_mds import landmark_mds
from scmib.methods.reduction import truncated_svd

CONTROLS = ["random_embedding", "constant_embedding", "label_embedding"]
METHODS = [
    "pca_concat",
    "guanlab_svd",
    "harmony_concat",
    "mnn_concat",
    "umap_concat",
    "lmds_concat",
    "jae_autoencoder",
    "lsl_autoencoder",
    "totalvi",
]
#: Methods of the other modality pair (MultiVI: GEX + ATAC), run on the organisers' Multiome files.
ATAC_ONLY = ["multivi"]
METRICS = {
    "clustering": ["nmi", "ari"],
    "asw": ["asw_label", "asw_batch"],
    "cc_cons": ["cc_cons"],
    "ti_cons": ["ti_cons_batch_mean", "ti_cons_batch_gex", "ti_cons_batch_mod2"],
    "graph_conn": ["graph_conn"],
    "lisi": ["ilisi", "ilisi_site", "clisi"],
}
SIX = ["nmi", "asw_label", "asw_batch", "cc_cons", "ti_cons_batch_mean", "graph_conn"]
QUICK = {
    "jae_autoencoder": {"max_epochs": 3},
    "lsl_autoencoder": {"max_epochs": 3},
    "totalvi": {"max_epochs": 3},
    "multivi": {"max_epochs": 3},
}
#: Fewer epochs than the defaults where the test still needs a trained model (2,500 cells on 2 CPU cores).
TRIANA_PARAMS = {"totalvi": {"max_epochs": 40}}


def make_embedding_task(folder: Path, common: tuple[Path, Path], pair: str, **params) -> dict[str, Path]:
    files = {n: folder / f"{n}.h5ad" for n in ("mod1", "mod2", "solution")}
    run_cli(
        "joint_embedding/processors/embedding_task",
        input_rna=common[0],
        input_mod2=common[1],
        pair=pair,
        **{f"output_{k}": v for k, v in files.items()},
        **params,
    )
    return files


def embed(component: str, task: dict[str, Path], out: Path, **params) -> Path:
    inputs = {"input_mod1": task["mod1"], "input_mod2": task["mod2"]}
    if component.startswith("control_methods/"):
        inputs["input_solution"] = task["solution"]
    run_cli(f"joint_embedding/{component}", output=out, **inputs, **params)
    check_file(read(out), load_contract("joint_embedding/prediction"), out)
    return out


def score(prediction: Path, solution: Path, folder: Path, in_process: bool = False) -> dict[str, float]:
    """Every metric component on one prediction; ``in_process`` runs their ``main`` without a new process."""
    values: dict[str, float] = {}
    # The graph metrics read the prediction's kNN graph, made once as the runner does.
    graph = folder / f"{prediction.stem}_graph.h5ad"
    graph_files = {"input_prediction": prediction, "input_solution": solution, "output": graph}
    run = run_in_process if in_process else run_cli
    run("joint_embedding/prediction_processors/knn_graph", **graph_files)
    for metric in METRICS:
        out = folder / f"{prediction.stem}_{metric}.h5ad"
        files = {"input_prediction": prediction, "input_solution": solution, "output": out}
        if "input_graph" in spec_of(f"joint_embedding/metrics/{metric}").argument_map:
            files["input_graph"] = graph
        if in_process:
            try:
                run_in_process(f"joint_embedding/metrics/{metric}", **files)
            except SystemExit as exc:
                assert exc.code == 99, (metric, exc.code)
        else:
            proc = run_cli(f"joint_embedding/metrics/{metric}", check=False, **files)
            assert proc.returncode in (0, 99), proc.stderr[-2000:]
        if out.exists():
            adata = read(out)
            values.update(zip(adata.uns["metric_ids"], map(float, adata.uns["metric_values"]), strict=True))
    values["mean_of_six"] = float(np.mean([values[m] for m in SIX if m in values]))
    return values


@pytest.fixture(scope="module")
def triana_task(tmp_path_factory, triana_common) -> dict[str, Path]:
    return make_embedding_task(tmp_path_factory.mktemp("triana_je"), triana_common, "gex_adt", n_cells=2500)


@pytest.fixture(scope="module")
def triana_scores(tmp_path_factory, triana_task) -> dict[str, dict[str, float]]:
    folder = tmp_path_factory.mktemp("triana_je_out")
    scores = {}
    for name in CONTROLS + METHODS:
        kind = "control_methods" if name in CONTROLS else "methods"
        params = TRIANA_PARAMS.get(name, {})
        prediction = embed(f"{kind}/{name}", triana_task, folder / f"{name}.h5ad", **params)
        # The command lines of the metrics are exercised on pca_concat; the rest score in-process.
        scores[name] = score(prediction, triana_task["solution"], folder, in_process=name != "pca_concat")
    return scores


def test_processor_keeps_every_cell_and_labels_only_the_solution(tmp_path, triana_common):
    task = make_embedding_task(tmp_path, triana_common, "gex_adt")
    mod1, mod2, solution = (read(task[n]) for n in ("mod1", "mod2", "solution"))
    rna = read(triana_common[0])
    for name, adata in (("mod1", mod1), ("mod2", mod2), ("solution", solution)):
        check_file(adata, load_contract(f"joint_embedding/{name}"), name)
        assert list(adata.obs_names) == list(rna.obs_names)
    assert "cell_type" not in mod1.obs and "cell_type" not in mod2.obs
    obs = solution.obs
    # Triana ships no pseudotime: the processor computed one on the erythroid lineage, per modality.
    lineage = [
        "HSCs & MPPs",
        "Erythro-myeloid progenitors",
        "Early erythroid progenitor",
        "Late erythroid progenitor",
    ]
    on_path = obs["cell_type"].isin(lineage)
    for key in ("pseudotime_order_GEX", "pseudotime_order_ADT"):
        assert obs.loc[on_path, key].notna().mean() > 0.95 and obs.loc[~on_path, key].isna().all()
        means = obs[on_path].groupby("cell_type", observed=True)[key].mean()[lineage]
        assert means.is_monotonic_increasing, means  # the trajectory runs HSC -> late erythroid
    assert obs["pseudotime_order_GEX"].corr(obs["pseudotime_order_ADT"], method="spearman") > 0.7
    # Cell-cycle scores from the Tirosh genes (42 S and 50 G2M genes are on Triana's panel).
    assert {"S_score", "G2M_score"} <= set(obs) and obs["S_score"].std() > 0
    assert sorted(solution.uns["cc_batches"]) == sorted(obs["batch"].astype(str).unique())


def test_processor_uses_the_organisers_pseudotime_and_skips_cell_cycle_without_genes(
    tmp_path, starter_cite_common
):
    task = make_embedding_task(tmp_path, starter_cite_common, "gex_adt")
    solution = read(task["solution"])
    rna = read(starter_cite_common[0])
    assert np.allclose(solution.obs["pseudotime_order_GEX"], rna.obs["pseudotime_order_GEX"], equal_nan=True)
    assert "S_score" not in solution.obs  # none of the Tirosh genes is among the starter's 1,000 genes
    proc = run_cli(
        "joint_embedding/processors/embedding_task",
        check=False,
        input_rna=starter_cite_common[0],
        input_mod2=starter_cite_common[1],
        pair="gex_atac",
        output_mod1=tmp_path / "a.h5ad",
        output_mod2=tmp_path / "b.h5ad",
        output_solution=tmp_path / "c.h5ad",
    )
    assert proc.returncode == 99 and not (tmp_path / "a.h5ad").exists()


def test_every_method_and_control_keeps_biology_above_random(triana_scores):
    random = triana_scores["random_embedding"]
    for name in [*METHODS, "label_embedding"]:
        values = triana_scores[name]
        assert set(values) >= {m for metrics in METRICS.values() for m in metrics}, name
        assert values["nmi"] > random["nmi"] + 0.2, name
        assert values["mean_of_six"] > random["mean_of_six"], name


def test_batch_correction_mixes_batches_better_than_plain_concatenation(triana_scores):
    plain = triana_scores["pca_concat"]
    for name in ("harmony_concat", "mnn_concat"):
        assert triana_scores[name]["ilisi"] > plain["ilisi"] + 0.1, name


def test_the_best_method_beats_pca_concatenation_on_the_mean(triana_scores):
    best = max(METHODS, key=lambda m: triana_scores[m]["mean_of_six"])
    assert best != "pca_concat"
    assert triana_scores[best]["mean_of_six"] > triana_scores["pca_concat"]["mean_of_six"]


def test_constant_embedding_scores_the_worst_value_explicitly(triana_scores, triana_task, tmp_path):
    values = triana_scores["constant_embedding"]
    assert all(values[m] == 0 for m in SIX), values
    prediction = embed("control_methods/constant_embedding", triana_task, tmp_path / "constant.h5ad")
    proc = run_cli(
        "joint_embedding/metrics/asw",
        input_prediction=prediction,
        input_solution=triana_task["solution"],
        output=tmp_path / "asw.h5ad",
    )
    assert "every cell at one point" in proc.stderr
    assert read(tmp_path / "asw.h5ad").uns["undefined"] == "every cell at one point"


def test_an_embedding_constant_in_float32_and_a_single_cell_type(triana_task, tmp_path):
    """Cells apart only below float32 (the kNN graph's precision) are one point to every metric:
    the worst value, as a constant embedding. A solution with one cell type has no types to
    separate: asw_label is not applicable (asw_batch, within that type, still is scored)."""
    prediction = read(embed("control_methods/constant_embedding", triana_task, tmp_path / "constant.h5ad"))
    prediction.X = 1.0 + 1e-12 * np.random.default_rng(0).normal(size=prediction.X.shape)
    prediction.write_h5ad(tmp_path / "nearly.h5ad")
    files = {"input_prediction": tmp_path / "nearly.h5ad", "input_solution": triana_task["solution"]}
    proc = run_cli("joint_embedding/metrics/asw", **files, output=tmp_path / "asw.h5ad")
    assert "every cell at one point" in proc.stderr
    assert list(read(tmp_path / "asw.h5ad").uns["metric_values"]) == [0.0, 0.0]
    solution = read(triana_task["solution"])
    solution.obs["cell_type"] = "HSC"
    solution.write_h5ad(tmp_path / "one_type.h5ad")
    random = embed("control_methods/random_embedding", triana_task, tmp_path / "random.h5ad")
    run_cli("joint_embedding/metrics/asw", input_prediction=random, input_solution=tmp_path / "one_type.h5ad",
            output=tmp_path / "asw_one_type.h5ad")  # fmt: skip
    score = read(tmp_path / "asw_one_type.h5ad")
    assert "one cell type" in score.uns["not_applicable"]["asw_label"]
    values = dict(zip(score.uns["metric_ids"], score.uns["metric_values"], strict=True))
    assert np.isnan(values["asw_label"]) and 0 < values["asw_batch"] <= 1


def test_a_solution_without_trajectory_or_cell_cycle_variance_is_not_applicable(triana_task, tmp_path):
    """Pseudotime columns that are all NaN, and S/G2M scores that explain no variance in any batch,
    leave ti_cons and cc_cons undefined: each exits 99 saying why, and writes nothing."""
    solution = read(triana_task["solution"])
    solution.obs["pseudotime_order_GEX"] = np.nan
    solution.obs[["S_score", "G2M_score"]] = 0.0
    for key in ("cc_batches", "cc_variance_before"):  # so cc_cons computes the "before" itself
        solution.uns.pop(key, None)
    solution_path = tmp_path / "solution.h5ad"
    solution.write_h5ad(solution_path)
    prediction = embed("control_methods/random_embedding", triana_task, tmp_path / "random.h5ad")
    graph = tmp_path / "graph.h5ad"
    files = {"input_prediction": prediction, "input_solution": solution_path}
    run_cli("joint_embedding/prediction_processors/knn_graph", **files, output=graph)
    expected = {"ti_cons": "pseudotime_order_GEX is all NaN", "cc_cons": "no batch has cell-cycle variance"}
    for metric, reason in expected.items():
        extra = {"input_graph": graph} if metric == "ti_cons" else {}
        out = tmp_path / f"{metric}.h5ad"
        proc = run_cli(f"joint_embedding/metrics/{metric}", check=False, **files, **extra, output=out)
        assert proc.returncode == 99 and reason in proc.stderr, (metric, proc.stderr[-1000:])
        assert not out.exists()


def test_most_variable_columns_are_the_organisers_choice(triana_task, monkeypatch):
    """The top columns by standard deviation (R's ``colSds``, n - 1) in decreasing order, ties in
    column order, the same from a sparse matrix as from its dense copy."""
    values = read(triana_task["mod1"]).layers["normalized"]
    dense = np.asarray(values.toarray(), dtype=np.float64)
    order = sorted(range(dense.shape[1]), key=lambda j: (-round(float(dense[:, j].std(ddof=1)), 12), j))
    np.testing.assert_array_equal(most_variable_columns(sp.csr_matrix(values), 100), dense[:, order[:100]])
    np.testing.assert_array_equal(most_variable_columns(dense, 100), dense[:, order[:100]])
    monkeypatch.setattr(embedding, "_CHUNK", 1000)  # the sums over stored values, chunk by chunk
    np.testing.assert_array_equal(most_variable_columns(sp.csr_matrix(values), 100), dense[:, order[:100]])
    tied = np.column_stack([np.zeros(5), np.arange(5.0), np.zeros(5), np.arange(5.0)])
    np.testing.assert_array_equal(most_variable_columns(sp.csr_matrix(tied), 1), tied[:, [1]])
    assert most_variable_columns(dense[:, :7], 100).shape == (dense.shape[0], 7)
    # Repeated entries of one cell and column are one value (their sum), as scipy reads them.
    repeated = sp.csr_matrix((np.ones(4), [0, 0, 1, 2], [0, 3, 4]), shape=(2, 3))
    assert not repeated.has_canonical_format
    np.testing.assert_array_equal(most_variable_columns(repeated, 1), [[2.0], [0.0]])


def test_umap_concat_is_seeded_and_uses_its_dimensions(triana_task, tmp_path):
    first = read(embed("methods/umap_concat", triana_task, tmp_path / "a.h5ad", seed=1, n_dims=5)).X
    again = read(embed("methods/umap_concat", triana_task, tmp_path / "b.h5ad", seed=1, n_dims=5)).X
    other = read(embed("methods/umap_concat", triana_task, tmp_path / "c.h5ad", seed=2, n_dims=5)).X
    assert first.shape == (read(triana_task["mod1"]).n_obs, 5)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_lmds_concat_embeds_both_modalities_with_its_arguments(triana_task, tmp_path):
    params = {"distance": "pearson", "n_dims": 4, "n_landmarks": 100, "seed": 3}
    out = read(embed("methods/lmds_concat", triana_task, tmp_path / "lmds.h5ad", **params)).X
    both = sp.hstack([read(triana_task[m]).layers["normalized"] for m in ("mod1", "mod2")], format="csr")
    np.testing.assert_allclose(out, landmark_mds(both, 4, 100, "pearson", seed=3), atol=1e-12)


@pytest.mark.parametrize(("modality", "sizes"), [("cite", (73, 27)), ("multiome", (38, 62))])
def test_guanlab_svd_computes_what_its_code_computes(data_dir, tmp_path, modality, sizes):
    """Guanlab's code: an uncentred truncated SVD of each modality's values (the organisers'
    normalised ones: ATAC's binary values too, first component kept), each cell z-scored within
    its modality, the two side by side."""
    folder = data_dir / "neurips2021_starter" / modality / "joint_embedding"
    task = {n: folder / f"{n}.h5ad" for n in ("mod1", "mod2", "solution")}
    values = [read(task[name]).X for name in ("mod1", "mod2")]
    blocks = [truncated_svd(x, k, 0) for x, k in zip(values, sizes, strict=True)]
    out = read(embed("methods/guanlab_svd", task, tmp_path / "guanlab.h5ad")).X
    # Within float32 rounding of the randomized SVD (the component reads the values as stored).
    np.testing.assert_allclose(out, np.hstack([zscore_rows(b) for b in blocks]), atol=2e-3)
    # Not the z-score of the two side by side: each modality keeps its own scale.
    assert np.abs(out - zscore_rows(np.hstack(blocks))).max() > 0.1


def test_positive_control_separates_cell_types(triana_scores):
    label = triana_scores["label_embedding"]
    assert label["nmi"] > 0.9 and label["graph_conn"] > 0.95
    assert label["nmi"] > max(triana_scores[m]["nmi"] for m in METHODS)


def test_positive_control_keeps_the_cell_cycle_variance(triana_scores):
    """Its S/G2M block is scaled per batch by cc_cons itself (an analytic scale gave 0.75, below
    three methods, because cycling cell types carry cell-cycle variance of their own)."""
    label = triana_scores["label_embedding"]
    assert label["cc_cons"] > 0.95
    assert label["cc_cons"] > max(triana_scores[m]["cc_cons"] for m in METHODS)


@pytest.mark.parametrize("modality", ["cite", "multiome"])
def test_methods_run_unchanged_on_the_organisers_files(data_dir, tmp_path, modality):
    folder = data_dir / "neurips2021_starter" / modality / "joint_embedding"
    task = {n: folder / f"{n}.h5ad" for n in ("mod1", "mod2", "solution")}
    variant = "gex_adt" if modality == "cite" else "gex_atac"
    for name in CONTROLS + METHODS + ATAC_ONLY:
        kind = "control_methods" if name in CONTROLS else "methods"
        if not spec_of(f"joint_embedding/{kind}/{name}").applies_to(variant):
            continue
        out = embed(f"{kind}/{name}", task, tmp_path / f"{name}.h5ad", **QUICK.get(name, {}))
        assert list(read(out).obs_names) == list(read(task["mod1"]).obs_names)


def test_multivi_logs_what_its_feature_filter_removed_and_each_epoch(data_dir, tmp_path):
    """``min_cell_fraction`` (scvi-tools' tutorial uses 0.01) leaves out rare peaks and genes: the job's
    log gives the count, which must be the file's own count of peaks open in too few cells; then one
    line per training epoch."""
    folder = data_dir / "neurips2021_starter" / "multiome" / "joint_embedding"
    task = {n: folder / f"{n}.h5ad" for n in ("mod1", "mod2", "solution")}
    inputs = {"input_mod1": task["mod1"], "input_mod2": task["mod2"], "output": tmp_path / "multivi.h5ad"}
    proc = run_cli("joint_embedding/methods/multivi", **inputs, max_epochs=2, min_cell_fraction=0.05)
    atac = read(task["mod2"])
    counts = atac.layers.get("counts", atac.X)
    cells_per_peak = np.asarray((counts > 0).sum(axis=0)).ravel()
    min_cells = int(atac.n_obs * 0.05)
    rare = int((cells_per_peak < min_cells).sum())
    assert 0 < rare < atac.n_vars
    assert f"removed {rare:,} of {atac.n_vars:,} ATAC peaks (in fewer than {min_cells:,} cells" in proc.stderr
    assert read(inputs["output"]).n_obs == atac.n_obs
    # One line per epoch with both losses (scvi-tools' progress bar, one line of carriage returns, is off),
    # which benchmarks/competition_scale.py reads for the seconds per epoch.
    epochs = [line for line in proc.stderr.splitlines() if line.startswith("MultiVI epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["MultiVI epoch 1/2", "MultiVI epoch 2/2"], proc.stderr
    assert all("train_loss" in line and "validation_loss" in line for line in epochs)
    assert "\r" not in proc.stderr


def test_bad_predictions_get_a_clear_error(triana_task, tmp_path):
    solution = read(triana_task["solution"])
    cases = {
        "too_many_dimensions": ad.AnnData(X=np.zeros((solution.n_obs, 101)), obs=solution.obs[[]]),
        "wrong_cells": ad.AnnData(X=np.ones((10, 5)), obs=solution.obs[[]].iloc[:10]),
        "nan": ad.AnnData(X=np.full((solution.n_obs, 5), np.nan), obs=solution.obs[[]]),
    }
    expected = {"too_many_dimensions": "at most 100 columns", "wrong_cells": "cells", "nan": "NaN"}
    for name, prediction in cases.items():
        prediction.uns.update(dataset_id="x", method_id="bad")
        path = tmp_path / f"{name}.h5ad"
        prediction.write_h5ad(path)
        proc = run_cli(
            "joint_embedding/prediction_processors/knn_graph",
            check=False,
            input_prediction=path,
            input_solution=triana_task["solution"],
            output=tmp_path / f"{name}_score.h5ad",
        )
        assert proc.returncode == 2, (name, proc.stderr[-500:])
        assert expected[name] in proc.stderr and str(path) in proc.stderr
        assert not (tmp_path / f"{name}_score.h5ad").exists()


def test_the_run_reports_the_mean_of_six_next_to_its_parts_and_scores_what_the_competition_did(
    data_dir, tmp_path
):
    """``mean_of_six`` is the plain mean of the parts that apply (none if a part was not run); the
    scaled score counts the scored metrics only: not that summary, not the trajectory's two halves
    beside their mean, not LISI (the competition did not score it)."""
    outdir = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "scmib.cli", "run", "--task", "joint_embedding", "--profile", "test",
        "--datasets", "neurips2021_starter_cite", "--methods", "pca_concat",
        "--metrics", "asw,graph_conn,cc_cons,ti_cons,lisi", "--outdir", str(outdir),
        "--data_mirror", str(data_dir), "--jobs", "2", "--no-progress",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(outdir / "results" / "results.tsv", sep="\t")
    pca = table[table["method"] == "pca_concat"].set_index("metric")
    # nmi (the clustering metric) was not selected: no mean of six passes for the competition's score.
    assert np.isnan(pca.loc["mean_of_six", "value"]) and pca.loc["mean_of_six", "log"] == "not run: nmi"
    cmd[cmd.index("--metrics") + 1] += ",clustering"
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(outdir / "results" / "results.tsv", sep="\t")
    pca = table[table["method"] == "pca_concat"].set_index("metric")
    # cc_cons does not apply to the starter cells (no cell-cycle genes): the mean is over the other five.
    assert pca.loc["cc_cons", "metric_status"] == "not_applicable"
    parts = pca.loc[["nmi", "asw_label", "asw_batch", "graph_conn", "ti_cons_batch_mean"], "value"]
    assert pca.loc["mean_of_six", "value"] == pytest.approx(parts.mean())
    constant = table[(table["method"] == "constant_embedding") & (table["metric"] == "mean_of_six")]
    assert constant["value"].iloc[0] == 0
    halves = {"ti_cons_batch_gex", "ti_cons_batch_mod2"}
    unscored = {"mean_of_six", *halves, "ilisi", "ilisi_site", "clisi", "ari"}
    assert set(pca.index[~pca["scored"]]) == unscored
    counted = pca[pca["scored"] & pca["scaled"].notna()]
    assert set(counted.index) == {"nmi", "asw_label", "asw_batch", "graph_conn", "ti_cons_batch_mean"}
    scores = pd.read_csv(outdir / "results" / "scores.tsv", sep="\t").set_index("method")
    assert scores.loc["pca_concat", "mean_score"] == pytest.approx(counted["scaled"].clip(0, 1).mean())


def test_multivi_trains_with_scvi_tools_optimiser_fused(data_dir):
    """use_fused_adam keeps scvi-tools' optimiser (AdamW, its learning rate, eps and weight decay) and
    its update: one step from the same gradients moves MultiVI's weights as scvi-tools' own does."""
    import scvi
    import torch
    from mudata import MuData

    from scmib.methods.scvi_models import use_fused_adam

    folder = data_dir / "neurips2021_starter" / "multiome" / "joint_embedding"
    gex, atac = (read(folder / f"{name}.h5ad")[::3] for name in ("mod1", "mod2"))  # both batches
    modalities = {
        name: ad.AnnData(
            X=sp.csr_matrix(adata.layers["counts"][:, :300], dtype=np.float32), obs=gex.obs[["batch"]]
        )
        for name, adata in (("rna", gex), ("atac", atac))
    }
    data = MuData(modalities)
    scvi.model.MULTIVI.setup_mudata(
        data, batch_key="batch", modalities={"rna_layer": "rna", "atac_layer": "atac", "batch_key": "rna"}
    )
    # What MULTIVI.train passes its (adversarial) training plan.
    plan_kwargs = {
        "lr": 1e-4,
        "weight_decay": 1e-3,
        "eps": 1e-8,
        "optimizer": "AdamW",
        "adversarial_classifier": True,
    }
    steps = {}
    for fused in (False, True):
        torch.manual_seed(0)
        model = scvi.model.MULTIVI(data, n_genes=300, n_regions=300)
        if fused:
            use_fused_adam(model)
        optimiser = model._training_plan_cls(model.module, **plan_kwargs).configure_optimizers()[0]
        assert type(optimiser) is torch.optim.AdamW and optimiser.defaults["fused"] is (fused or None)
        assert {k: optimiser.defaults[k] for k in ("lr", "eps", "weight_decay")} == {
            "lr": 1e-4,
            "eps": 1e-8,
            "weight_decay": 1e-3,
        }
        for parameter in model.module.parameters():
            parameter.grad = torch.ones_like(parameter)
        optimiser.step()
        steps[fused] = torch.cat([p.detach().ravel() for p in model.module.parameters()])
    torch.testing.assert_close(steps[True], steps[False], rtol=0, atol=1e-7)

"""Match modalities on real cells: processor, controls, methods and metrics through their command lines."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import read, run_cli
from sklearn.metrics import roc_auc_score

from scmib.contracts import check_file, load_contract
from scmib.metrics.matching import pair_auc

FILES = ("train_mod1", "train_mod2", "train_sol", "test_mod1", "test_mod2", "test_sol")
CONTROLS = ["random_weights", "constant_weights", "solution", "semi_solution"]
METHODS = ["procrustes_knn", "linear_knn", "clip_contrastive", "clue_cross_vae"]
METRICS = {
    "match_probability": ["match_probability"],
    "format_check": ["format_ok"],
    "pair_auc": ["aupr", "auroc"],
    "cell_type_share": ["cell_type_share"],
}
#: Small settings for the torch methods where a test only needs them to run.
QUICK = {
    "clip_contrastive": {"max_epochs": 2},  # 9 models on the starter CITE cells (random groups)
    "clue_cross_vae": {"max_epochs": 3, "finetune_epochs": 1},
}


def make_match_task(folder: Path, common: tuple[Path, Path], direction: str, **params) -> dict[str, Path]:
    files = {name: folder / f"{name}.h5ad" for name in FILES}
    run_cli(
        "match_modalities/processors/shuffle_pairs",
        input_rna=common[0],
        input_mod2=common[1],
        direction=direction,
        **{f"output_{k}": v for k, v in files.items()},
        **params,
    )
    return files


def organisers_match_files(data_dir: Path, modality: str) -> dict[str, Path]:
    folder = data_dir / "neurips2021_starter" / modality / "match_modality"
    return {p.stem: p for p in folder.glob("*.h5ad")}


def match(component: str, task: dict[str, Path], out: Path, **params) -> Path:
    inputs = {f"input_{n}": task[n] for n in FILES[:5]}
    if component.startswith("control_methods/"):
        inputs["input_test_sol"] = task["test_sol"]
    run_cli(f"match_modalities/{component}", output=out, **inputs, **params)
    check_file(read(out), load_contract("match_modalities/prediction"), out)
    return out


def score(prediction: Path, solution: Path, out: Path, metric: str, check: bool = True):
    proc = run_cli(
        f"match_modalities/metrics/{metric}",
        check=check,
        input_prediction=prediction,
        input_test_sol=solution,
        output=out,
    )
    if proc.returncode != 0:
        return proc
    adata = read(out)
    return dict(zip(adata.uns["metric_ids"], map(float, adata.uns["metric_values"]), strict=True))


def all_scores(prediction: Path, solution: Path, folder: Path) -> dict[str, float]:
    values = {}
    for metric in METRICS:
        values.update(score(prediction, solution, folder / f"{prediction.stem}_{metric}.h5ad", metric))
    return values


@pytest.fixture(scope="module")
def triana_match(tmp_path_factory, triana_common) -> dict[str, Path]:
    return make_match_task(tmp_path_factory.mktemp("triana_match"), triana_common, "gex2adt")


@pytest.fixture(scope="module")
def triana_scores(tmp_path_factory, triana_match) -> dict[str, dict[str, float]]:
    folder = tmp_path_factory.mktemp("triana_match_out")
    scores = {}
    for name in CONTROLS + METHODS:
        kind = "control_methods" if name in CONTROLS else "methods"
        # Novel's 4 models (one per training batch) cut to 30 epochs, CLUE to 5 and 1 of fine-tuning
        # (scglue's rule allows 805); everything else at defaults.
        params = {
            "clip_contrastive": {"max_epochs": 30},
            "clue_cross_vae": {"max_epochs": 5, "finetune_epochs": 1},
        }
        params = params.get(name, {})
        prediction = match(f"{kind}/{name}", triana_match, folder / f"{name}.h5ad", **params)
        scores[name] = all_scores(prediction, triana_match["test_sol"], folder)
    return scores


def test_processor_shuffles_mod2_and_records_the_pairing(triana_match, triana_common):
    rna, mod2 = read(triana_common[0]), read(triana_common[1])
    for split in ("train", "test"):
        mod1, shuffled, sol = (read(triana_match[f"{split}_{n}"]) for n in ("mod1", "mod2", "sol"))
        for name, adata in (("mod1", mod1), ("mod2", shuffled), ("sol", sol)):
            check_file(adata, load_contract(f"match_modalities/{split}_{name}"), name)
        pairing = np.asarray(sol.uns["pairing_ix"])
        assert sorted(pairing) == list(range(mod1.n_obs)) and not np.array_equal(
            pairing, np.arange(mod1.n_obs)
        )
        assert (sol.X[:, np.argsort(pairing)] != sp.eye(mod1.n_obs)).nnz == 0
        assert list(shuffled.obs_names[:2]) == ["cell_1", "cell_2"]
        # Undoing the shuffle gives back each mod1 cell's own protein counts, batch included.
        source = mod2[mod1.obs_names]
        unshuffled = shuffled[np.argsort(pairing)]
        assert (unshuffled.layers["counts"] != source.layers["counts"]).nnz == 0
        assert np.array_equal(unshuffled.obs["batch"].astype(str), mod1.obs["batch"].astype(str))
        assert mod1.n_vars == rna.n_vars and shuffled.n_vars == mod2.n_vars
    train_batches = set(read(triana_match["train_mod1"]).obs["batch"].astype(str))
    assert not train_batches & set(read(triana_match["test_mod1"]).obs["batch"].astype(str))
    assert "cell_type" not in read(triana_match["test_mod1"]).obs
    assert "cell_type" in read(triana_match["test_sol"]).obs


def test_processor_is_seeded_and_makes_both_directions(triana_common, triana_match, tmp_path):
    again = make_match_task(tmp_path / "again", triana_common, "gex2adt")
    for name in ("test_mod2", "test_sol"):
        first, second = read(triana_match[name]), read(again[name])
        assert (
            sp.csr_matrix(first.X if name == "test_sol" else first.layers["counts"])
            != sp.csr_matrix(second.X if name == "test_sol" else second.layers["counts"])
        ).nnz == 0
    reverse = make_match_task(tmp_path / "reverse", triana_common, "adt2gex")
    assert read(reverse["test_mod1"]).uns["modality"] == "ADT"
    assert read(reverse["test_mod2"]).uns["modality"] == "GEX"


@pytest.mark.parametrize("modality", ["cite", "multiome"])
def test_match_probability_equals_a_direct_computation_on_the_organisers_prediction(
    data_dir, modality, tmp_path
):
    files = organisers_match_files(data_dir, modality)
    values = score(files["prediction"], files["test_sol"], tmp_path / "mp.h5ad", "match_probability")
    weights = ad.read_h5ad(files["prediction"]).X.toarray().astype(np.float64)
    truth = ad.read_h5ad(files["test_sol"]).X.toarray()
    weights[weights < 0] = 0
    direct = np.mean([weights[i, truth[i].argmax()] / weights[i].sum() for i in range(len(weights))])
    assert values["match_probability"] == pytest.approx(direct, abs=1e-12)
    aucs = score(files["prediction"], files["test_sol"], tmp_path / "auc.h5ad", "pair_auc")
    assert aucs["auroc"] == pytest.approx(roc_auc_score(truth.ravel(), weights.ravel()), abs=1e-12)
    assert (
        score(files["prediction"], files["test_sol"], tmp_path / "f.h5ad", "format_check")["format_ok"] == 1
    )
    # The organisers' solutions carry no cell types: that metric does not apply.
    proc = score(files["prediction"], files["test_sol"], tmp_path / "c.h5ad", "cell_type_share", check=False)
    assert proc.returncode == 99 and "cell_type" in proc.stderr


def organisers_pair_auc(weights: np.ndarray, truth: np.ndarray, order: np.ndarray) -> tuple[float, float]:
    """AUPR and AUROC as the organisers' ``match_modality/metrics/aupr`` computes them, written out
    step by step: the non-zero ``weights`` ranked from the highest (ties in the order of ``order``,
    a permutation of them), true and false positives counted at each rank, then a straight line
    in those counts to all N x N entries at 10,000 evenly spaced points; recall 0 has precision 1;
    both areas by the trapezoidal rule."""
    rows, cols = np.nonzero(weights)
    values, is_true = weights[rows, cols][order], truth[rows, cols][order] > 0
    is_true = is_true[np.argsort(-values, kind="stable")]
    positives, entries = truth.sum(), float(truth.size)
    true_positives = np.cumsum(is_true).astype(np.float64)
    false_positives = np.arange(1, len(is_true) + 1) - true_positives
    if len(is_true) < entries:
        step = np.arange(1, 10_001) / 10_000
        tp_last = true_positives[-1] if len(is_true) else 0.0
        fp_last = false_positives[-1] if len(is_true) else 0.0
        true_positives = np.r_[true_positives, tp_last + step * (positives - tp_last)]
        false_positives = np.r_[false_positives, fp_last + step * (entries - positives - fp_last)]
    recall = np.r_[0.0, true_positives / positives]
    precision = np.r_[1.0, true_positives / (true_positives + false_positives)]
    false_rate = np.r_[0.0, false_positives / (entries - positives)]
    aupr = np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2)
    auroc = np.sum(np.diff(false_rate) * (recall[1:] + recall[:-1]) / 2)
    return aupr, auroc


@pytest.mark.parametrize("modality", ["cite", "multiome"])
def test_pair_auc_is_the_organisers_where_no_weights_tie(data_dir, modality, tmp_path):
    """Their example prediction, its ties broken by a seeded jitter, scored by the component's
    command line: both values equal the organisers' procedure written out."""
    files = organisers_match_files(data_dir, modality)
    prediction = read(files["prediction"])
    weights = sp.csr_matrix(prediction.X, dtype=np.float64)
    weights.data *= 1 + 1e-6 * np.random.default_rng(0).random(weights.nnz)
    assert len(np.unique(weights.data)) == weights.nnz
    prediction.X = weights
    jittered = tmp_path / "jittered.h5ad"
    prediction.write_h5ad(jittered)
    aucs = score(jittered, files["test_sol"], tmp_path / "auc.h5ad", "pair_auc")
    truth = read(files["test_sol"]).X
    truth = truth.toarray() if sp.issparse(truth) else np.asarray(truth)
    dense = weights.toarray()
    aupr, auroc = organisers_pair_auc(dense, truth, np.arange(np.count_nonzero(dense)))
    assert aucs["aupr"] == pytest.approx(aupr, rel=1e-12)
    assert aucs["auroc"] == pytest.approx(auroc, rel=1e-12)


@pytest.mark.parametrize("ranks_per_block", [2, 3, 1 << 20])
def test_pair_auc_with_tied_weights_is_the_mean_over_every_order_of_the_ties(ranks_per_block, monkeypatch):
    """Where weights tie the organisers rank them at random: scmib gives the mean over all orders
    (every permutation of the non-zeros, on small matrices with many ties, zero groups included),
    however its sum is cut into blocks of ranks."""
    monkeypatch.setattr("scmib.metrics.matching._RANKS_PER_BLOCK", ranks_per_block)
    rng = np.random.default_rng(1)
    checked = 0
    while checked < 20:
        n = int(rng.integers(2, 4))
        weights = rng.choice([0.0, 0.2, 0.5, 1.0], size=(n, n), p=[0.3, 0.3, 0.2, 0.2])
        nonzeros = np.count_nonzero(weights)
        if not 2 <= nonzeros <= 7:
            continue
        every_order = [
            organisers_pair_auc(weights, np.eye(n), np.array(order))
            for order in itertools.permutations(range(nonzeros))
        ]
        shuffle = rng.permutation(n)  # columns shuffled as a method receives them
        assert pair_auc(sp.csr_matrix(weights[:, shuffle]), shuffle) == pytest.approx(
            tuple(np.mean(every_order, axis=0)), rel=1e-11
        )
        checked += 1
    uniform = np.full((40, 40), 1 / 40)  # one tie of everything: chance plus the early ranks' luck
    aupr, auroc = pair_auc(sp.csr_matrix(uniform), np.arange(40))
    assert auroc == 0.5 and 1 / 40 < aupr < 1 / 40 + np.log(1600) / 1600


@pytest.mark.parametrize("modality", ["cite", "multiome"])
def test_every_method_and_control_runs_on_the_organisers_files_unchanged(data_dir, modality, tmp_path):
    files = organisers_match_files(data_dir, modality)
    n = ad.read_h5ad(files["test_sol"]).n_obs
    for name in CONTROLS + METHODS:
        kind = "control_methods" if name in CONTROLS else "methods"
        prediction = match(f"{kind}/{name}", files, tmp_path / f"{name}.h5ad", **QUICK.get(name, {}))
        values = {}
        for metric in ("match_probability", "format_check", "pair_auc"):
            values.update(score(prediction, files["test_sol"], tmp_path / f"{name}_{metric}.h5ad", metric))
        assert values["format_ok"] == 1, name
        if name == "solution":
            assert values["match_probability"] == values["aupr"] == values["auroc"] == 1
        else:
            assert 0 <= values["match_probability"] < 0.5, name
        assert ad.read_h5ad(prediction).shape == (n, n)


def test_controls_bracket_as_defined_on_triana(triana_scores, triana_match):
    n = read(triana_match["test_sol"]).n_obs
    assert triana_scores["solution"] == {
        "match_probability": 1.0, "format_ok": 1.0, "aupr": 1.0, "auroc": 1.0, "cell_type_share": 1.0
    }  # fmt: skip
    assert triana_scores["constant_weights"]["match_probability"] == pytest.approx(1 / n, rel=1e-6)
    assert 0.5 / n < triana_scores["random_weights"]["match_probability"] < 2 / n
    assert triana_scores["random_weights"]["auroc"] == pytest.approx(0.5, abs=0.02)
    assert 0.07 < triana_scores["semi_solution"]["match_probability"] < 0.11  # about 1 / 11
    assert all(s["format_ok"] == 1 for s in triana_scores.values())


def test_best_method_reaches_twenty_times_chance_on_held_out_triana_batches(triana_scores, triana_match):
    n = read(triana_match["test_sol"]).n_obs
    methods = {m: triana_scores[m]["match_probability"] * n for m in METHODS}
    # Measured: CLUE (5 epochs and 1 of fine-tuning) ~150x chance, CLIP (30 epochs) ~130x, the
    # linear baselines ~40x.
    assert max(methods.values()) >= 20, methods
    assert methods["clip_contrastive"] >= 20 and methods["clue_cross_vae"] >= 20, methods
    assert min(methods.values()) > 5, methods
    for method in METHODS:
        assert triana_scores[method]["cell_type_share"] > triana_scores["random_weights"]["cell_type_share"]


def _write_prediction(path: Path, weights, n: int) -> Path:
    names = [str(i) for i in range(n)]
    adata = ad.AnnData(X=weights, obs=pd.DataFrame(index=names[: weights.shape[0]]))
    adata.var_names = names[: weights.shape[1]]
    adata.uns.update(dataset_id="bad_predictions", method_id="bad")
    adata.write_h5ad(path)
    return path


def _write_solution(path: Path, n: int, seed: int = 0) -> Path:
    """A synthetic solution of ``n`` cells (over 1,000, so a matrix can break the 1000 * N budget)."""
    from scmib.processing.match_modalities import pairing_matrix

    pairing = np.random.default_rng(seed).permutation(n)
    adata = ad.AnnData(
        X=pairing_matrix(pairing), obs=pd.DataFrame({"batch": ["b"] * n}, index=map(str, range(n)))
    )
    adata.uns.update(dataset_id="bad_predictions", pairing_ix=pairing)
    adata.write_h5ad(path)
    return path


def _metric(prediction: Path, solution: Path, out: Path, metric: str) -> subprocess.CompletedProcess:
    return run_cli(
        f"match_modalities/metrics/{metric}",
        check=False,
        input_prediction=prediction,
        input_test_sol=solution,
        output=out,
    )


#: Each bad prediction of the solution's truth T and the match probability it still gets.
DEFECTS = {
    "negative": (lambda t, shifted: t - 0.5 * shifted, 1.0),
    "dense": (lambda t, shifted: t.toarray(), 1.0),
    "rows_not_normalised": (lambda t, shifted: 3 * t, 1.0),
    "too_many_nonzeros": (lambda t, shifted: sp.csr_matrix(np.ones(t.shape)), 1 / 1001),
    "wrong_shape": (lambda t, shifted: t[:, :-1], None),
    "not_finite": (lambda t, shifted: _first_rows_nan(t, 100), 901 / 1001),
    "no_usable_weight": (lambda t, shifted: _first_rows_nan(t, 1001), 0.0),
}


def _first_rows_nan(truth: sp.csr_matrix, n_rows: int) -> sp.csr_matrix:
    """The truth with the weights of its first rows NaN: rows of no usable weight, scored 0."""
    matrix = truth.copy()
    matrix.data[matrix.indptr[0] : matrix.indptr[n_rows]] = np.nan
    return matrix


def test_clips_sinkhorn_default_is_the_librarys():
    from conftest import spec_of

    from scmib.methods.matching import SINKHORN_REG

    clip = spec_of("match_modalities/methods/clip_contrastive")
    assert clip.argument_map["sinkhorn_reg"].default == SINKHORN_REG


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_bad_predictions_get_a_format_failure_and_a_score_or_a_clear_error(defect, tmp_path):
    solution = _write_solution(tmp_path / "sol.h5ad", 1001)
    truth = sp.csr_matrix(read(solution).X, dtype=np.float64)
    shifted = sp.csr_matrix(np.roll(truth.toarray(), 1, axis=1))
    make, expected = DEFECTS[defect]
    prediction = _write_prediction(tmp_path / "bad.h5ad", make(truth, shifted), truth.shape[0])
    check = _metric(prediction, solution, tmp_path / "f.h5ad", "format_check")
    assert check.returncode == 0, check.stderr
    assert read(tmp_path / "f.h5ad").uns["metric_values"][0] == 0
    assert "format:" in check.stderr and "bad.h5ad" in check.stderr
    probability = _metric(prediction, solution, tmp_path / "m.h5ad", "match_probability")
    if expected is None:  # a matrix of another shape cannot be scored: a clear error, exit 2
        assert probability.returncode == 2
        assert "bad.h5ad" in probability.stderr and "shape (1001, 1000)" in probability.stderr
        return
    assert probability.returncode == 0, probability.stderr
    assert float(read(tmp_path / "m.h5ad").uns["metric_values"][0]) == pytest.approx(expected)
    aucs = _metric(prediction, solution, tmp_path / "a.h5ad", "pair_auc")
    assert aucs.returncode == 0, aucs.stderr
    aupr, auroc = (float(v) for v in read(tmp_path / "a.h5ad").uns["metric_values"])
    # No entry ranked: scmib scores the straight line from precision 1 to chance alone (the
    # organisers' script stops with an error on a matrix without entries), AUROC 1/2.
    if defect == "no_usable_weight":
        expected = organisers_pair_auc(np.zeros((1001, 1001)), np.eye(1001), np.arange(0))
        assert (aupr, auroc) == (pytest.approx(expected[0], rel=1e-12), pytest.approx(0.5))
    else:
        assert 0 < aupr <= 1 and 0.5 <= auroc <= 1


def test_one_run_scores_both_tasks_into_one_results_table(data_dir, tmp_path):
    outdir = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "scmib.cli", "run", "--task", "predict_modality,match_modalities",
        "--profile", "test", "--datasets", "neurips2021_starter_cite",
        "--methods", "knn_regression,procrustes_knn", "--metrics", "error,match_probability,format_check",
        "--outdir", str(outdir), "--data_mirror", str(data_dir), "--jobs", "2", "--no-progress",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(outdir / "results" / "results.tsv", sep="\t")
    assert set(table["task"]) == {"predict_modality", "match_modalities"}
    matching = table[table["task"] == "match_modalities"]
    assert set(matching["variant"]) == {"gex2adt", "adt2gex"}
    solution = matching[(matching["method"] == "solution") & (matching["metric"] == "match_probability")]
    assert (solution["value"] == 1).all() and (solution["scaled"] == 1).all()
    procrustes = matching[
        (matching["method"] == "procrustes_knn") & (matching["metric"] == "match_probability")
    ]
    assert (procrustes["status"] == "success").all() and (procrustes["scaled"] > 0).all()
    scores = pd.read_csv(outdir / "results" / "scores.tsv", sep="\t")
    assert (scores.loc[scores["method"] == "solution", "mean_score"] == 1).all()
    assert "match_modalities" in (outdir / "results" / "report.html").read_text()


def test_a_prediction_with_its_rows_in_another_order_is_scored_by_its_names(triana_match, tmp_path):
    """The solution's own pairing, its rows and columns shuffled with their names (a method that
    sorted its cells), still scores 1 on real Triana cells; shuffled values under the solution's
    names in order (positional, as the organisers' 0..N-1 names are read) score near chance."""
    solution = read(triana_match["test_sol"])
    n = solution.n_obs
    rng = np.random.default_rng(0)
    rows, cols = rng.permutation(n), rng.permutation(n)
    truth = sp.csr_matrix(solution.X, dtype=np.float32)
    named = ad.AnnData(
        X=truth[rows][:, cols], obs=solution.obs.iloc[rows][[]], var=solution.var.iloc[cols][[]]
    )
    unnamed = ad.AnnData(X=truth[rows][:, cols], obs=solution.obs[[]], var=solution.var[[]])
    for name, prediction in {"named": named, "unnamed": unnamed}.items():
        prediction.uns.update(dataset_id=solution.uns["dataset_id"], method_id=name)
        prediction.write_h5ad(tmp_path / f"{name}.h5ad")
    for metric in ("match_probability", "pair_auc", "cell_type_share"):
        value = score(tmp_path / "named.h5ad", triana_match["test_sol"], tmp_path / f"{metric}.h5ad", metric)
        assert set(value.values()) == {1.0}, (metric, value)
    positional = score(
        tmp_path / "unnamed.h5ad", triana_match["test_sol"], tmp_path / "p.h5ad", "match_probability"
    )
    assert positional["match_probability"] < 10 / n

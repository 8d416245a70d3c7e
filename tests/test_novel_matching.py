"""Novel's matching model (``clip_contrastive``) against its own code: encoders, loss, validation
metric, early stopping, models per batch, LSI inputs and the final bipartite matching."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from conftest import read, run_cli
from networkx.algorithms import bipartite
from test_features import novels_lsi_transformer

from scmib.methods import novel_matching as novel


def _numpy_encoder(encoder: novel.NovelEncoder, x: np.ndarray) -> np.ndarray:
    """Novel's ``Encoder.forward`` in eval mode, in numpy: ELU after every layer but the last."""
    layers = [
        (lin.weight.detach().numpy().astype(np.float64), lin.bias.detach().numpy()) for lin in encoder.linears
    ]
    for weight, bias in layers[:-1]:
        x = x @ weight.T + bias
        x = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    weight, bias = layers[-1]
    return x @ weight.T + bias


@pytest.mark.parametrize(
    ("settings", "n_other", "n_gex", "other_sizes", "gex_sizes"),
    [
        (novel.CITE, 134, 128, [(134, 512), (512, 2048), (2048, 64)], [(128, 1024), (1024, 512), (512, 64)]),
        (novel.MULTIOME, 512, 64, [(512, 2048), (2048, 256)], [(64, 1024), (1024, 1024), (1024, 256)]),
    ],
)
def test_the_model_is_novels_modality_clip(settings, n_other, n_gex, other_sizes, gex_sizes):
    torch.manual_seed(0)
    model = novel.NovelCLIP(n_other, n_gex, settings).eval()
    for encoder, sizes, rates in (
        (model.encode_other, other_sizes, settings.other_dropout),
        (model.encode_gex, gex_sizes, settings.gex_dropout),
    ):
        assert [(lin.in_features, lin.out_features) for lin in encoder.linears] == sizes
        assert [d.p for d in encoder.dropouts] == list(rates)
    assert float(model.logit_scale.detach()) == pytest.approx(settings.log_t)
    rng = np.random.default_rng(1)
    other, gex = rng.normal(size=(7, n_other)), rng.normal(size=(7, n_gex))
    with torch.no_grad():
        z_other, z_gex = model(
            torch.tensor(other, dtype=torch.float32), torch.tensor(gex, dtype=torch.float32)
        )
        loss = float(
            model.loss(torch.tensor(other, dtype=torch.float32), torch.tensor(gex, dtype=torch.float32))
        )
    expected = [_numpy_encoder(e, x) for e, x in ((model.encode_other, other), (model.encode_gex, gex))]
    expected = [e / np.linalg.norm(e, axis=1, keepdims=True) for e in expected]
    np.testing.assert_allclose(z_other.numpy(), expected[0], atol=1e-5)
    np.testing.assert_allclose(z_gex.numpy(), expected[1], atol=1e-5)
    # symmetric_npair_loss: the mean of the two cross-entropies of exp(log_t) * cosine similarity
    logits = np.exp(settings.log_t) * expected[0] @ expected[1].T

    def cross_entropy(scores: np.ndarray) -> float:
        shifted = scores - scores.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - np.diag(shifted)))

    assert loss == pytest.approx(0.5 * (cross_entropy(logits) + cross_entropy(logits.T)), rel=1e-4)


def test_the_validation_metric_is_novels_average_retrieval_accuracy():
    """Novel's ``CustomMetric``: argmax of (T * first) @ second.T along each axis against the
    diagonal, averaged. Here mod1 cell 3's best partner is mod2 cell 4 (forward 4/5); every mod2
    cell's best partner is its own (backward 5/5)."""
    similarity = torch.eye(5)
    similarity[3, 3:] = torch.tensor([0.5, 0.9])
    similarity[4, 3:] = torch.tensor([0.2, 0.95])
    assert novel.retrieval_accuracy(torch.eye(5), similarity.T.contiguous()) == pytest.approx(0.9)


def test_one_model_per_training_batch_with_adt_one_on_the_first_batch_with_atac(capsys):
    batches = np.array(["s2d1", "s1d1", "s2d1", "s3d6", "s1d1"])
    cite = novel.validation_groups(batches, novel.CITE, seed=0)
    assert [list(np.flatnonzero(g)) for g in cite] == [[1, 4], [0, 2], [3]]
    multiome = novel.validation_groups(batches, novel.MULTIOME, seed=0)
    assert [list(np.flatnonzero(g)) for g in multiome] == [[1, 4]]  # s1d1, Novel's validation batch
    # The first batch in sorted order, whatever its name (s1d1 sorts first in the competition).
    other_names = novel.validation_groups(np.array(["d", "c", "d", "e"]), novel.MULTIOME, seed=0)
    assert [list(np.flatnonzero(g)) for g in other_names] == [[1]]
    one_batch = novel.validation_groups(np.array(["s1d1"] * 100), novel.CITE, seed=3)
    assert len(one_batch) == novel.PSEUDO_BATCHES
    assert (np.sum(one_batch, axis=0) == 1).all() and {int(g.sum()) for g in one_batch} == {11, 12}
    assert "9 random groups" in capsys.readouterr().err
    again = novel.validation_groups(np.array(["s1d1"] * 100), novel.CITE, seed=3)
    assert all((a == b).all() for a, b in zip(one_batch, again, strict=True))
    assert len(novel.validation_groups(np.array(["b"] * 100), novel.MULTIOME, seed=3)) == 1


def novels_matching(raw_logits: np.ndarray, threshold_quantile: float = 0.99) -> np.ndarray:
    """Novel's ``get_bipartite_matching_adjacency_matrix_mk3`` as its code writes it (networkx)."""
    weights = raw_logits.copy()
    quantile_row = np.quantile(weights, threshold_quantile, axis=0, keepdims=True)
    quantile_col = np.quantile(weights, threshold_quantile, axis=1, keepdims=True)
    mask_ = weights < quantile_row
    mask_ = np.logical_and(mask_, (weights < quantile_col), out=mask_)
    weights[mask_] = 0
    graph = bipartite.matrix.from_biadjacency_matrix(sp.csr_matrix(-weights))
    u = [n for n in graph.nodes if graph.nodes[n]["bipartite"] == 0]
    matches = bipartite.matching.minimum_weight_full_matching(graph, top_nodes=u)
    best_matches = np.array([matches[x] - len(u) for x in u])
    adjacency = np.zeros(raw_logits.shape)
    adjacency[np.arange(raw_logits.shape[0]), best_matches] = 1
    return adjacency


@pytest.mark.parametrize("seed", [0, 1])
def test_the_matching_is_novels_on_its_pruned_graph(seed):
    """Summed cosine similarities of 9 models' random unit embeddings of 300 cells (each model's
    mod2 embeddings a noisy permuted copy of its mod1 ones), where the pruning decides: the same
    matching as Novel's networkx code."""
    rng = np.random.default_rng(seed)
    total = np.zeros((300, 300))
    for _ in range(9):
        a = rng.normal(size=(300, 16))
        b = a[rng.permutation(300)] + rng.normal(size=(300, 16))
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        total += a @ b.T
    ours = novel.novel_assignment(total)
    assert ours.nnz == 300 and (ours.sum(axis=0) == 1).all() and (ours.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(ours.toarray(), novels_matching(total))
    # The pruning mattered: the matching on every edge differs.
    from scipy.optimize import linear_sum_assignment

    _, cols = linear_sum_assignment(total, maximize=True)
    assert not np.array_equal(cols, ours.indices)


def test_a_pruned_graph_without_a_full_matching_is_matched_on_every_edge(capsys):
    """Every row's best column is 0 and column 0's best row is 0: rows 1 and 2 keep only the edge
    to column 0 (Novel's networkx call fails here); every edge is used instead."""
    similarity = np.array([[3.0, 2.0, 1.0], [2.9, 1.9, 0.9], [2.8, 1.8, 0.8]]) - 1.5
    with pytest.raises(ValueError):
        novels_matching(similarity)
    matching = novel.novel_assignment(similarity)
    assert sorted(matching.indices) == [0, 1, 2] and matching.nnz == 3
    assert "no full matching" in capsys.readouterr().err


def test_lsi_inputs_are_novels_transformer_fitted_without_the_validation_cells(triana_common):
    """Triana's log GEX: Novel's ``lsiTransformer(n, drop_first=True)`` fitted on the training cells
    outside the validation batch, applied to it and to the test cells; ADT as it is."""
    rna, adt = read(triana_common[0]), read(triana_common[1])
    values = sp.csr_matrix(rna.layers["normalized"], dtype=np.float64)
    train, test = values[:1500], values[1500:1800]
    validation = np.zeros(1500, dtype=bool)
    validation[np.random.default_rng(0).choice(1500, 300, replace=False)] = True
    rows, test_rows = novel.model_inputs(train, test, 20, validation, seed=777)
    fitted, applied = novels_lsi_transformer(
        train[~validation], sp.vstack([train[validation], test]).tocsr(), 21, 777
    )
    assert rows.shape == (1500, 20) and test_rows.shape == (300, 20)
    np.testing.assert_allclose(rows[~validation], fitted[:, 1:], atol=5e-3)
    np.testing.assert_allclose(rows[validation], applied[:300, 1:], atol=5e-3)
    np.testing.assert_allclose(test_rows, applied[300:, 1:], atol=5e-3)
    proteins = adt.layers["normalized"]
    as_is, test_as_is = novel.model_inputs(proteins[:1500], proteins[1500:1800], None, validation, seed=0)
    dense = np.asarray(sp.csr_matrix(adt.layers["normalized"]).toarray(), dtype=np.float32)
    np.testing.assert_array_equal(as_is, dense[:1500])
    np.testing.assert_array_equal(test_as_is, dense[1500:1800])


def test_training_keeps_the_best_epoch_and_stops_after_patience_epochs(capsys):
    """A small model on synthetic pairs: it stops ``patience`` epochs after its best, and the
    returned weights retrieve the validation cells as well as that best epoch did."""
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(600, 8))
    other = shared @ rng.normal(size=(8, 30)) + rng.normal(size=(600, 30))
    gex = shared @ rng.normal(size=(8, 20)) + rng.normal(size=(600, 20))
    validation = np.arange(600) >= 500
    settings = novel.CITE.__class__(**{**novel.CITE.__dict__, "other_layers": (32,), "gex_layers": (32,),
                                       "other_dropout": (0.1,), "gex_dropout": (0.1,), "embedding_dim": 8,
                                       "learning_rate": 1e-2, "batch_size": 128})  # fmt: skip
    model = novel.train_novel_clip(
        other, gex, validation, settings, torch.device("cpu"), 0, max_epochs=400, patience=5
    )
    log = capsys.readouterr().err
    stop_line = next(line for line in log.splitlines() if "stopped after epoch" in line)
    stopped, best = (int(w.rstrip(",")) for w in (stop_line.split()[4], stop_line.split()[6]))
    assert stopped - best == 5 and stopped < 400
    reported = float(stop_line.split()[-1].rstrip(")"))
    with torch.no_grad():
        z = model(
            torch.tensor(other[validation], dtype=torch.float32),
            torch.tensor(gex[validation], dtype=torch.float32),
        )
    assert novel.retrieval_accuracy(*z) == pytest.approx(reported, abs=1e-4)
    assert reported > 5 / 100  # well above chance (1 in 100)
    assert not model.training


def test_the_command_line_matches_every_test_cell_once_or_within_batch(data_dir, triana_common, tmp_path):
    """On the organisers' starter CITE files (one training batch: 9 random groups, 9 models),
    Novel's matching gives each test cell exactly one partner; on Triana's two held-out donors
    ``within_batch`` with a softmax puts every weight on a cell of the same donor."""
    from test_match_modalities import FILES, make_match_task, organisers_match_files

    def clip(files: dict, out: str, **params) -> tuple[object, sp.csr_matrix]:
        inputs = {f"input_{n}": files[n] for n in FILES[:5]}
        proc = run_cli("match_modalities/methods/clip_contrastive", output=tmp_path / out, **inputs, **params)
        return proc, sp.csr_matrix(read(tmp_path / out).X)

    proc, matching = clip(organisers_match_files(data_dir, "cite"), "novel.h5ad", max_epochs=3)
    assert "9 random groups" in proc.stderr and proc.stderr.count("NovelCLIP epoch 3/3") == 9
    assert (np.diff(matching.indptr) == 1).all() and (matching.data == 1).all()
    assert sorted(matching.indices) == list(range(matching.shape[1]))
    triana = make_match_task(tmp_path / "triana", triana_common, "adt2gex")
    proc, weights = clip(
        triana, "batch.h5ad", max_epochs=2, within_batch=True, assignment="softmax", n_neighbors=5
    )
    assert proc.stderr.count("NovelCLIP epoch 2/2") == 4  # one model per training donor
    weights = weights.tocoo()
    first, second = (read(triana[n]).obs["batch"].astype(str).to_numpy() for n in ("test_mod1", "test_mod2"))
    assert len(set(first)) == 2 and weights.nnz == 5 * len(first)
    assert (first[weights.row] == second[weights.col]).all()

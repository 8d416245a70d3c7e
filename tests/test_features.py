"""Shared feature code that works a part at a time, against the whole-matrix formulas, on real nuclei.

The chunked, in-place TF-IDF and the stacking from disk exist so a competition-size ATAC matrix
fits in a method's memory; here they must give what the plain vectorised formulas give on the
SNARE-seq2 ATAC counts.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import read
from sklearn.decomposition import TruncatedSVD

import scmib.io
from scmib.io import keep_layers, read_h5ad, stack_rows
from scmib.methods.features import lsi, novel_lsi, tfidf, zscore_rows
from scmib.methods.reduction import truncated_svd


def reference_tfidf(counts) -> sp.csr_matrix:
    """The whole-matrix float64 formula (scmib's before the chunked version)."""
    counts = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    totals[totals == 0] = 1.0
    idf = counts.shape[0] / (1.0 + np.asarray((counts > 0).sum(axis=0)).ravel())
    counts.data /= np.repeat(totals, np.diff(counts.indptr))
    counts = counts.multiply(idf[None, :]).tocsr()
    counts.data = np.log1p(counts.data * 1e4)
    return counts


#: z-scored LSI components, float32 against float64 or another row order (values of order 1)
ATOL = 5e-3


@pytest.fixture(scope="module")
def atac_counts(snare_common) -> sp.csr_matrix:
    return sp.csr_matrix(read(snare_common[1]).layers["counts"])


def test_chunked_tfidf_equals_the_whole_matrix_formula(atac_counts, monkeypatch):
    # Small chunks, so the 10k nuclei span many row chunks and value chunks.
    monkeypatch.setattr("scmib.methods.features.VALUE_CHUNK", 100_003)
    counts = atac_counts.copy()
    counts.data[counts.indptr[5] : counts.indptr[6]] = 0  # an empty cell: its total is taken as 1
    counts.eliminate_zeros()
    original = counts.copy()
    expected = reference_tfidf(counts)
    result = tfidf(counts)
    assert result.dtype == np.float32
    assert (result.indptr == expected.indptr).all() and (result.indices == expected.indices).all()
    np.testing.assert_allclose(result.data, expected.data, rtol=1e-5)
    assert (counts != original).nnz == 0, "copy=True must leave the input alone"
    in_place = counts.astype(np.float32)
    result = tfidf(in_place, copy=False)
    assert np.shares_memory(result.data, in_place.data)
    np.testing.assert_allclose(in_place.data, expected.data, rtol=1e-5)


def test_stack_rows_from_disk_memory_and_dense_equals_vstack(snare_common, monkeypatch):
    monkeypatch.setattr(scmib.io, "VALUE_CHUNK", 1_000_003)
    on_disk = read_h5ad(snare_common[1], lazy=True).layers["counts"]
    assert isinstance(on_disk, scmib.io.OnDisk)
    in_memory = read(snare_common[1]).layers["counts"][:700]
    dense = in_memory[:50].toarray()
    as_csc = sp.csc_matrix(in_memory[:30])  # rows of a column-major matrix
    stacked = stack_rows([on_disk, in_memory, dense, as_csc], np.float32)
    expected = sp.vstack([on_disk.to_memory(), in_memory, sp.csr_matrix(dense), as_csc], format="csr")
    assert stacked.dtype == np.float32 and stacked.shape == expected.shape
    assert (stacked != expected).nnz == 0
    with pytest.raises(ValueError, match="different numbers of columns"):
        stack_rows([in_memory, in_memory[:, :10]])


def test_keep_layers_drops_the_others_unread_and_reads_the_kept_one_only_when_asked(snare_common):
    stored = read(snare_common[1])
    left_on_disk = keep_layers(read_h5ad(snare_common[1], lazy=True), ["counts"], to_memory=False)
    assert list(left_on_disk.layers) == ["counts"] and left_on_disk.X is None
    assert isinstance(left_on_disk.layers["counts"], scmib.io.OnDisk)
    in_memory = keep_layers(read_h5ad(snare_common[1], lazy=True), ["counts"])
    assert sp.issparse(in_memory.layers["counts"])
    assert (in_memory.layers["counts"] != stored.layers["counts"]).nnz == 0


def test_lsi_equals_the_float64_formula_from_disk_too_and_commutes_with_reordering_cells(
    atac_counts, snare_common
):
    """Matching methods reduce the training ATAC in stored order and re-pair the rows after:
    that must equal reducing the re-paired rows."""
    train, test = atac_counts[:8000], atac_counts[8000:]
    train_lsi, test_lsi = lsi(train, test, 30, seed=0)
    reference = truncated_svd(reference_tfidf(sp.vstack([train, test])), 30, seed=0)
    np.testing.assert_allclose(np.vstack([train_lsi, test_lsi]), zscore_rows(reference), atol=ATOL)

    on_disk = read_h5ad(snare_common[1], lazy=True).layers["counts"]
    from_disk, _ = lsi(on_disk, test, 30, seed=0)
    in_memory, _ = lsi(atac_counts, test, 30, seed=0)
    np.testing.assert_array_equal(from_disk, in_memory)

    # scikit-learn's TruncatedSVD would project the cells here (more peaks than cells) and give
    # other trailing components for another order of the cells; truncated_svd projects the features.
    order = np.random.default_rng(0).permutation(train.shape[0])
    permuted_train, permuted_test = lsi(train[order], test, 30, seed=0)
    np.testing.assert_allclose(train_lsi[order], permuted_train, atol=ATOL)
    np.testing.assert_allclose(test_lsi, permuted_test, atol=ATOL)


def test_truncated_svd_is_scikit_learns_where_it_projects_the_features(triana_common):
    """With fewer features than cells (GEX here) scikit-learn projects the features as well: the
    same scores, to the last bit."""
    values = read(triana_common[0]).layers["normalized"]
    assert values.shape[0] > values.shape[1]
    expected = TruncatedSVD(20, random_state=3).fit_transform(values)
    np.testing.assert_array_equal(truncated_svd(values, 20, seed=3), expected)


def novels_lsi_transformer(train, test, n_components: int, seed: int):
    """Novel's ``lsiTransformer`` (its ``helper_functions.py``) as its code writes it: scipy's
    sparse ``multiply`` for tf and idf, scikit-learn's L1 ``Normalizer`` and ``TruncatedSVD``."""
    from sklearn.preprocessing import Normalizer

    idf = train.shape[0] / np.asarray(train.sum(axis=0))
    svd = TruncatedSVD(n_components=n_components, random_state=seed)
    normalizer = Normalizer(norm="l1")
    out = []
    for fit, values in ((True, train), (False, test)):
        tf = sp.csr_matrix(values.multiply(1 / values.sum(axis=1)).multiply(idf))
        x = normalizer.fit_transform(tf) if fit else normalizer.transform(tf)
        x = x.multiply(1e4).log1p()
        if fit:  # Novel's fit_transform: fit, then transform
            svd.fit(x)
        lsi_ = svd.transform(x)
        lsi_ -= lsi_.mean(axis=1, keepdims=True)
        out.append(lsi_ / lsi_.std(axis=1, ddof=1, keepdims=True))
    return out


@pytest.mark.parametrize("layer", ["binary ATAC", "log GEX"])
def test_novel_lsi_is_novels_lsi_transformer(snare_common, layer):
    """On SNARE-seq2's binarised peaks and log-normalised genes (the organisers' ``.X`` of each),
    fitted on 800 nuclei and applied to 300 others."""
    values = sp.csr_matrix(read(snare_common[1 if layer == "binary ATAC" else 0]).layers["normalized"])
    # Features with training values only: Novel's idf is infinite for the others.
    values = values[:, np.flatnonzero(np.asarray(values[:800].sum(axis=0)).ravel() > 0)]
    train, test = values[:800].astype(np.float64), values[800:1100].astype(np.float64)
    expected = novels_lsi_transformer(train, test, 40, seed=777)
    for ours, theirs in zip(novel_lsi(train, test, 40, seed=777), expected, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=ATOL)
    # The training cells' idf only: a peak seen only in test cells gets none (not infinity).
    unseen = sp.hstack([values[:800], sp.csr_matrix((800, 1))]).tocsr()
    seen_later = sp.hstack([values[800:1100], sp.csr_matrix(np.ones((300, 1)))]).tocsr()
    assert np.isfinite(novel_lsi(unseen, seen_later, 40, seed=777)[1]).all()

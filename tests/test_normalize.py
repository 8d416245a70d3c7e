"""The organisers' normalisations rebuilt from counts agree with their own values."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from conftest import read

from scmib.data import normalize


def test_gex_log_normalisation_reproduces_the_organisers_values(data_dir):
    for modality in ("cite", "multiome"):
        rna = read(data_dir / f"neurips2021_starter/{modality}/common/output_rna.h5ad")
        ours = normalize.log_normalize(rna.layers["counts"], rna.obs["size_factors"].to_numpy())
        np.testing.assert_allclose(ours.toarray(), rna.X.toarray(), atol=1e-5)
        # Counts are untouched (the functions must not work in place on their input).
        assert float(rna.layers["counts"].max()) > 1


def test_clr_is_per_cell_and_matches_the_organisers_up_to_a_per_cell_constant(data_dir):
    adt = read(data_dir / "neurips2021_starter/cite/common/output_mod2.h5ad")
    counts = adt.layers["counts"].toarray()
    ours = normalize.clr(counts).toarray()
    geometric = np.exp(np.log1p(counts).mean(axis=1, keepdims=True))
    np.testing.assert_allclose(ours, np.log1p(counts / geometric), rtol=1e-5, atol=1e-6)
    # The organisers divided by a geometric mean over a wider panel: same values up to
    # one constant per cell, so counts / expm1(value) is constant within each cell.
    for values in (ours, adt.X.toarray()):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(counts > 0, counts / np.expm1(values), np.nan)
        spread = np.nanstd(ratio, axis=1) / np.nanmean(ratio, axis=1)
        assert np.nanmax(spread) < 1e-5


def test_atac_binarisation_and_peak_filter(data_dir):
    atac = read(data_dir / "neurips2021_starter/multiome/common/output_mod2.h5ad")
    ours = normalize.binarize(atac.layers["counts"])
    np.testing.assert_array_equal(ours.toarray(), atac.X.toarray())
    counts = sp.csr_matrix(np.array([[0, 2, 1], [0, 3, 0], [1, 1, 0]]))
    np.testing.assert_array_equal(normalize.peaks_open_in(counts, 2), [False, True, False])


def test_library_size_factors_have_mean_one():
    counts = sp.csr_matrix(np.array([[1, 1], [2, 2], [3, 3]], dtype=float))
    np.testing.assert_allclose(normalize.library_size_factors(counts), [0.5, 1.0, 1.5])

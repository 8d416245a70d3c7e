"""Metric kernels against scipy and scikit-learn, and their edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_absolute_error, mean_squared_error

from scmib.metrics import regression as reg


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    truth = rng.gamma(1.0, 1.0, size=(40, 25))
    truth[:, 3] = 0.0  # a constant feature
    truth[::7] = np.round(truth[::7])  # ties for Spearman
    return truth, truth + rng.normal(0, 0.5, size=truth.shape)


def test_errors_match_scikit_learn(pair):
    truth, pred = pair
    assert reg.rmse(truth, pred) == pytest.approx(np.sqrt(mean_squared_error(truth, pred)))
    assert reg.mae(truth, pred) == pytest.approx(mean_absolute_error(truth, pred))


def _scipy_mean(function, a, b):
    values = []
    for x, y in zip(a, b, strict=True):
        values.append(0.0 if np.ptp(x) == 0 or np.ptp(y) == 0 else function(x, y)[0])
    return np.mean(values)


@pytest.mark.parametrize("axis", ["cell", "feature", "overall"])
def test_correlations_match_scipy(pair, axis):
    truth, pred = pair
    a, b = {
        "cell": (truth, pred),
        "feature": (truth.T, pred.T),
        "overall": (truth.reshape(1, -1), pred.reshape(1, -1)),
    }[axis]
    assert reg.pearson(truth, pred, axis) == pytest.approx(_scipy_mean(stats.pearsonr, a, b))
    assert reg.spearman(truth, pred, axis) == pytest.approx(_scipy_mean(stats.spearmanr, a, b))


def test_constant_prediction_correlates_zero_not_nan(pair):
    truth, _ = pair
    constant = np.ones_like(truth)
    for axis in ("cell", "feature", "overall"):
        assert reg.pearson(truth, constant, axis) == 0.0
        assert reg.spearman(truth, constant, axis) == 0.0


def test_perfect_prediction(pair):
    truth, _ = pair
    assert reg.rmse(truth, truth) == 0.0
    assert reg.pearson(truth, truth, "overall") == pytest.approx(1.0)

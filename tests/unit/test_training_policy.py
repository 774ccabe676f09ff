"""Recency sample weights and training windows: the weights, and that both models learn from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from creditrisk_assets.modeling.dataset import TARGET, recency_weights
from creditrisk_assets.modeling.train import train_baseline, train_xgboost, weighted_rows

REF = pd.Timestamp("2026-10-03 12:00")


def hours_before(*hours: float) -> pd.Series:
    return pd.Series([REF - pd.Timedelta(hours=h) for h in hours])


def test_half_life_halves_the_weight_every_half_life() -> None:
    w = recency_weights(hours_before(36, 24, 12, 6, 0), half_life_hours=12)
    np.testing.assert_allclose(w, [0.125, 0.25, 0.5, 2 ** -0.5, 1.0])


def test_window_keeps_the_last_hours_only_and_combines_with_a_half_life() -> None:
    times = hours_before(30, 24, 23.5, 0)
    np.testing.assert_array_equal(recency_weights(times, window_hours=24), [0.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(recency_weights(times, half_life_hours=24, window_hours=24), [0.0, 0.5, 0.5 ** (23.5 / 24), 1.0])


def test_off_is_uniform_and_the_reference_defaults_to_the_newest_row() -> None:
    times = hours_before(100, 50, 3)
    np.testing.assert_array_equal(recency_weights(times), [1.0, 1.0, 1.0])
    # newest row (3 h before REF) is the default reference; an explicit reference ages every row more
    np.testing.assert_allclose(recency_weights(times, half_life_hours=1), [0.5 ** 97, 0.5 ** 47, 1.0])
    np.testing.assert_allclose(recency_weights(times, half_life_hours=1, reference=REF)[-1], 0.125)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"half_life_hours": -1.0}, "half_life_hours"),
    ({"window_hours": float("nan")}, "window_hours"),
    ({"half_life_hours": float("inf")}, "half_life_hours"),
    ({"reference": REF - pd.Timedelta(hours=1)}, "after the reference"),
])
def test_bad_policies_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        recency_weights(hours_before(5, 0), **kwargs)


def test_missing_decision_time_is_refused() -> None:
    with pytest.raises(ValueError, match="missing"):
        recency_weights(pd.Series([REF, pd.NaT]), half_life_hours=12)


def test_weighted_rows_drops_zero_weights_and_records_the_effective_size() -> None:
    train = pd.DataFrame({"x": range(4)})
    kept, w, params = weighted_rows(train, np.array([0.0, 1.0, 1.0, 0.5]))
    assert kept["x"].tolist() == [1, 2, 3]
    np.testing.assert_array_equal(w, [1.0, 1.0, 0.5])
    assert params["train_rows_weighted"] == 3
    assert params["train_effective_rows"] == pytest.approx(2.5 ** 2 / 2.25, abs=0.05)
    assert weighted_rows(train, None) == (train, None, {})
    for bad, message in ((np.ones(3), "3 values for 4"), (np.zeros(4), "every sample weight is 0"),
                         (np.array([1.0, -1.0, 1.0, 1.0]), ">= 0")):
        with pytest.raises(ValueError, match=message):
            weighted_rows(train, bad)


def regime_change(n_old: int = 6000, n_new: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Old applications: risk rises with x1; the newest ones: it falls with x1 (a concept shift)."""
    rng = np.random.default_rng(seed)
    n = n_old + n_new
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    sign = np.where(np.arange(n) < n_old, 1.0, -1.0)
    logit = -2.0 + 1.5 * sign * x1 + 0.3 * x2
    return pd.DataFrame({"x1": x1, "x2": x2, "kind": rng.choice(["a", "b"], size=n),
                         "decision_time": pd.date_range("2026-10-01", periods=n, freq="min"),
                         TARGET: (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)})


@pytest.mark.parametrize("kind", ["baseline", "xgboost"])
def test_both_models_follow_the_recent_regime_only_when_weighted(kind: str) -> None:
    frame = regime_change()
    train = frame.iloc[:7000]  # 6000 old rows, 1000 new ones
    valid, test = frame.iloc[7000:7250], frame.iloc[7250:]  # new regime: validation and test stay unweighted
    features, categorical = ["x1", "x2", "kind"], ["kind"]
    weights = recency_weights(train["decision_time"], half_life_hours=2, window_hours=24)  # ~the last 1000 rows

    def fit(w: np.ndarray | None):
        if kind == "baseline":
            return train_baseline(train, features, categorical, valid=valid, sample_weight=w)
        return train_xgboost(train, valid, features, categorical, candidates=[{"max_depth": 2, "eta": 0.1}],
                             sample_weight=w)

    uniform, recent = fit(None), fit(weights)
    # raw scores: what the fit learnt (Platt scaling on the new-regime validation split could flip a ranking)
    auc_uniform = roc_auc_score(test[TARGET], uniform.raw_pd(test))
    auc_recent = roc_auc_score(test[TARGET], recent.raw_pd(test))
    # unweighted, the old regime dominates (the logistic model even ranks the new one backwards)
    assert auc_recent > max(auc_uniform + 0.1, 0.75), (auc_uniform, auc_recent)
    assert "sample_weight" not in uniform.params
    assert recent.params["train_rows_weighted"] == int((weights > 0).sum()) < len(train)
    assert recent.params["train_effective_rows"] < recent.params["train_rows_weighted"]


def test_a_window_of_unit_weights_is_training_on_those_rows() -> None:
    frame = regime_change(seed=1)
    train, test = frame.iloc[:7000], frame.iloc[7000:]
    weights = recency_weights(train["decision_time"], window_hours=30)
    assert 0 < (weights > 0).sum() < len(train)
    windowed = train_baseline(train, ["x1", "x2", "kind"], ["kind"], sample_weight=weights)
    subset = train_baseline(train[weights > 0], ["x1", "x2", "kind"], ["kind"])
    np.testing.assert_allclose(windowed.predict_pd(test), subset.predict_pd(test), rtol=1e-6)
    np.testing.assert_allclose(windowed.contributions(test), subset.contributions(test), rtol=1e-6, atol=1e-9)

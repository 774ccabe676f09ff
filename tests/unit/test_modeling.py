"""Training sets and models on synthetic feature frames (no servers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from creditrisk_assets.modeling.dataset import (
    TARGET,
    TrainingDataError,
    age_band,
    check_training_frame,
    time_split,
)
from creditrisk_assets.modeling.train import train_baseline, train_xgboost

FEATURES = ["x1", "x2", "x3", "kind"]
CATEGORICAL = ["kind"]


def synthetic(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    kind = rng.choice(["a", "b", "c"], size=n)
    logit = -2.5 + 1.2 * x1 - 0.8 * x2 + 0.6 * (x3 > 0.5) + 0.7 * (kind == "c")
    x2[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "kind": kind,
                          "decision_time": pd.date_range("2026-10-01", periods=n, freq="min"),
                          TARGET: (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)})
    frame["split"] = time_split(frame)
    return frame


def test_time_split_is_ordered_and_sized() -> None:
    frame = synthetic(1000)
    assert frame["split"].value_counts().to_dict() == {"train": 700, "valid": 150, "test": 150}
    last_train = frame.loc[frame["split"] == "train", "decision_time"].max()
    assert last_train < frame.loc[frame["split"] == "valid", "decision_time"].min()
    assert frame.loc[frame["split"] == "valid", "decision_time"].max() < frame.loc[frame["split"] == "test", "decision_time"].min()


def test_age_band() -> None:
    assert age_band(pd.Series([18, 24, 25, 64, 65, 90])).tolist() == ["18-24", "18-24", "25-34", "50-64", "65+", "65+"]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda f: f.drop(columns=["x3"]), "feature column"),
    (lambda f: f.head(50), "only 50 applications"),
    (lambda f: f.assign(TARGET=0), "single class"),
])
def test_bad_training_data_gives_one_clear_error(mutate, message: str) -> None:
    with pytest.raises(TrainingDataError, match=message):
        check_training_frame(mutate(synthetic()), FEATURES)


def test_both_models_learn_and_retraining_is_reproducible() -> None:
    frame = synthetic()
    train, valid, test = (frame[frame["split"] == s] for s in ("train", "valid", "test"))
    base = train_baseline(train, FEATURES, CATEGORICAL)
    xgbm = train_xgboost(train, valid, FEATURES, CATEGORICAL, trials=2, time_budget_s=60)
    for model in (base, xgbm):
        assert roc_auc_score(test[TARGET], model.predict_pd(test)) > 0.75, model.kind
    again = train_xgboost(train, valid, FEATURES, CATEGORICAL, trials=2, time_budget_s=60)
    np.testing.assert_array_equal(xgbm.predict_pd(test), again.predict_pd(test))
    np.testing.assert_array_equal(base.predict_pd(test), train_baseline(train, FEATURES, CATEGORICAL).predict_pd(test))
    contribs = xgbm.contributions(test)
    assert contribs.shape == (len(test), len(FEATURES))
    assert np.abs(contribs[:, 0]).mean() > np.abs(contribs[:, 2]).mean()  # x1 matters more than x3
    assert len(xgbm.search) == 2 and "best_iteration" in xgbm.params
    linear = base.contributions(test)
    assert linear.shape == (len(test), len(FEATURES))
    assert np.abs(linear[:, 0]).mean() > np.abs(linear[:, 2]).mean()
    # exact decomposition: contributions sum to the log-odds minus the log-odds at the training mean
    logit = base.model.named_steps["logit"]
    raw = base.raw_pd(test)
    at_mean = logit.intercept_[0] + base.center @ logit.coef_[0]
    np.testing.assert_allclose(linear.sum(axis=1), np.log(raw / (1 - raw)) - at_mean, rtol=1e-6, atol=1e-6)

"""Training sets and models on synthetic feature frames (no servers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from creditrisk_assets.gold.catalogue import Feature, categorical_features, features
from creditrisk_assets.modeling.dataset import (
    ALL_NULL,
    TARGET,
    TrainingDataError,
    age_band,
    check_training_frame,
    no_rows,
    select_features,
    time_split,
)
from creditrisk_assets.modeling.registry import PdModel
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


# ---------------------------------------------------------------------- feature groups left out
#: a small catalogue: two application features, a bureau group, a card group, one of unknown origin
CATALOGUE = [Feature("x1", "double", "", "application"), Feature("kind", "varchar", "", "application"),
             Feature("bureau_count", "bigint", "", "bureau", required=True),
             Feature("bureau_ratio", "double", "", "bureau"), Feature("cc_max", "double", "", "credit_card_balance"),
             Feature("cc_kind", "varchar", "", "credit_card_balance"), Feature("x9", "double", "", "somewhere")]


def lender_frame(n: int = 3000, seed: int = 1) -> pd.DataFrame:
    """Application features with signal; the bureau group as gold gives it for an empty table (count 0,
    ratio null); the card columns all null; ``x9`` all null too."""
    frame = synthetic(n, seed)[["x1", "kind", "decision_time", TARGET, "split"]]
    return frame.assign(bureau_count=0, bureau_ratio=np.nan, cc_max=np.nan, cc_kind=None, x9=np.nan)


def test_groups_without_rows_and_all_null_features_are_left_out() -> None:
    frame = lender_frame()
    rows = {"application": 3000, "bureau": 0, "credit_card_balance": 12}  # "somewhere" is not counted: kept
    sel = select_features(CATALOGUE, rows, frame[frame["split"] == "train"])
    assert sel.features == ["x1", "kind"] and sel.categorical == ["kind"]
    assert sel.groups_absent == ["bureau"]
    assert sel.dropped == {"bureau_count": no_rows("bureau"), "bureau_ratio": no_rows("bureau"),
                           "cc_max": ALL_NULL, "cc_kind": ALL_NULL, "x9": ALL_NULL}
    # null only in the train split is null for training: a later value cannot be learnt
    later = frame.assign(x9=np.where(frame["split"] == "test", 1.0, np.nan))
    assert "x9" in select_features(CATALOGUE, rows, later[later["split"] == "train"]).dropped
    assert "x9" not in select_features(CATALOGUE, rows, later).dropped
    # a group with rows whose features have values is kept
    full = frame.assign(bureau_count=1, bureau_ratio=0.5, cc_max=2.0, cc_kind="a", x9=1.0)
    kept = select_features(CATALOGUE, {**rows, "bureau": 5}, full)
    assert kept.features == [f.name for f in CATALOGUE] and kept.groups_absent == [] and kept.dropped == {}
    assert kept.categorical == ["kind", "cc_kind"]


def test_with_every_group_present_the_selection_is_the_whole_catalogue() -> None:
    catalogue = features()
    frame = pd.DataFrame({f.name: ["a"] if f.data_type == "varchar" else [1.0] for f in catalogue})
    sel = select_features(catalogue, {f.source: 10 for f in catalogue}, frame)
    assert sel.features == [f.name for f in catalogue] and sel.categorical == categorical_features()
    assert sel.groups_absent == [] and sel.dropped == {}
    absent = select_features(catalogue, {"application": 10, "bureau": 0}, frame)
    assert absent.groups_absent == ["bureau"] and absent.dropped
    assert not any(f.source == "bureau" for f in catalogue if f.name in absent.features)
    assert all(f.source == "bureau" for f in catalogue if f.name in absent.dropped)


@pytest.mark.parametrize("kind", ["baseline", "xgboost"])
def test_a_model_trained_without_a_group_needs_none_of_its_columns(kind: str) -> None:
    frame = lender_frame()
    sel = select_features(CATALOGUE, {"application": 1, "bureau": 0}, frame[frame["split"] == "train"])
    train, valid, test = (frame[frame["split"] == s] for s in ("train", "valid", "test"))
    model = (train_baseline(train, sel.features, sel.categorical) if kind == "baseline"
             else train_xgboost(train, valid, sel.features, sel.categorical, trials=1))
    assert model.features == ["x1", "kind"]
    assert roc_auc_score(test[TARGET], model.predict_pd(test)) > 0.7
    # the logged model: the same PDs from the application columns alone, and other columns are ignored
    only_application = test[["x1", "kind"]]
    np.testing.assert_array_equal(PdModel(model).predict(None, only_application), model.predict_pd(test))
    noisy = test.assign(bureau_count=99, cc_max=1e6)
    np.testing.assert_array_equal(PdModel(model).predict(None, noisy), model.predict_pd(test))
    assert model.contributions(only_application).shape == (len(test), 2)


def test_calibration_never_reverses_the_ranking() -> None:
    """Validation that ranks opposite to the model (a regime change) gives a negative Platt slope: refused."""
    from sklearn.metrics import roc_auc_score

    from creditrisk_assets.modeling.train import calibrate

    frame = synthetic(4000, seed=3)
    train, valid = frame[frame["split"] == "train"], frame[frame["split"] == "valid"].copy()
    model = train_baseline(train, FEATURES, CATEGORICAL)
    auc = roc_auc_score(valid[TARGET], model.predict_pd(valid))
    valid[TARGET] = 1 - valid[TARGET]  # the labels flip: any positive-slope map keeps the model's ranking
    calibrated = calibrate(model, valid)
    assert calibrated.platt is None and "would reverse the ranking" in calibrated.params["calibration"]
    assert roc_auc_score(1 - valid[TARGET], calibrated.predict_pd(valid)) == auc

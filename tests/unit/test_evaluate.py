"""Unit tests for the pure PD-model evaluation helpers (no Dagster, no servers)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from creditrisk_assets.modeling.evaluate import (
    calibration,
    calibration_png,
    discrimination,
    fairness,
    global_importance,
    importance_png,
    model_card,
    oracle_gap,
    reason_codes,
    roc_png,
)

# Tiny hand-checkable example; one defaulter ties with one non-defaulter at 0.4.
Y = np.array([0, 0, 1, 1, 0, 1])
P = np.array([0.1, 0.4, 0.4, 0.8, 0.2, 0.7])


# --------------------------------------------------------------------------- discrimination


def test_discrimination_matches_hand_computation() -> None:
    m = discrimination(Y, P)
    # Positive/negative pairs: 0.4 beats 0.1 and 0.2 and ties 0.4 (2.5); 0.8 and 0.7 beat all three.
    assert m["auc"] == pytest.approx(8.5 / 9)
    assert m["gini"] == pytest.approx(2 * 8.5 / 9 - 1)
    # ROC points (fpr, tpr): (0,1/3) (0,2/3) (1/3,1) (2/3,1) (1,1) -> max tpr - fpr = 2/3.
    assert m["ks"] == pytest.approx(2 / 3)
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.36 + 0.04 + 0.04 + 0.09) / 6)
    expected_ll = -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P))
    assert m["log_loss"] == pytest.approx(expected_ll)
    assert m["default_rate"] == pytest.approx(0.5)
    assert m["mean_pd"] == pytest.approx(2.6 / 6)
    assert m["n"] == 6
    assert 0.5 < m["pr_auc"] <= 1.0
    assert set(m) == {"auc", "gini", "ks", "brier", "log_loss", "pr_auc", "default_rate", "mean_pd", "n"}


def test_discrimination_clips_log_loss_for_certain_wrong_predictions() -> None:
    m = discrimination(np.array([0, 1]), np.array([1.0, 0.0]))
    assert math.isfinite(m["log_loss"])
    assert m["log_loss"] == pytest.approx(-math.log(1e-15), rel=1e-4)  # 1 - 1e-15 is inexact in float
    assert m["auc"] == pytest.approx(0.0)


@pytest.mark.parametrize("y", [np.zeros(5), np.ones(5)])
def test_discrimination_single_class_is_a_clear_error(y: np.ndarray) -> None:
    with pytest.raises(ValueError, match="only one class"):
        discrimination(y, np.linspace(0.1, 0.5, 5))


@pytest.mark.parametrize(("y", "p"), [
    (np.array([]), np.array([])),
    (np.array([0, 1]), np.array([0.1])),
    (np.array([0, 2]), np.array([0.1, 0.2])),
    (np.array([0, 1]), np.array([0.1, 1.2])),
    (np.array([0, 1]), np.array([0.1, np.nan])),
])
def test_discrimination_rejects_bad_input(y: np.ndarray, p: np.ndarray) -> None:
    with pytest.raises(ValueError):
        discrimination(y, p)


# --------------------------------------------------------------------------- calibration


def test_calibration_of_a_calibrated_model_is_small_and_doubling_is_large() -> None:
    rng = np.random.default_rng(20240601)
    p = rng.uniform(0.01, 0.4, size=200_000)
    y = (rng.random(p.size) < p).astype(int)

    table, ece = calibration(y, p, bins=10)
    assert list(table.columns) == ["bin", "n", "mean_pd", "observed_rate"]
    assert table["bin"].tolist() == list(range(10))
    assert table["n"].tolist() == [20_000] * 10  # equal-frequency bins
    assert table["mean_pd"].is_monotonic_increasing
    assert ece < 0.01

    _, ece_doubled = calibration(y, np.clip(2 * p, 0, 1), bins=10)
    assert ece_doubled > 0.15
    assert ece_doubled > 10 * ece


def test_calibration_ece_is_hand_computable_and_ties_share_a_bin() -> None:
    y = np.array([0, 1, 0, 0, 1, 1])
    p = np.array([0.2, 0.2, 0.2, 0.6, 0.6, 0.9])
    table, ece = calibration(y, p, bins=3)
    # Three tied 0.2s cannot be split across bins; the remaining values fill the upper bins.
    assert table["n"].tolist() == [3, 2, 1]
    assert table["observed_rate"].tolist() == pytest.approx([1 / 3, 0.5, 1.0])
    expected = 3 / 6 * abs(0.2 - 1 / 3) + 2 / 6 * abs(0.6 - 0.5) + 1 / 6 * abs(0.9 - 1.0)
    assert ece == pytest.approx(expected)

    with pytest.raises(ValueError):
        calibration(y, p, bins=0)


# --------------------------------------------------------------------------- fairness


def _fairness_example() -> tuple[np.ndarray, np.ndarray, pd.Series]:
    # Group A (n=40): 30 approved (3 defaults), 10 rejected (5 defaults) -> approval .75, tpr_good 27/32.
    a_pd = np.r_[np.full(30, 0.1), np.full(10, 0.9)]
    a_y = np.r_[np.ones(3), np.zeros(27), np.ones(5), np.zeros(5)]
    # Group B (n=50): 25 approved (5 defaults), 25 rejected (15 defaults) -> approval .5, tpr_good 20/30.
    b_pd = np.r_[np.full(25, 0.2), np.full(25, 0.7)]
    b_y = np.r_[np.ones(5), np.zeros(20), np.ones(15), np.zeros(10)]
    # Group C (n=5 < 30): nobody approved (one PD exactly at the threshold) -> must be ignored.
    c_pd = np.r_[0.5, np.full(4, 0.95)]
    c_y = np.zeros(5)
    groups = pd.Series(["A"] * 40 + ["B"] * 50 + ["C"] * 5)
    groups.index = np.arange(len(groups))[::-1] + 1000  # positional alignment, not by index
    return np.r_[a_y, b_y, c_y], np.r_[a_pd, b_pd, c_pd], groups


def test_fairness_hand_built_groups() -> None:
    y, p, groups = _fairness_example()
    table, summary = fairness(y, p, groups, threshold=0.5)
    t = table.set_index("group")
    assert t.loc["A", "n"] == 40 and t.loc["B", "n"] == 50 and t.loc["C", "n"] == 5
    assert t.loc["A", "approval_rate"] == pytest.approx(0.75)
    assert t.loc["B", "approval_rate"] == pytest.approx(0.5)
    assert t.loc["C", "approval_rate"] == pytest.approx(0.0)
    assert t.loc["A", "default_rate"] == pytest.approx(8 / 40)
    assert t.loc["B", "default_rate"] == pytest.approx(20 / 50)
    assert t.loc["A", "tpr_good"] == pytest.approx(27 / 32)
    assert t.loc["B", "tpr_good"] == pytest.approx(20 / 30)
    assert not t.loc["C", "considered"]

    # C (approval 0, tpr_good 0) would drive the ratio to 0 if it were not ignored.
    assert summary["approval_rate_ratio"] == pytest.approx(0.5 / 0.75)
    assert summary["equal_opportunity_diff"] == pytest.approx(27 / 32 - 20 / 30)
    assert summary["groups_considered"] == 2


def test_fairness_with_fewer_than_two_large_groups_is_neutral() -> None:
    y, p, groups = _fairness_example()
    keep = groups.to_numpy() != "B"
    _, summary = fairness(y[keep], p[keep], groups[keep], threshold=0.5)
    assert summary["approval_rate_ratio"] == 1.0
    assert summary["equal_opportunity_diff"] == 0.0
    with pytest.raises(ValueError):
        fairness(y, p, groups.iloc[:10], threshold=0.5)


# --------------------------------------------------------------------------- explanations


NAMES = ["income", "dti", "utilisation", "age", "delinq"]


def test_reason_codes_pick_largest_positive_in_order() -> None:
    contribs = np.array([
        [0.5, -1.0, 2.0, 0.1, 0.0],   # 2.0 utilisation, 0.5 income, 0.1 age; 0 and negatives skipped
        [-1.0, -2.0, -3.0, -0.5, 0.0],  # nothing adverse
        [0.3, 0.9, 0.2, 0.8, 0.7],    # all positive: top_k cuts
    ])
    assert reason_codes(contribs, NAMES, top_k=4) == [
        ["utilisation", "income", "age"],
        [],
        ["dti", "age", "delinq", "income"],
    ]
    assert reason_codes(contribs, NAMES, top_k=1) == [["utilisation"], [], ["dti"]]
    assert reason_codes(contribs, NAMES, top_k=10)[2] == ["dti", "age", "delinq", "income", "utilisation"]
    with pytest.raises(ValueError):
        reason_codes(contribs, NAMES[:-1])


def test_reason_codes_match_a_row_by_row_reference() -> None:
    rng = np.random.default_rng(7)
    contribs = rng.normal(size=(2_000, len(NAMES)))
    got = reason_codes(contribs, NAMES, top_k=3)
    for row, codes in zip(contribs, got, strict=True):
        ranked = sorted(((v, NAMES[j]) for j, v in enumerate(row) if v > 0), reverse=True)[:3]
        assert codes == [name for _, name in ranked]


def test_reason_codes_scale_to_100k_rows() -> None:
    contribs = np.random.default_rng(1).normal(size=(100_000, 30))
    codes = reason_codes(contribs, [f"f{i}" for i in range(30)])
    assert len(codes) == 100_000 and all(len(c) <= 4 for c in codes[:100])


def test_global_importance_orders_by_mean_absolute_contribution() -> None:
    contribs = np.array([
        [0.1, -3.0, 1.0, 0.0, 0.2],
        [-0.1, 1.0, -1.0, 0.0, -0.2],
    ])
    imp = global_importance(contribs, NAMES)
    assert list(imp.columns) == ["feature", "mean_abs_contribution"]
    assert imp["feature"].tolist() == ["dti", "utilisation", "delinq", "income", "age"]
    assert imp["mean_abs_contribution"].tolist() == pytest.approx([2.0, 1.0, 0.2, 0.1, 0.0])


# --------------------------------------------------------------------------- plots


def test_png_helpers_return_png_bytes() -> None:
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 500)
    y = (rng.random(500) < p).astype(int)
    table, _ = calibration(y, p)
    imp = global_importance(rng.normal(size=(50, 5)), NAMES)
    before = len(plt.get_fignums())
    for png in (roc_png(y, p, "ROC"), calibration_png(table, "Calibration"), importance_png(imp, "Imp", top=3)):
        assert isinstance(png, bytes) and png.startswith(b"\x89PNG")
    assert len(plt.get_fignums()) == before  # figures are closed


# --------------------------------------------------------------------------- oracle and model card


def test_oracle_gap() -> None:
    assert oracle_gap(0.80, 0.85) == pytest.approx(0.05)
    assert oracle_gap(0.80, None) is None


def _card(oracle: dict[str, float | None], **left_out: object) -> str:
    y, p, groups = _fairness_example()
    ftable, fsummary = fairness(y, p, groups, threshold=0.5)
    return model_card(
        name="pd_xgb",
        version="3",
        intended_use="Rank retail loan applications by probability of default.",
        data={"train_snapshot_id": 111, "test_snapshot_id": 222, "n_train": 1000},
        metrics=discrimination(Y, P),
        calibration_ece=0.0123,
        fairness_summary=fsummary,
        fairness_table=ftable,
        importance=global_importance(np.array([[0.5, -1.0, 2.0, 0.1, 0.0]]), NAMES),
        oracle=oracle,
        limitations=["Trained on simulated data."],
        **left_out,
    )


def test_model_card_sections_values_and_determinism() -> None:
    card = _card({"bayes_optimal_auc": 0.97})
    for heading in ("## Model", "## Intended use", "## Data", "## Performance", "## Calibration",
                    "## Fairness", "## Explanations", "## Limitations"):
        assert heading in card
    assert "0.9444" in card                        # AUC = 8.5 / 9
    assert f"{0.97 - 8.5 / 9:.4f}" in card         # gap to the Bayes-optimal AUC
    assert "gap_to_bayes_optimal_auc" in card
    assert "train_snapshot_id: 111" in card and "222" in card
    assert "0.0123" in card and "utilisation" in card and "Trained on simulated data." in card
    assert card == _card({"bayes_optimal_auc": 0.97})

    no_oracle = _card({"bayes_optimal_auc": None})
    assert "n/a (no oracle)" in no_oracle
    assert f"{0.97 - 8.5 / 9:.4f}" not in no_oracle


def test_model_card_lists_the_feature_groups_and_features_left_out() -> None:
    assert "- Feature groups left out: none\n" in _card({"bayes_optimal_auc": None})
    card = _card({"bayes_optimal_auc": None}, feature_groups_absent=["bureau", "credit_card_balance"],
                 features_dropped={"bureau_credit_count": "source table bureau has no rows",
                                   "bureau_total_debt": "source table bureau has no rows",
                                   "cc_dpd_max": "source table credit_card_balance has no rows",
                                   "ext_source_1": "entirely null in the train split"})
    data = card.split("## Data")[1].split("## Performance")[0]
    assert "- Feature groups left out: bureau (no rows), credit_card_balance (no rows)\n" in data
    assert "- Features left out (source table bureau has no rows): 2: bureau_credit_count, bureau_total_debt\n" in data
    assert "- Features left out (source table credit_card_balance has no rows): 1: cc_dpd_max\n" in data
    assert "- Features left out (entirely null in the train split): 1: ext_source_1\n" in data

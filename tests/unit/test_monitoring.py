"""Monitoring logic with real Evidently: feature drift, prediction drift (PSI/KS), the sensor's rule,
performance windows once labels mature. Seeded data; no Dagster, no servers."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from creditrisk_assets.monitoring.drift import (
    ALL_NULL,
    EMPTY_REFERENCE,
    EMPTY_WINDOW,
    INSUFFICIENT_ROWS,
    MISSING_COLUMN,
    NO_COLUMNS,
    OK,
    ROW_COLUMNS,
    DriftResult,
    bin_shares,
    consecutive_drifted,
    drift_rows,
    feature_drift,
    population_stability_index,
    prediction_drift,
    psi,
    quantile_edges,
)
from creditrisk_assets.monitoring.performance import (
    AWAITING_LABELS,
    ONE_CLASS,
    WINDOW_COLUMNS,
    performance_rows,
    performance_windows,
)

COLUMNS = ["amt_income_total", "credit_income_ratio", "age_years", "owns_car", "name_income_type", "constant"]


def applicants(n: int, seed: int, shift: bool = False) -> pd.DataFrame:
    """Applicant-like features; ``shift`` moves income, the credit ratio and the income type only."""
    rng = np.random.default_rng(seed)
    kinds = np.array(["Working", "Pensioner", "State servant", "Commercial associate"], dtype=object)
    p = [0.2, 0.5, 0.2, 0.1] if shift else [0.5, 0.2, 0.2, 0.1]
    return pd.DataFrame({
        "amt_income_total": rng.lognormal(11.0 + (0.4 if shift else 0.0), 0.5, n),
        "credit_income_ratio": rng.gamma(2.0, 1.5 if shift else 1.0, n),
        "age_years": rng.integers(20, 70, n),
        "owns_car": rng.integers(0, 2, n),
        "name_income_type": kinds[rng.choice(4, n, p=p)],
        "constant": np.ones(n),
    })


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return applicants(3000, seed=1)


@pytest.fixture(scope="module")
def shifted(reference: pd.DataFrame) -> DriftResult:
    return feature_drift(reference, applicants(2000, seed=2, shift=True), COLUMNS, drift_share_threshold=0.3)


# --------------------------------------------------------------------------- feature drift


def test_shifted_window_drifts_on_exactly_the_shifted_columns(shifted: DriftResult) -> None:
    assert shifted.status == OK and shifted.dataset_drifted and shifted.drifted
    assert set(shifted.drifted_columns) == {"amt_income_total", "credit_income_ratio", "name_income_type"}
    assert shifted.share_drifted == pytest.approx(3 / 6)
    by = {c.column: c for c in shifted.columns}
    assert by["amt_income_total"].method == "Wasserstein distance (normed)" and by["amt_income_total"].score > 0.1
    assert by["name_income_type"].kind == "categorical" and by["name_income_type"].threshold == 0.1
    assert by["constant"].score == 0.0 and not by["constant"].drifted  # constant in both: no drift
    assert (shifted.reference_rows, shifted.current_rows, shifted.current_rows_used) == (3000, 2000, 2000)
    assert not shifted.sampled


def test_same_distribution_does_not_drift(reference: pd.DataFrame) -> None:
    r = feature_drift(reference, applicants(2000, seed=3), COLUMNS, drift_share_threshold=0.3)
    assert r.status == OK and not r.dataset_drifted
    assert r.drifted_columns == [] and r.share_drifted == 0.0
    assert all(c.score is not None and c.score < 0.1 for c in r.columns)


def test_html_report_and_flat_rows(shifted: DriftResult) -> None:
    html = shifted.html()
    assert html is not None and "<html" in html.lower() and "credit_income_ratio" in html
    start, end = dt.datetime(2026, 10, 1), dt.datetime(2026, 10, 2)
    rows = drift_rows(start, end, shifted, prediction_drift(np.linspace(0, 1, 2000), np.linspace(0, 1, 2000)))
    assert list(rows.columns) == list(ROW_COLUMNS)
    dataset = rows[(rows["kind"] == "dataset") & (rows["metric"] == "share_drifted")].iloc[0]
    assert dataset["value"] == 0.5 and dataset["drifted"] and dataset["threshold"] == 0.3
    features = rows[rows["kind"] == "feature"]
    assert sorted(features["metric"]) == sorted(COLUMNS)
    assert set(features.loc[features["drifted"].astype(bool), "metric"]) == set(shifted.drifted_columns)
    assert rows[rows["kind"] == "prediction"].set_index("metric").loc["psi", "value"] == pytest.approx(0.0)


@pytest.mark.parametrize(("ref_rows", "cur_rows", "status"), [
    (3000, 0, EMPTY_WINDOW), (0, 3000, EMPTY_REFERENCE), (3000, 1, INSUFFICIENT_ROWS),
    (999, 3000, INSUFFICIENT_ROWS), (0, 0, EMPTY_WINDOW)])
def test_windows_too_small_are_not_computed(ref_rows: int, cur_rows: int, status: str) -> None:
    r = feature_drift(applicants(ref_rows, 1), applicants(cur_rows, 2, shift=True), COLUMNS, drift_share_threshold=0.3)
    assert r.status == status and not r.dataset_drifted and r.share_drifted is None
    assert r.snapshot is None and r.html() is None and r.columns == []
    assert consecutive_drifted([r, r, r], 1) is False


def test_frame_without_columns_is_an_empty_window() -> None:
    r = feature_drift(applicants(3000, 1), pd.DataFrame(), COLUMNS, drift_share_threshold=0.3)
    assert r.status == EMPTY_WINDOW


def test_null_sparse_and_missing_columns_are_skipped_not_drifted(reference: pd.DataFrame) -> None:
    cur = applicants(2000, seed=4, shift=True)
    cur["amt_income_total"] = np.nan  # a broken upstream feature: reported, not "drift"
    cur["name_income_type"] = None
    cur.loc[cur.index[100:], "credit_income_ratio"] = np.nan  # 100 values < min_rows
    r = feature_drift(reference, cur, [*COLUMNS, "not_there"], drift_share_threshold=0.3)
    by = {c.column: c for c in r.columns}
    assert by["amt_income_total"].status == ALL_NULL and by["amt_income_total"].null_share_current == 1.0
    assert by["name_income_type"].status == ALL_NULL
    assert by["credit_income_ratio"].status == INSUFFICIENT_ROWS
    assert by["credit_income_ratio"].null_share_current == pytest.approx(0.95)
    assert by["not_there"].status == MISSING_COLUMN
    assert r.status == OK and r.tested_columns == ["age_years", "owns_car", "constant"]
    assert r.drifted_columns == [] and not r.dataset_drifted


def test_every_column_null_is_no_columns(reference: pd.DataFrame) -> None:
    cur = applicants(2000, seed=5)
    cur[COLUMNS] = None
    r = feature_drift(reference, cur, COLUMNS, drift_share_threshold=0.3)
    assert r.status == NO_COLUMNS and not r.dataset_drifted and r.snapshot is None
    assert {c.status for c in r.columns} == {ALL_NULL}


def test_large_frames_are_sampled_reproducibly() -> None:
    ref, cur = applicants(5000, 1), applicants(4000, 2, shift=True)
    kw = {"drift_share_threshold": 0.3, "min_rows": 200, "sample_rows": 1500}
    a, b = feature_drift(ref, cur, COLUMNS, **kw), feature_drift(ref, cur, COLUMNS, **kw)
    assert a.sampled and (a.reference_rows_used, a.current_rows_used) == (1500, 1500)
    assert (a.reference_rows, a.current_rows) == (5000, 4000)
    assert [c.score for c in a.columns] == [c.score for c in b.columns]
    assert set(a.drifted_columns) == {"amt_income_total", "credit_income_ratio", "name_income_type"}


def test_bad_parameters_are_errors(reference: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="drift_share_threshold"):
        feature_drift(reference, reference, COLUMNS, drift_share_threshold=0)
    with pytest.raises(ValueError, match="sample_rows"):
        feature_drift(reference, reference, COLUMNS, drift_share_threshold=0.3, sample_rows=10)


# --------------------------------------------------------------------------- PSI and prediction drift


def test_psi_known_values() -> None:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5) = 0.25 ln 2 + 0.25 ln 1.5
    assert population_stability_index([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))
    assert population_stability_index([0.1] * 10, [0.1] * 10) == 0.0
    assert population_stability_index([2, 2], [1, 3]) == pytest.approx(0.274653, abs=1e-6)  # counts normalise


def test_psi_bins_are_reference_quantiles() -> None:
    reference = np.arange(1000.0)
    edges = quantile_edges(reference, bins=4)
    assert edges == pytest.approx([249.75, 499.5, 749.25])
    assert bin_shares(reference, edges) == pytest.approx([0.25] * 4)
    current = np.r_[np.arange(0.0, 100.0, 0.2), np.arange(900.0, 1000.0, 0.2)]  # half in the first, half in the last bin
    a = np.array([0.5, 1e-4, 1e-4, 0.5]) / 1.0002  # empty bins floored at 1e-4, renormalised
    assert psi(reference, current, bins=4) == pytest.approx(float(np.sum((a - 0.25) * np.log(a / 0.25))))
    assert bin_shares([249.75, 249.76], edges) == pytest.approx([0.5, 0.5, 0, 0])  # right-closed bins


def test_prediction_drift_stable_and_shifted() -> None:
    rng = np.random.default_rng(11)
    ref = rng.beta(2, 18, 5000)
    same = prediction_drift(ref, rng.beta(2, 18, 5000))
    assert same.status == OK and same.level == "stable" and not same.drifted and same.psi < 0.02
    moved = prediction_drift(ref, rng.beta(4, 16, 5000))
    assert moved.drifted and moved.level == "significant" and moved.psi >= 0.25
    assert moved.ks > same.ks and moved.ks_pvalue < 1e-6
    assert moved.mean_pd_current == pytest.approx(0.2, abs=0.01) and len(moved.edges) == 9


def test_prediction_drift_edge_cases() -> None:
    empty = prediction_drift(np.full(2000, 0.1), np.array([]))
    assert empty.status == EMPTY_WINDOW and not empty.drifted and empty.psi is None
    nans = prediction_drift(np.full(2000, 0.1), [np.nan] * 1500)
    assert nans.status == EMPTY_WINDOW and nans.invalid_rows == 1500
    few = prediction_drift(np.full(2000, 0.1), np.full(20, 0.9))
    assert few.status == INSUFFICIENT_ROWS and not few.drifted
    constant = prediction_drift(np.full(2000, 0.1), np.full(2000, 0.1))
    assert constant.psi == pytest.approx(0.0) and not constant.drifted
    jumped = prediction_drift(np.full(2000, 0.1), np.full(2000, 0.5))  # a stuck model that moved
    assert jumped.drifted and jumped.ks == 1.0


# --------------------------------------------------------------------------- the sensor's rule


def _w(status: str, drifted: bool | None) -> dict[str, object]:
    return {"status": status, "drifted": drifted}


D, N, E, S = _w(OK, True), _w(OK, False), _w(EMPTY_WINDOW, False), _w(INSUFFICIENT_ROWS, None)


@pytest.mark.parametrize(("windows", "k", "expected"), [
    ([D, D], 2, True),
    ([N, D, D], 2, True),
    ([D, N, D], 2, False),
    ([D, D, N], 2, False),
    ([D, E, D], 2, True),  # an empty window neither breaks nor counts
    ([D, E, S, E], 2, False),  # only one computable window
    ([D, D, E, S], 2, True),
    ([E, E, E], 1, False),
    ([], 1, False),
    ([D, D, D], 3, True),
    ([_w(OK, None), D], 2, False),
    ([{"status": OK, "drifted": float("nan")}, D], 2, False),
])
def test_consecutive_drifted(windows: list[dict[str, object]], k: int, expected: bool) -> None:
    assert consecutive_drifted(windows, k) is expected


def test_consecutive_drifted_on_results_and_bad_k(shifted: DriftResult) -> None:
    empty = DriftResult(EMPTY_WINDOW, 0.3, 100, 0)
    assert consecutive_drifted([shifted, empty, shifted], 2) is True
    with pytest.raises(ValueError):
        consecutive_drifted([shifted], 0)


# --------------------------------------------------------------------------- performance


def test_performance_windows_count_only_matured_labels() -> None:
    day = dt.timedelta(days=1)
    start = dt.datetime(2026, 10, 1)
    rng = np.random.default_rng(3)
    n0 = 400
    pd0 = rng.uniform(0.01, 0.6, n0)
    y0 = (rng.uniform(size=n0) < pd0).astype(int)
    preds = pd.DataFrame({
        "application_id": np.arange(n0 + 50 + 30),
        "pd": np.r_[pd0, np.full(50, 0.05), np.full(30, 0.2)],
        "decision_time": [start + dt.timedelta(minutes=3 * i) for i in range(n0)]  # day 0
                         + [start + day + dt.timedelta(hours=1)] * 50  # day 1: all repaid
                         + [start + 3 * day + dt.timedelta(hours=2)] * 30,  # day 3: too young; day 2 empty
    })
    preds.loc[0, "pd"] = np.nan  # an invalid PD: dropped, counted
    as_of = start + 4 * day
    outcomes = pd.DataFrame({
        "application_id": np.r_[np.arange(n0), np.arange(n0, n0 + 50), np.arange(n0 + 50, n0 + 80), [5]],
        "label": np.r_[y0, np.zeros(50, int), np.ones(30, int), [1 - y0[5]]],
        "known_at": [start + 2 * day] * n0 + [start + 2 * day] * 50 + [start + 3 * day + dt.timedelta(hours=5)] * 30
                    + [start + 3 * day],  # a later duplicate of application 5's outcome: ignored
    })
    outcomes.loc[10, "known_at"] = as_of + dt.timedelta(hours=1)  # learnt after as_of: does not count
    w = performance_windows(preds, outcomes, as_of=as_of, maturity=day * 1.5, window=day, start=start,
                            end=start + 4 * day)
    assert list(w.columns) == list(WINDOW_COLUMNS)
    assert list(w["status"]) == [OK, ONE_CLASS, EMPTY_WINDOW, AWAITING_LABELS]
    first = w.iloc[0]
    keep = np.ones(n0, bool)
    keep[[0, 10]] = False
    assert first["n_predictions"] == n0 and first["n_invalid_pd"] == 1
    assert first["n_matured"] == n0 - 1 and first["n_labelled"] == n0 - 2
    assert first["auc"] == pytest.approx(roc_auc_score(y0[keep], pd0[keep]))
    assert first["default_rate"] == pytest.approx(y0[keep].mean()) and first["mean_pd"] == pytest.approx(pd0[keep].mean())
    assert 0 <= first["ece"] < 0.2
    second = w.iloc[1]
    assert pd.isna(second["auc"]) and second["n_defaults"] == 0 and second["ece"] == pytest.approx(0.05)
    assert w.iloc[2]["n_predictions"] == 0
    assert w.iloc[3]["n_predictions"] == 30 and w.iloc[3]["n_labelled"] == 0
    rows = performance_rows(w)
    assert list(rows.columns) == list(ROW_COLUMNS) and len(rows) == 4 * 6
    auc_rows = rows[rows["metric"] == "auc"]
    assert auc_rows["value"].isna().tolist() == [False, True, True, True]


def test_performance_needs_its_columns() -> None:
    with pytest.raises(ValueError, match="known_at"):
        performance_windows(pd.DataFrame(columns=["application_id", "pd", "decision_time"]),
                            pd.DataFrame(columns=["application_id", "label"]), as_of=dt.datetime(2026, 1, 2),
                            maturity=dt.timedelta(0), window=dt.timedelta(days=1), start=dt.datetime(2026, 1, 1),
                            end=dt.datetime(2026, 1, 2))

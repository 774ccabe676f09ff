"""Stability indices: SSI over master-scale grades, CSI per feature; known distributions, edge cases, and the
lake rows on a real DuckLake. Seeded data; no Dagster, no servers."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from creditrisk_assets.monitoring.drift import (
    EMPTY_WINDOW,
    INSUFFICIENT_ROWS,
    MISSING_COLUMN,
    OK,
    UNSUPPORTED_TYPE,
)
from creditrisk_assets.monitoring.loop import (
    STABILITY_TABLE,
    DriftPass,
    WindowReport,
    stability_alert,
    stability_history,
    stability_markdown,
    store_stability_rows,
    worst_csi_markdown,
)
from creditrisk_assets.monitoring.stability import (
    MISSING_BIN,
    ROW_COLUMNS,
    SSI,
    SSI_CHARACTERISTIC,
    STABLE,
    UNSTABLE,
    WATCH,
    csi,
    fit_bins,
    fit_reference,
    stability_level,
    system_stability,
    window_stability,
)
from creditrisk_assets.resources import Lake
from creditrisk_assets.settings import Settings

SCALE = Settings().rating_scale


def psi_formula(expected: list[float], actual: list[float]) -> float:
    return sum((a - e) * math.log(a / e) for e, a in zip(expected, actual, strict=True))


def applicants(n: int, seed: int, shift: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kinds = np.array(["Working", "Pensioner", "State servant", "Commercial associate"], dtype=object)
    return pd.DataFrame({
        "amt_income_total": rng.lognormal(11.0 + (0.5 if shift else 0.0), 0.5, n),
        "age_years": rng.integers(20, 70, n).astype(float),
        "name_income_type": kinds[rng.choice(4, n, p=[0.2, 0.5, 0.2, 0.1] if shift else [0.5, 0.2, 0.2, 0.1])],
        "constant": np.ones(n),
        "empty": np.full(n, np.nan),
    })


# --------------------------------------------------------------------------- levels and known values


@pytest.mark.parametrize(("value", "level"), [(0.0, STABLE), (0.0999, STABLE), (0.10, WATCH), (0.2499, WATCH),
                                              (0.25, UNSTABLE), (3.0, UNSTABLE), (None, None), (math.nan, None)])
def test_conventional_levels(value: float | None, level: str | None) -> None:
    assert stability_level(value) == level


def test_numeric_csi_on_reference_deciles_is_the_known_psi() -> None:
    reference = pd.Series(np.arange(1000.0), name="x")  # deciles: 100 values per bin
    # first half twice, second half once: bins 0-4 hold 2/15 each, bins 5-9 1/15 each
    current = pd.Series(np.r_[np.arange(500.0), np.arange(500.0), np.arange(500.0, 1000.0)], name="x")
    got = csi(reference, current)
    assert got.status == OK and got.bins == 10 and got.current_rows == 1500
    assert got.value == pytest.approx(psi_formula([0.1] * 10, [2 / 15] * 5 + [1 / 15] * 5), rel=1e-12)
    assert got.level == WATCH  # 0.1155


def test_categorical_csi_is_the_known_psi() -> None:
    got = csi(pd.Series(["a"] * 500 + ["b"] * 500, name="k"), pd.Series(["a"] * 250 + ["b"] * 750, name="k"))
    assert got.value == pytest.approx(psi_formula([0.5, 0.5], [0.25, 0.75]), rel=1e-12)  # 0.2747
    assert got.level == UNSTABLE and got.unstable


def test_identical_distributions_give_zero() -> None:
    frame = applicants(3000, seed=1)
    for col in frame.columns:
        assert csi(frame[col], frame[col]).value == 0.0, col
    pd_ = np.random.default_rng(3).beta(1, 15, 3000)
    ssi = system_stability(pd_, pd_, SCALE)
    assert ssi.value == 0.0 and ssi.level == STABLE


def test_same_population_is_stable_and_a_shifted_feature_is_unstable() -> None:
    reference, same, shifted = applicants(5000, 1), applicants(3000, 2), applicants(3000, 3, shift=True)
    ref = fit_reference(reference, list(reference.columns))
    stable = window_stability(ref, np.array([0.05] * 10), same, np.array([0.05] * 10), SCALE, list(reference.columns),
                              min_rows=5)
    assert all(s.level == STABLE for s in stable.computed), stable.worst()
    moved = window_stability(ref, np.array([0.05] * 10), shifted, np.array([0.05] * 10), SCALE,
                             list(reference.columns), min_rows=5)
    by_name = {s.characteristic: s for s in moved.csi}
    assert by_name["amt_income_total"].value > 0.25 and by_name["name_income_type"].value > 0.25
    assert by_name["age_years"].level == STABLE and by_name["constant"].value == 0.0
    assert set(moved.unstable_features) == {"amt_income_total", "name_income_type"}
    assert moved.worst(2)[0].value >= moved.worst(2)[1].value
    assert moved.alert and not stable.alert


def test_constant_feature() -> None:
    ones = pd.Series(np.ones(2000), name="c")
    assert fit_bins(ones).edges == (1.0,)  # deciles merge: at-or-below 1 and above
    assert csi(ones, ones).value == 0.0
    half = pd.Series(np.r_[np.ones(1000), np.full(1000, 2.0)], name="c")
    assert csi(ones, half).value > 0.25


def test_all_null_feature() -> None:
    empty = pd.Series(np.full(2000, np.nan), name="e")
    both = csi(empty, empty)
    assert both.status == OK and both.value == 0.0 and both.bins == 1  # only the missing bin
    filled = csi(empty, pd.Series(np.ones(2000), name="e"))
    assert math.isfinite(filled.value) and filled.value > 0.25  # values appearing is a shift, finitely large
    text = csi(pd.Series([None] * 2000, dtype=object, name="t"), pd.Series(["x"] * 2000, name="t"))
    assert text.status == OK and text.value > 0.25


def test_missing_is_its_own_bin() -> None:
    values = pd.Series(np.arange(1000.0), name="x")
    bins = fit_bins(values)
    labels = bins.labels(pd.Series([np.nan, np.inf, 0.0, 999.0]))
    assert list(labels) == [MISSING_BIN, MISSING_BIN, "bin 0", "bin 9"]
    # a third of the window missing, the rest like the reference
    current = pd.Series(np.r_[np.arange(1000.0), np.full(500, np.nan)], name="x")
    eps = 1e-4  # drift.PSI_EPS: the reference's empty missing bin
    expected = np.array([0.1] * 10 + [eps]) / (1 + eps)
    actual = np.array([1 / 15] * 10 + [1 / 3])
    assert csi(values, current).value == pytest.approx(float(np.sum((actual - expected) * np.log(actual / expected))))


def test_unseen_category_is_its_own_bin() -> None:
    reference = pd.Series(["a"] * 1000 + ["b"] * 1000, name="k")
    got = csi(reference, pd.Series(["a"] * 1000 + ["b"] * 800 + ["c"] * 200, name="k"))
    assert got.bins == 3 and got.value > 0.25


def test_numbers_forced_categorical_are_their_values() -> None:
    codes = pd.Series([1.0, 2.0, 3.0] * 400, name="code")
    assert fit_bins(codes, categorical=True).categories == ("1.0", "2.0", "3.0")
    assert csi(codes, pd.Series([1.0] * 1200, name="code"), categorical=True).bins == 3


def test_statuses_that_are_not_computed() -> None:
    reference = applicants(2000, 1).assign(when=pd.Timestamp("2026-10-01"))
    ref = fit_reference(reference, ["amt_income_total", "when", "absent"])
    small = window_stability(ref, np.full(2000, 0.05), reference.head(10), np.full(10, 0.05), SCALE,
                             ["amt_income_total", "when", "absent"], min_rows=1000)
    assert small.ssi.status == INSUFFICIENT_ROWS and small.ssi.value is None and small.ssi.level is None
    assert [s.status for s in small.csi] == [INSUFFICIENT_ROWS, UNSUPPORTED_TYPE, MISSING_COLUMN]
    assert not small.alert and small.worst() == []
    empty = system_stability(np.full(2000, 0.05), np.array([]), SCALE)
    assert empty.status == EMPTY_WINDOW


# --------------------------------------------------------------------------- SSI


def test_ssi_is_the_psi_of_the_grade_shares() -> None:
    g2, g6 = 0.004, 0.04  # grade 2 is [0.0025, 0.005), grade 6 [0.035, 0.05)
    reference = np.r_[np.full(500, g2), np.full(500, g6)]
    current = np.r_[np.full(250, g2), np.full(750, g6), [np.nan, np.inf]]  # the non-finite PDs are dropped
    got = system_stability(reference, current, SCALE)
    assert (got.characteristic, got.kind, got.bins, got.current_rows) == (SSI_CHARACTERISTIC, SSI, 2, 1000)
    assert got.value == pytest.approx(psi_formula([0.5, 0.5], [0.25, 0.75]), rel=1e-12)


def test_ssi_of_a_riskier_population_is_unstable() -> None:
    rng = np.random.default_rng(5)
    reference = rng.beta(1, 15, 5000)
    assert system_stability(reference, rng.beta(1, 15, 3000), SCALE).level == STABLE
    assert system_stability(reference, rng.beta(1.5, 8, 3000), SCALE).level == UNSTABLE


# --------------------------------------------------------------------------- rows, the lake, the alert


def one_pass(shift: bool, end: str = "2026-10-03 00:00") -> DriftPass:
    reference, current = applicants(3000, 1), applicants(2000, 2, shift=shift)
    ref = fit_reference(reference, list(reference.columns))
    stable = window_stability(ref, np.full(3000, 0.01), current, np.full(2000, 0.01), SCALE,
                              list(reference.columns))
    e = pd.Timestamp(end)
    w = WindowReport(e - pd.Timedelta(hours=24), e, OK, False, 0.0, [], 0.0, "champion_on_gold", 2000, None, stable)
    return DriftPass("3", [w])


def test_rows_and_lake_table_replace_per_window(lake: Lake) -> None:
    p = one_pass(shift=True)
    w = p.windows[0]
    rows = w.stability.rows(w.start.to_pydatetime(), w.end.to_pydatetime())
    assert list(rows.columns) == list(ROW_COLUMNS) and len(rows) == 1 + 5  # the SSI and one CSI per feature
    with lake.connect_lake() as con:
        assert stability_history(con).empty  # no table yet
        store_stability_rows(con, rows, "3")
        store_stability_rows(con, rows, "3")  # a recomputation replaces, never duplicates
        store_stability_rows(con, rows.assign(value=rows["value"] * 2), "4")  # another reference keeps its rows
        n = con.execute(f"SELECT count(*) FROM {STABILITY_TABLE}").fetchone()[0]
        assert n == 2 * len(rows)
        ssi = stability_history(con)
        assert list(ssi["reference_version"]) == ["3", "4"] and set(ssi["characteristic"]) == {SSI_CHARACTERISTIC}
        income = stability_history(con, "amt_income_total")
        assert (income["level"] == UNSTABLE).all() and len(income) == 2


def test_stability_alert_and_markdown() -> None:
    moved, calm = one_pass(shift=True), one_pass(shift=False)
    alert = stability_alert(moved)
    assert alert is not None and alert.kind == "stability"
    assert "amt_income_total" in alert.fields["unstable features"]
    assert alert.payload()["text"].startswith("[creditrisk stability]")
    assert stability_alert(calm) is None
    assert "amt_income_total" in worst_csi_markdown(moved) and "| 10-02 00:00" in stability_markdown(moved)
    assert worst_csi_markdown(DriftPass("3")).startswith("no stability")


def test_window_times_in_rows() -> None:
    p = one_pass(shift=False, end="2026-10-05 12:00")
    w = p.windows[0]
    rows = w.stability.rows(dt.datetime(2026, 10, 4, 12), dt.datetime(2026, 10, 5, 12))
    assert rows["window_end"].eq(dt.datetime(2026, 10, 5, 12)).all()
    assert rows.loc[rows["kind"] == SSI, "value"].iloc[0] == 0.0  # every PD in one grade on both sides


# --------------------------------------------------------------------------- the monitoring pass


def gold_days(start: str, days: int, rows: int, seed: int, shift: bool) -> pd.DataFrame:
    frame = applicants(days * rows, seed, shift=shift).drop(columns=["empty"])
    rng = np.random.default_rng(seed + 100)
    frame["decision_time"] = pd.Timestamp(start) + pd.to_timedelta(rng.uniform(0, days * 24, len(frame)), unit="h")
    frame["TARGET"] = (rng.uniform(size=len(frame)) < 0.08 + 0.1 * (frame["amt_income_total"] < 50_000)).astype(int)
    return frame


def test_run_drift_stores_stability_for_every_window(lake: Lake, folder_store) -> None:
    """run_drift on a real DuckLake gold table and a real (baseline) champion: the stability rows sit beside
    the drift rows, computed on the same reference and window frames."""
    from creditrisk_assets.modeling.train import train_baseline
    from creditrisk_assets.monitoring.loop import Champion, run_drift

    train = gold_days("2026-10-01", 2, 1500, seed=1, shift=False)
    gold = pd.concat([train, gold_days("2026-10-03", 1, 1500, seed=2, shift=False),
                      gold_days("2026-10-04", 1, 1500, seed=3, shift=True)], ignore_index=True)
    gold["sk_id_curr"] = np.arange(len(gold))
    features = ["amt_income_total", "age_years", "name_income_type", "constant"]
    model = train_baseline(train, features, ["name_income_type"])
    with lake.connect_lake() as con:
        def work(c) -> None:
            c.execute("CREATE SCHEMA IF NOT EXISTS lake.gold")
            c.register("g", gold)
            c.execute("CREATE TABLE lake.gold.applicant_features AS SELECT * FROM g")
        Lake.transact(con, work)
        champion = Champion("1", model, None, pd.Timestamp(train["decision_time"].max()).floor("us"))
        p = run_drift(con, folder_store, champion, window_hours=24, lookback=2, drift_share_threshold=0.5,
                      consecutive=2, min_rows=500, scale=SCALE)
        stored = con.execute(f"SELECT window_end, kind, characteristic, value, level, status FROM {STABILITY_TABLE} "
                             "WHERE reference_version = '1' ORDER BY window_end, kind, characteristic").df()
    assert [w.end for w in p.windows] == [pd.Timestamp("2026-10-04"), pd.Timestamp("2026-10-05")]
    calm, moved = (w.stability for w in p.windows)
    assert calm is not None and moved is not None
    assert calm.unstable_features == [] and calm.ssi.level == STABLE
    assert set(moved.unstable_features) == {"amt_income_total", "name_income_type"}
    assert moved.ssi.status == OK and moved.ssi.value > calm.ssi.value  # the riskier population moves the grades
    assert len(stored) == 2 * (1 + len(features)) and (stored["status"] == OK).all()
    latest = stored[stored["window_end"] == pd.Timestamp("2026-10-05")].set_index("characteristic")
    assert latest.loc["amt_income_total", "level"] == UNSTABLE and latest.loc["constant", "value"] == 0.0
    assert stability_alert(p) is not None

"""The drift and performance sensors' decisions, staleness, and the monitoring windows (no Dagster run, no servers)."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from creditrisk_assets.monitoring.drift import EMPTY_WINDOW, OK
from creditrisk_assets.monitoring.loop import windows_to_check
from creditrisk_assets.monitoring.performance import (
    AWAITING_LABELS,
    ONE_CLASS,
    WINDOW_COLUMNS,
    performance_decay,
)
from creditrisk_assets.sensors import PERFORMANCE_REQUEST_TAG, drift_run_request, performance_run_request


def meta(recommended: bool, champion: str = "3", end: str = "2026-10-03 12:00:00") -> dict:
    return {"retrain_recommended": dg.MetadataValue.bool(recommended), "champion_version": dg.MetadataValue.text(champion),
            "pass": dg.MetadataValue.json({"windows": [{"end": "2026-10-03 00:00:00"}, {"end": end}]})}


def test_drift_sensor_requests_one_retrain_per_champion_and_newest_window() -> None:
    assert isinstance(drift_run_request(meta(False), "run10"), dg.SkipReason)
    first = drift_run_request(meta(True), "run11")
    assert isinstance(first, dg.RunRequest)
    assert first.run_key == drift_run_request(meta(True), "run12").run_key  # same evidence: same key, deduplicated
    assert first.run_key != drift_run_request(meta(True, end="2026-10-04 00:00:00"), "run13").run_key
    assert first.run_key != drift_run_request(meta(True, champion="4"), "run14").run_key
    assert first.tags["creditrisk/champion_before"] == "3"


def test_windows_end_at_the_hour_after_the_newest_decision() -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS lake; CREATE SCHEMA lake.gold")
    con.execute("CREATE TABLE lake.gold.applicant_features AS SELECT TIMESTAMP '2026-10-03 23:40' AS decision_time")
    windows = windows_to_check(con, window_hours=12, lookback=3)
    assert windows == [(pd.Timestamp("2026-10-03 00:00") - pd.Timedelta(hours=12), pd.Timestamp("2026-10-03 00:00")),
                       (pd.Timestamp("2026-10-03 00:00"), pd.Timestamp("2026-10-03 12:00")),
                       (pd.Timestamp("2026-10-03 12:00"), pd.Timestamp("2026-10-04 00:00"))]
    con.execute("DELETE FROM lake.gold.applicant_features")
    assert windows_to_check(con, window_hours=12, lookback=3) == []


def perf_windows(*rows: tuple[str, str, int, float | None, float | None]) -> pd.DataFrame:
    """(window end, status, labelled, AUC, ECE) per window, oldest first, as performance_windows returns them."""
    out = []
    for end, status, n, auc, ece in rows:
        row = dict.fromkeys(WINDOW_COLUMNS)
        row.update(window_start=pd.Timestamp(end) - pd.Timedelta(hours=24), window_end=pd.Timestamp(end),
                   status=status, n_labelled=n, auc=auc, ece=ece)
        out.append(row)
    return pd.DataFrame(out, columns=list(WINDOW_COLUMNS))


def decay(frame: pd.DataFrame):  # the default thresholds of Settings
    return performance_decay(frame, min_auc=0.65, max_ece=0.08, min_rows=1000)


def test_performance_decay_judges_the_newest_evaluable_window() -> None:
    healthy = decay(perf_windows(("2026-10-02", OK, 3000, 0.72, 0.02), ("2026-10-03", OK, 2500, 0.70, 0.03)))
    assert healthy is not None and not healthy.decayed and healthy.window_end == pd.Timestamp("2026-10-03")
    low_auc = decay(perf_windows(("2026-10-02", OK, 3000, 0.72, 0.02), ("2026-10-03", OK, 2500, 0.61, 0.03)))
    assert low_auc.decayed and low_auc.reasons == ("AUC 0.610 < 0.65",)
    bad_ece = decay(perf_windows(("2026-10-03", OK, 2500, 0.70, 0.11)))
    assert bad_ece.reasons == ("ECE 0.110 > 0.08",)
    both = decay(perf_windows(("2026-10-03", OK, 2500, 0.60, 0.09)))
    assert len(both.reasons) == 2
    # at the thresholds: not decayed (AUC below the floor, ECE above the ceiling decay)
    assert not decay(perf_windows(("2026-10-03", OK, 2500, 0.65, 0.08))).decayed


def test_performance_decay_ignores_windows_that_say_nothing() -> None:
    # the newest windows await labels, have one class, too few labels or nothing: the older ok window decides
    frame = perf_windows(("2026-10-01", OK, 3000, 0.60, 0.02), ("2026-10-02", OK, 999, 0.50, 0.30),
                         ("2026-10-03", ONE_CLASS, 4000, None, 0.20), ("2026-10-04", AWAITING_LABELS, 0, None, None),
                         ("2026-10-05", EMPTY_WINDOW, 0, None, None))
    got = decay(frame)
    assert got.window_end == pd.Timestamp("2026-10-01") and got.decayed and got.n_labelled == 3000
    assert decay(frame.iloc[1:]) is None  # no evaluable window: no evidence either way
    assert decay(perf_windows()) is None


def test_performance_decay_refuses_thresholds_outside_0_1() -> None:
    with pytest.raises(ValueError, match="min_auc and max_ece"):
        performance_decay(perf_windows(), min_auc=65, max_ece=0.08, min_rows=1000)


def perf_meta(recommended: bool, champion: str = "3", end: str = "2026-10-03 00:00:00") -> dict:
    evidence = {"window_end": end, "reasons": ["AUC 0.610 < 0.65"] if recommended else []}
    return {"retrain_recommended": dg.MetadataValue.bool(recommended), "champion_version": dg.MetadataValue.text(champion),
            "evidence": dg.MetadataValue.json(evidence)}


def test_performance_sensor_requests_one_retrain_per_champion_and_decayed_window() -> None:
    skip = performance_run_request(perf_meta(False), "run10")
    assert isinstance(skip, dg.SkipReason) and "no performance decay" in (skip.skip_message or "")
    first = performance_run_request(perf_meta(True), "run11")
    assert isinstance(first, dg.RunRequest)
    assert first.run_key == performance_run_request(perf_meta(True), "run12").run_key  # same evidence, same key
    assert first.run_key != performance_run_request(perf_meta(True, end="2026-10-04 00:00:00"), "run13").run_key
    assert first.run_key != performance_run_request(perf_meta(True, champion="4"), "run14").run_key
    assert first.tags[PERFORMANCE_REQUEST_TAG] == first.run_key
    assert first.tags["creditrisk/trigger"] == "performance" and first.tags["creditrisk/champion_before"] == "3"
    # never the drift sensor's key: one kind of evidence does not mark the other as handled
    assert first.run_key != drift_run_request(meta(True), "run11").run_key

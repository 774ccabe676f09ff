"""The drift sensor's decision, staleness, and the monitoring windows (no Dagster run, no servers)."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from creditrisk_assets.monitoring.loop import stale_assets, windows_to_check
from creditrisk_assets.sensors import drift_run_request


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


def test_stale_assets() -> None:
    assert stale_assets({"a": 100.0, "b": 10.0, "c": None}, now=200.0, max_lag_s=150) == ["b", "c"]
    assert stale_assets({"a": 100.0}, now=200.0, max_lag_s=150) == []


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

"""The importers' landing writer: one file per table and hour, in the table's landing format, text kept."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pytest

from creditrisk_assets.contracts import LOAN_OUTCOME
from creditrisk_assets.ingest.bronze import ingest_partitions
from creditrisk_assets.ingest.landing_writer import write_hourly
from creditrisk_assets.layout import landing_file_key, parse_landing_key
from creditrisk_assets.resources import Lake, ObjectStore
from creditrisk_assets.settings import Settings
from tests.helpers import read_landed

FORMATS = ("csv", "csv.gz", "jsonl", "jsonl.gz", "parquet")
START = dt.datetime(2026, 10, 1, 22)
# (SK_ID_CURR, TARGET, OUTCOME_TIME, extra, landing hour offset or None): hours 0, 1 and 3 (a new day), 2 empty
ROWS = [
    ("30", "1", "2026-10-01T22:10:00", "007", 0), ("10", "0", "2026-10-01T22:59:59", "1.50", 0),
    ("20", "0", "2026-10-01T23:00:01", "a, \"quoted\" value", 1),
    ("40", "1", "2026-10-02T01:30:00", None, 3), ("50", "0", "2026-10-02T01:31:00", "", 3),
    ("60", "1", "2026-10-02T02:00:00", "no hour: not written", None),
]


def query(con: duckdb.DuckDBPyConnection) -> str:
    con.execute("CREATE OR REPLACE TEMP TABLE src (SK_ID_CURR VARCHAR, TARGET VARCHAR, OUTCOME_TIME VARCHAR, "
                "LEGACY_NOTE VARCHAR, h INTEGER)")
    con.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?)", [list(r) for r in ROWS])
    return (f"SELECT SK_ID_CURR, TARGET, OUTCOME_TIME, LEGACY_NOTE, "
            f"TIMESTAMP '{START:%Y-%m-%d %H:%M:%S}' + to_hours(h) AS _landing_hour FROM src")


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_file_per_hour_in_the_landing_format_with_the_text_kept(folder_store: ObjectStore, settings: Settings,
                                                                      fmt: str) -> None:
    table = dataclasses.replace(LOAN_OUTCOME, landing_format=fmt)  # type: ignore[arg-type]
    con = duckdb.connect()
    counts = write_hourly(con, query(con), table, folder_store)
    hours = [START, START + dt.timedelta(hours=1), START + dt.timedelta(hours=3)]
    expected_keys = [f"landing/loan_outcome/{h:%Y-%m-%d}/{h:%H}/part-00000.{fmt}" for h in hours]
    assert list(counts) == expected_keys  # hour 2 has no rows: no file; the row without an hour is not written
    assert [landing_file_key("loan_outcome", h, fmt) for h in hours] == expected_keys
    assert list(counts.values()) == [2, 1, 2]
    assert sorted(o.key for o in folder_store.list("landing/")) == sorted(expected_keys)
    first = read_landed(expected_keys[0], folder_store.get_bytes(expected_keys[0]))
    # rows ordered by the primary key, the hour column not written, every value's text as the query had it
    assert first == [{"SK_ID_CURR": "10", "TARGET": "0", "OUTCOME_TIME": "2026-10-01T22:59:59", "LEGACY_NOTE": "1.50"},
                     {"SK_ID_CURR": "30", "TARGET": "1", "OUTCOME_TIME": "2026-10-01T22:10:00", "LEGACY_NOTE": "007"}]
    second = read_landed(expected_keys[1], folder_store.get_bytes(expected_keys[1]))
    assert second[0]["LEGACY_NOTE"] == 'a, "quoted" value'
    for key in expected_keys:
        assert parse_landing_key(key) is not None
        assert len(read_landed(key, folder_store.get_bytes(key))) == counts[key]

    # bronze reads what was written: every row arrives
    lake = Lake(settings)
    results = ingest_partitions(folder_store, lake, "loan_outcome", hours, run_id="t", preview_rows=0)
    assert [r.rows for r in results] == [2, 1, 2] and all(r.rejected_files == 0 for r in results)


def test_rerun_writes_the_same_rows_in_the_same_order(folder_store: ObjectStore) -> None:
    table = dataclasses.replace(LOAN_OUTCOME, landing_format="csv")
    con = duckdb.connect()
    first = write_hourly(con, query(con), table, folder_store)
    before = {k: folder_store.get_bytes(k) for k in first}
    second = write_hourly(con, query(con) + " ORDER BY random()", table, folder_store)
    assert second == first and {k: folder_store.get_bytes(k) for k in second} == before


def test_order_by_and_a_query_without_the_hour_column(folder_store: ObjectStore) -> None:
    table = dataclasses.replace(LOAN_OUTCOME, landing_format="csv")
    con = duckdb.connect()
    counts = write_hourly(con, query(con), table, folder_store, order_by=["OUTCOME_TIME"])
    rows = read_landed(next(iter(counts)), folder_store.get_bytes(next(iter(counts))))
    assert [r["SK_ID_CURR"] for r in rows] == ["30", "10"]
    with pytest.raises(ValueError, match="has no _landing_hour column"):
        write_hourly(con, "SELECT 1 AS SK_ID_CURR", table, folder_store)

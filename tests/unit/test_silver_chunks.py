"""Silver over a long window in chronological chunks of hours: the same rows and reasons as one pass."""

from __future__ import annotations

import datetime as dt

import pytest

from creditrisk_assets.contracts import APPLICATION
from creditrisk_assets.ingest.bronze import LINEAGE_COLUMNS, ingest_partition
from creditrisk_assets.quality.runner import bronze_files, chunk_hours, run_silver, values_per_hour
from creditrisk_assets.resources import Lake, ObjectStore
from creditrisk_assets.settings import Settings
from tests.unit.test_silver import app_row, csv_bytes

H0 = dt.datetime(2026, 10, 1, 4)
RUN = [H0 + dt.timedelta(hours=i) for i in range(1, 5)]


def at(hour: dt.datetime, **over: str) -> dict[str, str]:
    return {"DECISION_TIME": f"{hour:%Y-%m-%dT%H}:10:00", **over}


def hours(*offsets: int) -> list[dt.datetime]:
    return [H0 + dt.timedelta(hours=o) for o in offsets]


def test_chunks_are_whole_hours_in_order_under_the_limit() -> None:
    h = hours(0, 1, 2, 3, 4)
    weight = {h[0]: 70, h[1]: 20, h[2]: 200, h[4]: 10}
    assert chunk_hours(list(reversed(h)), weight, 100) == [[h[0], h[1]], [h[2]], [h[3], h[4]]]
    assert chunk_hours(h, weight, 0) == [h]                 # 0: one pass over the window
    assert chunk_hours(h, weight, 1) == [[x] for x in h]    # an hour heavier than the limit is a chunk of its own
    assert chunk_hours([], weight, 100) == [[]]


def test_the_weight_of_an_hour_is_its_bronze_values(folder_store: ObjectStore, settings: Settings) -> None:
    lake = Lake(settings)
    land(folder_store, lake, H0, {"p.csv": csv_bytes([app_row(i, **at(H0)) for i in range(3)]),
                                  "q.csv": csv_bytes([app_row(9, **at(H0))], drop=("AMT_GOODS_PRICE",))})
    files = bronze_files(folder_store, "application", [H0, H0 + dt.timedelta(hours=1)])
    con = lake.connect_lake()
    try:
        weight = values_per_hour(con, files)
    finally:
        con.close()
    columns = len(app_row(0)) + len(LINEAGE_COLUMNS)  # the landed columns and bronze's lineage
    assert weight == {H0: 3 * columns + 1 * (columns - 1)}


def land(store: ObjectStore, lake: Lake, hour: dt.datetime, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        store.put_bytes(f"landing/application/{hour:%Y-%m-%d}/{hour:%H}/{name}", data)
    ingest_partition(store, lake, "application", hour, run_id="b1")


def snapshot_of_run(lake: Lake) -> tuple[list[tuple], list[tuple], list[tuple]]:
    con = lake.connect_lake()
    try:
        silver = con.execute("SELECT * EXCLUDE (_silver_run_id, _ingest_run_id) FROM lake.silver.application "
                             "ORDER BY _partition, _source_sha256, _row_ordinal").fetchall()
        quarantine = con.execute("SELECT partition, source_sha256, row_ordinal, rule, reason, payload "
                                 "FROM lake.silver.quarantine WHERE table_name = 'application' ORDER BY ALL").fetchall()
        events = con.execute("SELECT partition, source_sha256, event, column_name, action, rows_affected "
                             "FROM lake.silver.schema_events WHERE table_name = 'application' ORDER BY ALL").fetchall()
    finally:
        con.close()
    return silver, quarantine, events


@pytest.mark.parametrize(("first", "then"), [(0, 1), (1, 0)], ids=["whole-then-chunked", "chunked-then-whole"])
def test_a_chunked_run_equals_one_pass_row_for_row(folder_store: ObjectStore, settings: Settings, first: int,
                                                   then: int) -> None:
    """Duplicates across chunk boundaries keep their own reasons (exact copy / conflicting key), a key already in
    a silver hour outside the run is still caught, and a rerun over hours already in silver is clean, whichever
    way each run goes (``max_chunk_values`` 1: one hour per chunk, 0: the window at once)."""
    lake = Lake(settings)
    h1, h2, h3, h4 = RUN
    land(folder_store, lake, H0, {"p.csv": csv_bytes([app_row(90, **at(H0))])})
    land(folder_store, lake, h1, {"p.csv": csv_bytes([app_row(1, **at(h1)), app_row(2, **at(h1)),
                                                      app_row(3, **at(h1)), app_row(3, **at(h1))])})
    land(folder_store, lake, h2, {"p.csv": csv_bytes([app_row(1, **at(h1)),                 # exact copy of h1's
                                                      app_row(2, **at(h2)),                 # key of h1, new values
                                                      app_row(4, **at(h2), AMT_CREDIT="lots")]),
                                  "q.csv": csv_bytes([app_row(5, **at(h2))], drop=("AMT_GOODS_PRICE",))})
    land(folder_store, lake, h3, {"p.csv": csv_bytes([app_row(90, **at(h3)), app_row(6, **at(h3))])})  # 90: in H0
    land(folder_store, lake, h4, {"p.csv": csv_bytes([app_row(4, **at(h4)),                 # h2's 4 was bad
                                                      app_row(6, **at(h3)), app_row(2, **at(h4))])})
    run_silver(folder_store, lake, settings, APPLICATION, [H0], "outside")

    one = run_silver(folder_store, lake, settings, APPLICATION, RUN, "first", max_chunk_values=first)
    expected = snapshot_of_run(lake)
    two = run_silver(folder_store, lake, settings, APPLICATION, RUN, "then", max_chunk_values=then)

    assert snapshot_of_run(lake) == expected
    for run in (one, two):
        assert (run.result.bronze_rows, run.result.silver_rows, run.result.quarantined_rows) == (13, 6, 7)
        assert run.result.quarantine_by_rule == {"duplicate_key": 3, "duplicate_row": 3, "type": 1}
        assert [e.event for e in run.result.schema_events] == ["missing_optional_column"]
        assert run.accounting.balanced and run.accounting.partitions == 4
        assert run.result.partitions == ["2026-10-01-05:00", "2026-10-01-06:00", "2026-10-01-07:00",
                                         "2026-10-01-08:00"]
    chunked = one if first else two
    whole = two if first else one
    assert chunked.result.snapshot_id is not None and whole.result.snapshot_id is not None
    # one lake snapshot per chunk: 4 for the chunked run, 1 for the whole one
    assert abs(two.result.snapshot_id - one.result.snapshot_id) == (4 if then else 1)
    assert (chunked.result.chunks, whole.result.chunks) == (4, 1)
    reasons = {(r[0][-5:], r[4]) for r in expected[1]}
    assert reasons == {
        ("05:00", "duplicate_row: exact copy of an earlier row"),                        # 3 twice in one file
        ("06:00", "duplicate_row: exact copy of an earlier row"),                        # 1, first seen in h1
        ("06:00", "duplicate_key: same key as an earlier row with different values"),    # 2, first seen in h1
        ("06:00", "type: AMT_CREDIT is not a valid float"),
        ("07:00", "duplicate_key: key already in silver partition 2026-10-01-04:00"),    # 90, outside the run
        ("08:00", "duplicate_row: exact copy of an earlier row"),                        # 6, first seen in h3
        ("08:00", "duplicate_key: same key as an earlier row with different values"),    # 2, first seen in h1
    }

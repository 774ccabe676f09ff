"""Property: whatever bytes land, ingestion does not crash and bronze = silver + quarantine."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditrisk_assets.contracts import APPLICATION, LOAN_OUTCOME
from creditrisk_assets.ingest.bronze import ingest_partition
from creditrisk_assets.layout import bronze_partition_prefix, partition_key
from creditrisk_assets.quality.runner import run_silver
from creditrisk_assets.resources import FolderStore, Lake
from creditrisk_assets.settings import Settings
from tests.unit.test_silver import app_row, csv_bytes

HOUR = dt.datetime(2026, 10, 1, 9)
BASE_CSV = csv_bytes([app_row(i) for i in range(6)])
BASE_JSONL = "\n".join(json.dumps({"SK_ID_CURR": i, "TARGET": i % 2, "OUTCOME_TIME": "2026-10-01T09:00:00"})
                       for i in range(1, 7)).encode() + b"\n"
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")  # C0 controls but tab, LF, CR

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.sampled_from([b",", b'"', b"\n", b"\r", b"\x00", b"\xff",
                                                                          b"{", b"}", b"n/a", b",,,,", b"\x1b",
                                                                          b"\x00\x00\x00", b"\x07", b"\x0c", b"\t"])),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 40)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("duplicate_line"), st.integers(0, 10_000), st.just(0)),
)


def mutate(data: bytes, ops: list[tuple]) -> bytes:
    b = bytearray(data)
    for kind, pos, arg in ops:
        p = pos % (len(b) + 1)
        if kind == "flip" and b:
            b[min(p, len(b) - 1)] = arg
        elif kind == "insert":
            b[p:p] = arg
        elif kind == "delete":
            del b[p:p + arg]
        elif kind == "truncate":
            del b[p:]
        elif kind == "duplicate_line":
            lines = bytes(b).split(b"\n")
            if lines:
                i = p % len(lines)
                lines.insert(i, lines[i])
                b = bytearray(b"\n".join(lines))
    return bytes(b)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(mutation, min_size=1, max_size=6),
       target=st.sampled_from(["csv", "csv.gz", "jsonl"]))
def test_random_corruption_never_crashes_and_always_balances(tmp_path_factory, ops, target) -> None:
    home = Path(tmp_path_factory.mktemp("fuzz"))
    s = Settings.from_env({"CREDITRISK_HOME": str(home)})
    store, lake = FolderStore(s.resolved_store_root), Lake(s)
    table = LOAN_OUTCOME if target == "jsonl" else APPLICATION
    base = BASE_JSONL if target == "jsonl" else BASE_CSV
    data = mutate(base, ops)
    if target == "csv.gz":
        data = mutate(gzip.compress(data, mtime=0), ops[:1])
    store.put_bytes(f"landing/{table.name}/{HOUR:%Y-%m-%d}/{HOUR:%H}/part-0.{target}", data)
    store.put_bytes(f"landing/{table.name}/{HOUR:%Y-%m-%d}/{HOUR:%H}/part-1.{'jsonl' if target == 'jsonl' else 'csv'}",
                    base)  # a good file beside the bad one must still go through
    bronze = ingest_partition(store, lake, table.name, HOUR)
    assert all(f.status in ("accepted", "accepted_with_warnings", "empty", "rejected") for f in bronze.files)
    assert any(f.rows == 6 for f in bronze.files)
    assert not control_characters_in_bronze(store, lake, table.name, csv=target != "jsonl")
    run = run_silver(store, lake, s, table, [HOUR], "fuzz")
    acc = run.accounting
    assert acc.balanced, acc
    assert acc.bronze_rows == bronze.rows
    assert run.result.partitions == [partition_key(HOUR)]


def control_characters_in_bronze(store: FolderStore, lake: Lake, table: str, csv: bool) -> list[str]:
    """Bronze strings holding a raw control character: none may (CSV: any column; JSONL: the raw lines, as
    a JSON escape such as \\u0007 is valid text whose value is the data's business)."""
    keys = [o.key for o in store.list(bronze_partition_prefix(table, HOUR))]
    if not keys:
        return []
    con = lake.connect()
    try:
        files = ", ".join(f"'{store.uri(k)}'" for k in keys)
        frame = con.execute(f"SELECT * FROM read_parquet([{files}], union_by_name=true)").df()
    finally:
        con.close()
    columns = frame.select_dtypes("object") if csv else frame[["_raw_line"]]
    strings: pd.Series = columns.stack().dropna().astype(str)
    return strings[strings.str.contains(CONTROL)].tolist()

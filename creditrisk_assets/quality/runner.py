"""One call per table and partition range: bronze files → silver + quarantine, then accounting."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..contracts import Table
from ..layout import bronze_table_prefix, parse_bronze_key, partition_key
from ..resources import Lake, ObjectStore
from ..settings import Settings
from .silver import Accounting, SilverResult, account_rows, build_silver, ensure_lake_tables, write_silver


def bronze_uris(store: ObjectStore, table: str, hours: list[dt.datetime]) -> list[str]:
    wanted = set(hours)
    out = []
    for o in store.list(bronze_table_prefix(table)):
        parsed = parse_bronze_key(o.key)
        if parsed and parsed[1] in wanted:
            out.append(store.uri(o.key))
    return out


def policy_for(table: Table, settings: Settings) -> str:
    return settings.schema_policy or table.schema_policy


@dataclass
class SilverRun:
    result: SilverResult
    accounting: Accounting


def run_silver(store: ObjectStore, lake: Lake, settings: Settings, table: Table, hours: list[dt.datetime],
               run_id: str) -> SilverRun:
    partitions = [partition_key(h) for h in hours]
    uris = bronze_uris(store, table.name, hours)
    con = lake.connect_lake()
    try:
        ensure_lake_tables(con, table)
        result = build_silver(con, table, uris, partitions, policy_for(table, settings), settings.pii_key, run_id)
        result.snapshot_id = write_silver(con, table, partitions)
        accounting = account_rows(con, table, uris, partitions)
    finally:
        con.close()
    return SilverRun(result, accounting)


def ingest_to_silver(store: ObjectStore, lake: Lake, settings: Settings, hours: list[dt.datetime],
                     run_id: str) -> dict[str, SilverRun]:
    """Landing → bronze → silver for every table over ``hours``, without Dagster (tests, benchmarks)."""
    from ..contracts import TABLES
    from ..ingest.bronze import ingest_partitions

    runs = {}
    for table in TABLES.values():
        ingest_partitions(store, lake, table.name, hours, run_id=run_id, preview_rows=0)
        runs[table.name] = run_silver(store, lake, settings, table, hours, run_id)
    return runs

"""One call per table and partition range: bronze files → silver + quarantine, then accounting."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from ..contracts import Table
from ..layout import bronze_table_prefix, parse_bronze_key, partition_key
from ..resources import Lake, ObjectStore
from ..settings import Settings
from .silver import (
    Accounting,
    SilverResult,
    account_rows,
    build_silver,
    ensure_lake_tables,
    lit,
    write_silver,
)


@dataclass(frozen=True)
class BronzeFile:
    hour: dt.datetime
    uri: str


def bronze_files(store: ObjectStore, table: str, hours: list[dt.datetime]) -> list[BronzeFile]:
    """The bronze files of ``table`` for ``hours``."""
    wanted = set(hours)
    out = []
    for o in store.list(bronze_table_prefix(table)):
        parsed = parse_bronze_key(o.key)
        if parsed and parsed[1] in wanted:
            out.append(BronzeFile(parsed[1], store.uri(o.key)))
    return out


def bronze_uris(store: ObjectStore, table: str, hours: list[dt.datetime]) -> list[str]:
    return [f.uri for f in bronze_files(store, table, hours)]


#: Working memory per bronze value (a row × a column) of a chunk while silver types, validates and ranks it, from
#: the peak RSS of chunked runs over the interpreter's own (~250 MB): 66-76 bytes a value measured at the cost
#: curve's 10M rows (bench/RESULTS.md; one pass over a whole window measured 36-47).
VALUE_BYTES = 64


def values_per_hour(con: duckdb.DuckDBPyConnection, files: list[BronzeFile]) -> dict[dt.datetime, int]:
    """Bronze values (rows × columns, from the Parquet footers: no data is read) per hour."""
    if not files:
        return {}
    hour_of = {f.uri: f.hour for f in files}
    out: dict[dt.datetime, int] = {}
    listed = ", ".join(lit(u) for u in hour_of)
    # one row per row group and column chunk: its values, nulls included
    for uri, values in con.execute(f"SELECT file_name, sum(num_values) FROM parquet_metadata([{listed}]) "
                                   "GROUP BY file_name").fetchall():
        out[hour_of[uri]] = out.get(hour_of[uri], 0) + int(values)
    return out


def chunk_hours(hours: list[dt.datetime], weight: dict[dt.datetime, int], max_weight: int) -> list[list[dt.datetime]]:
    """``hours`` in chronological order, cut into runs of whole hours whose ``weight`` adds up to at most
    ``max_weight`` (an hour heavier than that is a chunk of its own; ``max_weight`` 0: one chunk). Always at least
    one chunk."""
    ordered = sorted(set(hours))
    if max_weight <= 0 or not ordered:
        return [ordered]
    chunks: list[list[dt.datetime]] = [[]]
    held = 0
    for h in ordered:
        w = weight.get(h, 0)
        if chunks[-1] and held + w > max_weight:
            chunks.append([])
            held = 0
        chunks[-1].append(h)
        held += w
    return chunks


def merge_results(table: str, parts: list[SilverResult]) -> SilverResult:
    """One result for a run from the results of its chunks (the snapshot is the last chunk's)."""
    merged = SilverResult(table, [p for r in parts for p in r.partitions], chunks=len(parts))
    by_rule: dict[str, int] = {}
    for r in parts:
        merged.bronze_rows += r.bronze_rows
        merged.silver_rows += r.silver_rows
        merged.quarantined_rows += r.quarantined_rows
        merged.schema_events += r.schema_events
        for rule, n in r.quarantine_by_rule.items():
            by_rule[rule] = by_rule.get(rule, 0) + n
        merged.snapshot_id = r.snapshot_id
    merged.quarantine_by_rule = dict(sorted(by_rule.items(), key=lambda kv: -kv[1]))
    return merged


def policy_for(table: Table, settings: Settings) -> str:
    return settings.schema_policy or table.schema_policy


@dataclass
class SilverRun:
    result: SilverResult
    accounting: Accounting


def run_silver(store: ObjectStore, lake: Lake, settings: Settings, table: Table, hours: list[dt.datetime],
               run_id: str, max_chunk_values: int | None = None) -> SilverRun:
    """Bronze → silver + quarantine for ``table`` over ``hours``, then the accounting of every hour.

    A window whose bronze values (rows × columns) would take more than ``settings.silver_chunk_mb`` of working
    memory (``VALUE_BYTES`` each) is typed, validated and written in chronological chunks of whole hours, one lake
    snapshot each (``max_chunk_values`` overrides the setting), so memory is bounded by the chunk, not the
    window; the rows and reasons are the same as in one pass (``build_silver``). A run that fails between two
    chunks leaves the earlier chunks' hours written; its rerun replaces them (every write is per partition).
    """
    files = bronze_files(store, table.name, hours)
    partitions = [partition_key(h) for h in sorted(set(hours))]
    policy = policy_for(table, settings)
    limit = settings.silver_chunk_mb * 2**20 // VALUE_BYTES if max_chunk_values is None else max_chunk_values
    con = lake.connect_lake()
    try:
        # one hour is one chunk whatever it weighs: the hourly path reads no footers
        weigh = limit and len(set(hours)) > 1
        chunks = chunk_hours(hours, values_per_hour(con, files) if weigh else {}, limit if weigh else 0)
        ensure_lake_tables(con, table)
        results = []
        for chunk in chunks:
            wanted = set(chunk)
            chunk_parts = [partition_key(h) for h in chunk]
            result = build_silver(con, table, [f.uri for f in files if f.hour in wanted], chunk_parts, policy,
                                  settings.pii_key, run_id, run_partitions=partitions, carry_keys=len(chunks) > 1)
            result.snapshot_id = write_silver(con, table, chunk_parts)
            results.append(result)
        accounting = account_rows(con, table, [f.uri for f in files], partitions)
    finally:
        con.close()
    return SilverRun(merge_results(table.name, results), accounting)


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

"""Write rows to the landing layout, one file per table and hour, in the table's landing format.

Shared by the importers (``creditrisk import homecredit`` / ``creditrisk import table``): they build
a DuckDB query whose columns carry contract names (plus any unclassified pass-through columns) and a
``_landing_hour`` timestamp, and this module writes ``landing/<table>/<YYYY-MM-DD>/<HH>/part-00000.<fmt>``
for every hour that has rows. All in DuckDB (rows staged once sorted by hour, then one ``COPY`` per
hour that reads only its hour's row groups), no Python per row, so a 27-million-row table writes in
one pass over the source. The files are what the bronze assets read: text formats
keep each value's text as the source had it (silver types and checks it).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path

import duckdb
from tqdm import tqdm

from ..contracts import Table
from ..layout import landing_file_key
from ..quality.silver import q
from ..resources import ObjectStore

HOUR_COLUMN = "_landing_hour"
_HOUR_KEY = "_landing_hk"
_COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER true",
    "csv.gz": "FORMAT csv, HEADER true, COMPRESSION gzip",
    "jsonl": "FORMAT json",
    "jsonl.gz": "FORMAT json, COMPRESSION gzip",
    "parquet": "FORMAT parquet, COMPRESSION zstd",
}


def spread_sql(index_sql: str, start: dt.datetime, per_hour: int) -> str:
    """SQL of the decision time that spreading by id gives application index ``index_sql`` (``id - id_base``):
    hour ``start + i // per_hour``, then ``((i % per_hour) + 1) * 3600 // (per_hour + 1)`` seconds into it, so an
    hour's applications are evenly spaced and never on the hour boundary (nor at midnight). The one rule of
    ``creditrisk import homecredit`` and of ``creditrisk import table`` with a constant start."""
    i = f"({index_sql})"
    return (f"(TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}' + to_hours(CAST({i} // {per_hour} AS BIGINT)) "
            f"+ to_seconds(CAST((({i} % {per_hour}) + 1) * 3600 // {per_hour + 1} AS BIGINT)))")


def spread_decision_time(index: int, start: dt.datetime, per_hour: int) -> dt.datetime:
    """``spread_sql`` for one application, in Python (tests, reports)."""
    return start + dt.timedelta(hours=index // per_hour, seconds=((index % per_hour) + 1) * 3600 // (per_hour + 1))


def write_hourly(con: duckdb.DuckDBPyConnection, select_sql: str, table: Table, store: ObjectStore,
                 order_by: list[str] | None = None, progress: bool = False) -> dict[str, int]:
    """Rows of ``select_sql`` (with a ``_landing_hour`` column) → one landing file per hour; {key: rows}.

    The hour column is not written. Rows are ordered by ``order_by`` (default: the table's primary key,
    where present) so a rerun writes the same rows in the same order.
    """
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM ({select_sql})").fetchall()]
    if HOUR_COLUMN not in cols:
        raise ValueError(f"the query for {table.name} has no {HOUR_COLUMN} column")
    data_cols = [c for c in cols if c != HOUR_COLUMN]
    keys = [k for k in (order_by if order_by is not None else list(table.primary_key)) if k in data_cols]
    order = ", ".join([_HOUR_KEY, *(q(k) for k in keys)])
    # the hour key is a TIMESTAMP, not text: the per-hour reads below skip other hours' row groups by their
    # min/max, which DuckDB keeps for strings only as an 8-byte prefix ('2026-10-' for a whole month)
    body = (f"SELECT {', '.join(q(c) for c in data_cols)}, date_trunc('hour', {q(HOUR_COLUMN)}) AS {_HOUR_KEY} "
            f"FROM ({select_sql}) WHERE {q(HOUR_COLUMN)} IS NOT NULL ORDER BY {order}")
    counts: dict[str, int] = {}
    staged = f"_landing_{table.name}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {q(staged)} AS {body}")  # sorted by hour: per-hour reads prune
    try:
        per_hour = con.execute(f"SELECT {_HOUR_KEY}, count(*) FROM {q(staged)} GROUP BY 1 ORDER BY 1").fetchall()
        columns = ", ".join(q(c) for c in data_cols)
        with tempfile.TemporaryDirectory(prefix=f"landing-{table.name}-") as tmp:
            bar = tqdm(per_hour, desc=f"land {table.name}", unit="h", file=sys.stderr, disable=not progress, leave=False)
            for hour, n in bar:
                key = landing_file_key(table.name, hour, table.landing_format)
                path = Path(tmp) / f"{hour:%Y-%m-%dT%H}.{table.landing_format}"
                con.execute(f"COPY (SELECT {columns} FROM {q(staged)} WHERE {_HOUR_KEY} = ? ORDER BY rowid) "
                            f"TO '{path}' ({_COPY_OPTIONS[table.landing_format]})", [hour])
                store.put_file(key, path)
                path.unlink()
                counts[key] = int(n)
            bar.close()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {q(staged)}")
    return counts

"""Erasure of one applicant (GDPR Art. 17) and retention of raw hours.

``forget`` finds an applicant by national id — pseudonymised with the same key as silver, so the
clear id is never stored or printed — and erases every row about their applications from the lake
(silver, quarantine, gold, the prediction log and any other lake table keyed by application id),
from the raw prediction-log batches and batch-score files in the object store, and then makes the
erasure physical in the lake:

1. one DuckLake ``DELETE`` per table, all in one transaction (one snapshot);
2. ``ducklake_rewrite_data_files(..., delete_threshold => 0)`` on every table that ever held a
   row of theirs: DuckLake deletes are delete files, so without this the row stays in the data
   file the *current* snapshot still reads (masked by the delete file);
3. ``ducklake_expire_snapshots`` of exactly the snapshots from the first one in which any of their
   rows was inserted up to (not including) the current one: every such snapshot references an old
   file holding the row. Time travel to those snapshots ends (``AT (VERSION => n)`` fails with
   "No snapshot found"); snapshots from before their first row stay readable;
4. ``ducklake_cleanup_old_files(cleanup_all => true)`` deletes the files no snapshot references;
5. every data file the catalog still lists for those tables (any snapshot) is read back and
   searched; files still holding a row are reported in ``ForgetReport.residual_files`` (empty
   when the erasure is physical), and the catalog's min/max statistics are searched for the
   applicant's pseudonyms (``catalog_stats_residue``: DuckLake keeps table-level min/max as
   written and does not narrow them after deletes);
6. a SQLite catalog is ``VACUUM``-ed so deleted catalog rows (per-file min/max strings) do not
   survive in free pages (best effort: skipped while another process holds a lock).

What ``forget`` does not erase (by design or because it cannot): bronze and landing (the raw zone,
clear PII as landed: the control is ``apply_retention``); noncurrent object versions in a versioned
bucket (bounded by the bucket's lifecycle rule); MLflow artefacts (input examples, reason-code
samples) and models already trained; prediction-log rows scored from feature values without an
application id (``applicant_hash`` is null, nothing links them); a malformed quarantined line of a
table without PII is matched by the application / bureau ids appearing as a whole number in it
(conservative: a line where the same number appears in another field is erased too); a malformed
``application`` line is matched through the bronze line that contains the national id (once
retention has deleted that bronze file, such a quarantine row can no longer be linked).

``apply_retention`` deletes landing and bronze objects, and raw prediction-log batches, of every
hour that ended at least ``retention_days`` before ``now``; deletes prediction-log lake rows of those
hours, rewrites that table's data files and expires lake snapshots older than the
cutoff (so time travel reaches back ``retention_days``), then cleans up unreferenced files.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .ingest.bronze import MALFORMED_SUFFIX
from .layout import (
    BATCH_SCORES_PREFIX,
    BRONZE_PREFIX,
    LANDING_PREFIX,
    PREDICTION_LOG_PREFIX,
    bronze_table_prefix,
    partition_hour_of_key,
)
from .quality.pii import hmac_sql, pseudonymise
from .quality.silver import lit, q
from .resources import LAKE_ALIAS, Lake, ObjectStore
from .settings import Settings

META = f"__ducklake_metadata_{LAKE_ALIAS}"
RAW_PREFIXES = (LANDING_PREFIX, BRONZE_PREFIX, PREDICTION_LOG_PREFIX)
#: silver tables whose rows carry no applicant data (per-file schema events)
SKIP_TABLES = {("silver", "schema_events")}


@dataclass
class ForgetReport:
    """What ``forget`` erased; keys of ``deleted`` are ``schema.table`` for lake tables and the
    object-store prefix for raw files (rows removed from them)."""

    applications: int = 0
    deleted: dict[str, int] = field(default_factory=dict)
    raw_files_rewritten: int = 0
    raw_files_deleted: int = 0
    snapshots_expired: int = 0
    lake_files_removed: int = 0
    residual_files: list[str] = field(default_factory=list)
    catalog_stats_residue: list[str] = field(default_factory=list)
    catalog_vacuumed: bool = False

    @property
    def total_rows(self) -> int:
        return sum(self.deleted.values())

    def lines(self) -> list[str]:
        """Human-readable lines (counts only: never an identifier)."""
        out = [f"applications found: {self.applications}"]
        out += [f"  {name}: {n} row(s) deleted" for name, n in sorted(self.deleted.items())]
        out += [f"raw files rewritten: {self.raw_files_rewritten}, deleted: {self.raw_files_deleted}",
                f"lake snapshots expired: {self.snapshots_expired}, old lake files removed: {self.lake_files_removed}",
                f"live lake files still holding an erased row: {len(self.residual_files)}",
                f"catalog statistics still holding a pseudonym: {len(self.catalog_stats_residue)}",
                f"sqlite catalog vacuumed: {self.catalog_vacuumed}"]
        return out


@dataclass(frozen=True)
class _Target:
    schema: str
    table: str
    predicate: str  # SQL over the table's own columns: the applicant's rows

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def ref(self) -> str:
        return f"{LAKE_ALIAS}.{q(self.schema)}.{q(self.table)}"


def _in(expr: str, values: Iterable[object]) -> str:
    vals = sorted({str(v) if isinstance(v, int) else lit(str(v)) for v in values})
    return f"{expr} IN ({', '.join(vals)})" if vals else "false"


def _json_num(path: str) -> str:
    return f"TRY_CAST(replace(json_extract_string(payload, '$.{path}'), ',', '.') AS DOUBLE)"


def _token(expr: str, ids: Iterable[int]) -> str:
    alts = "|".join(sorted({str(int(i)) for i in ids}))
    return f"regexp_matches({expr}, '(^|[^0-9]){'(' + alts + ')'}([^0-9]|$)')" if alts else "false"


def _lake_tables(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], set[str]]:
    rows = con.execute("SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                       "WHERE database_name = ? ORDER BY ALL", [LAKE_ALIAS]).fetchall()
    views = {(s, t) for s, t in con.execute("SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ?",
                                             [LAKE_ALIAS]).fetchall()}
    out: dict[tuple[str, str], set[str]] = {}
    for s, t, c in rows:
        if (s, t) not in views:
            out.setdefault((s, t), set()).add(c.lower())
    return out


def _ids(con: duckdb.DuckDBPyConnection, tables: dict[tuple[str, str], set[str]],
         h: str) -> tuple[set[int], set[int]]:
    """(application ids, bureau credit ids) of the applicant, from silver and quarantine."""
    ids: set[int] = set()
    if ("silver", "application") in tables:
        ids |= {int(r[0]) for r in con.execute(
            "SELECT DISTINCT SK_ID_CURR FROM lake.silver.application WHERE NATIONAL_ID_HASH = ?", [h]).fetchall()}
    has_q = ("silver", "quarantine") in tables
    if has_q:
        match = f"json_extract_string(payload, '$.NATIONAL_ID_HASH') = {lit(h)}"
        ids |= {int(r[0]) for r in con.execute(
            f"SELECT DISTINCT {_json_num('SK_ID_CURR')} FROM lake.silver.quarantine "
            f"WHERE table_name = 'application' AND ({match})").fetchall() if r[0] is not None and float(r[0]).is_integer()}
    bureau: set[int] = set()
    if ids and ("silver", "bureau") in tables:
        bureau |= {int(r[0]) for r in con.execute(
            f"SELECT DISTINCT SK_ID_BUREAU FROM lake.silver.bureau WHERE {_in('SK_ID_CURR', ids)}").fetchall()}
    if ids and has_q:
        bureau |= {int(r[0]) for r in con.execute(
            f"SELECT DISTINCT {_json_num('SK_ID_BUREAU')} FROM lake.silver.quarantine "
            f"WHERE table_name = 'bureau' AND {_in(_json_num('SK_ID_CURR'), ids)}").fetchall()
            if r[0] is not None and float(r[0]).is_integer()}
    return ids, bureau


def _quarantine_predicate(h: str, ids: set[int], bureau: set[int], raw_hmacs: set[str]) -> str:
    raw = "json_extract_string(payload, '$._raw_line')"
    raw_hmac = _in("json_extract_string(payload, '$._raw_line_hmac')", raw_hmacs)
    return " OR ".join([
        f"(table_name = 'application' AND (json_extract_string(payload, '$.NATIONAL_ID_HASH') = {lit(h)} "
        f"OR {raw_hmac}))",
        f"(table_name <> 'bureau_balance' AND {_in(_json_num('SK_ID_CURR'), ids)})",
        f"(table_name = 'bureau_balance' AND {_in(_json_num('SK_ID_BUREAU'), bureau)})",
        f"({raw} IS NOT NULL AND table_name <> 'bureau_balance' AND {_token(raw, ids)})",
        f"({raw} IS NOT NULL AND table_name = 'bureau_balance' AND {_token(raw, bureau)})",
    ])


def _targets(tables: dict[tuple[str, str], set[str]], h: str, ids: set[int], bureau: set[int],
             raw_hmacs: set[str], key: str) -> list[_Target]:
    """Every lake table that can hold the applicant's rows, with the predicate selecting them."""
    hashes = {pseudonymise(str(i), key) for i in ids}
    out = []
    for (schema, table), cols in sorted(tables.items()):
        if (schema, table) in SKIP_TABLES:
            continue
        if (schema, table) == ("silver", "quarantine"):
            out.append(_Target(schema, table, _quarantine_predicate(h, ids, bureau, raw_hmacs)))
            continue
        parts = []
        if "national_id_hash" in cols:
            parts.append(f"NATIONAL_ID_HASH = {lit(h)}")
        if "sk_id_curr" in cols:
            parts.append(_in("sk_id_curr", ids))
        elif "sk_id_bureau" in cols:
            parts.append(_in("sk_id_bureau", bureau))
        if "applicant_hash" in cols:
            parts.append(_in("applicant_hash", hashes))
        if parts:
            out.append(_Target(schema, table, " OR ".join(f"({p})" for p in parts)))
    return out


def _malformed_application_hmacs(con: duckdb.DuckDBPyConnection, store: ObjectStore, national_id: str,
                                 key: str) -> set[str]:
    """HMACs of bronze's unparseable ``application`` lines that contain the national id (how the
    quarantine payload of such a line identifies it)."""
    uris = [store.uri(o.key) for o in store.list(bronze_table_prefix("application")) if o.key.endswith(MALFORMED_SUFFIX)]
    if not uris or not national_id.strip():
        return set()
    rows = con.execute(f"SELECT DISTINCT {hmac_sql('_raw_line', key)} FROM read_parquet([{', '.join(lit(u) for u in uris)}], "
                       "union_by_name=true, hive_partitioning=false) WHERE contains(_raw_line, ?)",
                       [national_id.strip()]).fetchall()
    return {r[0] for r in rows if r[0]}


def _first_inserted(con: duckdb.DuckDBPyConnection, t: _Target, oldest: int, current: int) -> int | None:
    """The first snapshot in which one of the applicant's rows was inserted (None: never)."""
    row = con.execute(f"SELECT min(snapshot_id) FROM ducklake_table_insertions({lit(LAKE_ALIAS)}, {lit(t.schema)}, "
                      f"{lit(t.table)}, {oldest}, {current}) WHERE {t.predicate}").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _snapshots(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [int(r[0]) for r in con.execute(
        f"SELECT snapshot_id FROM ducklake_snapshots({lit(LAKE_ALIAS)}) ORDER BY 1").fetchall()]


def _data_files(con: duckdb.DuckDBPyConnection, lake: Lake, schema: str, table: str) -> list[str]:
    """Every data file the catalog lists for the table, in any snapshot, as readable paths."""
    rows = con.execute(
        f"""SELECT s.path, s.path_is_relative, t.path, t.path_is_relative, f.path, f.path_is_relative
            FROM {META}.ducklake_data_file f
            JOIN {META}.ducklake_table t USING (table_id)
            JOIN {META}.ducklake_schema s USING (schema_id)
            WHERE s.schema_name = ? AND t.table_name = ? AND t.end_snapshot IS NULL AND s.end_snapshot IS NULL""",
        [schema, table]).fetchall()
    out = []
    for s_path, s_rel, t_path, t_rel, f_path, f_rel in rows:
        base = lake.data_path
        s_dir = base + s_path if s_rel else s_path
        t_dir = s_dir + t_path if t_rel else t_path
        out.append(t_dir + f_path if f_rel else f_path)
    return out


def _residual(con: duckdb.DuckDBPyConnection, lake: Lake, t: _Target) -> list[str]:
    hits = []
    for path in _data_files(con, lake, t.schema, t.table):
        n = con.execute(f"SELECT count(*) FROM read_parquet({lit(path)}) WHERE {t.predicate}").fetchone()
        if n and n[0]:
            hits.append(path)
    return hits


def _stats_residue(con: duckdb.DuckDBPyConnection, pseudonyms: set[str]) -> list[str]:
    if not pseudonyms:
        return []
    vals = ", ".join(lit(p) for p in sorted(pseudonyms))
    out = []
    for table in ("ducklake_table_column_stats", "ducklake_file_column_stats"):
        n = con.execute(f"SELECT count(*) FROM {META}.{table} WHERE min_value IN ({vals}) OR max_value IN ({vals})"
                        ).fetchone()
        if n and n[0]:
            out.append(f"{table}: {n[0]} row(s)")
    return out


def _vacuum_sqlite_catalog(settings: Settings) -> bool:
    """VACUUM the SQLite catalog (a forgotten value may linger in its free pages) in a child process: Python's
    ``sqlite3`` must not open the catalog in a process where DuckDB's SQLite may have it open (two copies of
    SQLite in one process break each other's locks; see ``Lake.connect_lake``)."""
    catalog = settings.sqlite_lake_catalog
    if catalog is None:
        return False
    code = "import sqlite3, sys; db = sqlite3.connect(sys.argv[1], timeout=10); db.execute('VACUUM'); db.close()"
    done = subprocess.run([sys.executable, "-c", code, catalog], capture_output=True, check=False)
    return done.returncode == 0


def _expire_and_clean(con: duckdb.DuckDBPyConnection, versions: list[int] | None = None,
                      older_than: dt.datetime | None = None) -> tuple[int, int]:
    """(snapshots expired, files removed)."""
    expired = 0
    if versions:
        expired = len(con.execute(f"SELECT * FROM ducklake_expire_snapshots({lit(LAKE_ALIAS)}, "
                                  f"versions => [{', '.join(str(v) for v in versions)}])").fetchall())
    elif older_than is not None:
        expired = len(con.execute(f"SELECT * FROM ducklake_expire_snapshots({lit(LAKE_ALIAS)}, older_than => ?)",
                                  [older_than]).fetchall())
    removed = len(con.execute(f"SELECT * FROM ducklake_cleanup_old_files({lit(LAKE_ALIAS)}, cleanup_all => true)"
                              ).fetchall())
    return expired, removed


def _rewrite(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> None:
    """Rewrite the table's data files that have deletes, without the deleted rows."""
    Lake.transact(con, lambda c: c.execute(
        f"SELECT * FROM ducklake_rewrite_data_files({lit(LAKE_ALIAS)}, {lit(table)}, schema => {lit(schema)}, "
        "delete_threshold => 0)").fetchall())


# ------------------------------------------------------------------------------ raw files

def _filter_parquet_objects(store: ObjectStore, prefix: str, column: str, values: set[str] | set[int],
                            report: ForgetReport) -> int:
    """Rewrite every Parquet object under ``prefix`` without rows whose ``column`` is in ``values``;
    delete it when nothing is left. Returns rows removed."""
    if not values:
        return 0
    removed = 0
    for o in store.list(prefix):
        if not o.key.endswith(".parquet"):
            continue
        table = pq.read_table(io.BytesIO(store.get_bytes(o.key)))
        if column not in table.column_names:
            continue
        hit = pc.fill_null(pc.is_in(table[column], value_set=pa.array(sorted(values)).cast(table[column].type)), False)
        n = int(pc.sum(hit).as_py() or 0)
        if n == 0:
            continue
        kept = table.filter(pc.invert(hit))
        removed += n
        if kept.num_rows == 0:
            store.delete(o.key)
            report.raw_files_deleted += 1
        else:
            buf = io.BytesIO()
            pq.write_table(kept, buf, compression="zstd")
            store.put_bytes(o.key, buf.getvalue())
            report.raw_files_rewritten += 1
    return removed


# ------------------------------------------------------------------------------ forget

def forget(settings: Settings, store: ObjectStore, lake: Lake, national_id: str) -> ForgetReport:
    """Erase the applicant with this national id from silver, quarantine, gold, the prediction log
    (lake table and raw batches) and batch scores, and remove the rows physically from the lake's
    data files (see the module docstring for the steps and what remains). An unknown id gives a
    report with zero counts. Idempotent: a second call finds nothing and changes nothing."""
    key = settings.pii_key
    h = pseudonymise(national_id, key)
    report = ForgetReport()
    con = lake.connect_lake()
    try:
        tables = _lake_tables(con)
        raw_hmacs = _malformed_application_hmacs(con, store, national_id, key)
        ids, bureau = _ids(con, tables, h)
        report.applications = len(ids)
        targets = _targets(tables, h, ids, bureau, raw_hmacs, key)
        snaps = _snapshots(con)
        inserted = {t.name: _first_inserted(con, t, snaps[0], snaps[-1]) for t in targets}
        first = [f for f in inserted.values() if f is not None]

        def work(c: duckdb.DuckDBPyConnection) -> dict[str, int]:
            counts = {}
            for t in targets:
                row = c.execute(f"DELETE FROM {t.ref} WHERE {t.predicate}").fetchone()
                counts[t.name] = int(row[0]) if row else 0
            return counts

        report.deleted = Lake.transact(con, work) if first else {t.name: 0 for t in targets}
        if first:
            touched = [t for t in targets if inserted[t.name] is not None]
            for t in touched:
                _rewrite(con, t.schema, t.table)
            now = _snapshots(con)
            versions = [s for s in now if min(first) <= s < now[-1]]
            report.snapshots_expired, report.lake_files_removed = _expire_and_clean(con, versions=versions)
            report.residual_files = [p for t in touched for p in _residual(con, lake, t)]
        hashes = {pseudonymise(str(i), key) for i in ids}
        report.catalog_stats_residue = _stats_residue(con, {h, *hashes})
    finally:
        con.close()
    report.deleted["objects:" + PREDICTION_LOG_PREFIX] = _filter_parquet_objects(
        store, PREDICTION_LOG_PREFIX, "applicant_hash", {pseudonymise(str(i), key) for i in ids}, report)
    report.deleted["objects:" + BATCH_SCORES_PREFIX] = _filter_parquet_objects(
        store, BATCH_SCORES_PREFIX, "sk_id_curr", ids, report)
    if first:
        report.catalog_vacuumed = _vacuum_sqlite_catalog(settings)
    return report


# ------------------------------------------------------------------------------ retention

def apply_retention(settings: Settings, store: ObjectStore, now: dt.datetime) -> dict[str, int | str]:
    """Delete raw hours older than ``settings.retention_days`` (0: keep everything, returns {}).

    An object is deleted when its hour (from its key: ``landing/<table>/<date>/<HH>/``,
    ``bronze/.../dt=<date>/hh=<HH>/``, ``serving/prediction_log/dt=<date>/hh=<HH>/``) ended at or
    before ``now - retention_days``; prediction-log lake rows of those hours are deleted,
    the table's data files rewritten, snapshots older than the cutoff expired and unreferenced files
    removed. Keys without an hour (oracle, reports, lake files) are never touched here."""
    days = settings.retention_days
    if days <= 0:
        return {}
    now = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
    cutoff = now - dt.timedelta(days=days)
    naive_cutoff = cutoff.astimezone(dt.UTC).replace(tzinfo=None)
    # whole hours only, for files and rows alike: an hour goes once it ended at or before the cutoff
    hour_cutoff = cutoff.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    out: dict[str, int | str] = {"cutoff": cutoff.isoformat()}
    for prefix in RAW_PREFIXES:
        n = 0
        for o in store.list(prefix):
            hour = partition_hour_of_key(o.key)
            if hour is not None and hour + dt.timedelta(hours=1) <= naive_cutoff:
                store.delete(o.key)
                n += 1
        out[f"objects:{prefix}"] = n
    lake = Lake(settings)
    con = lake.connect_lake()
    try:
        rows = 0
        if ("serving", "prediction_log") in _lake_tables(con):
            def work(c: duckdb.DuckDBPyConnection) -> int:
                row = c.execute("DELETE FROM lake.serving.prediction_log WHERE logged_at < ?", [hour_cutoff]).fetchone()
                return int(row[0]) if row else 0

            rows = Lake.transact(con, work)
            if rows:
                _rewrite(con, "serving", "prediction_log")
        out["rows:serving.prediction_log"] = rows
        out["snapshots_expired"], out["lake_files_removed"] = _expire_and_clean(con, older_than=cutoff)
    finally:
        con.close()
    return out


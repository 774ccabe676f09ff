"""Parse one hour of landed files per table into bronze Parquet.

Bronze is the raw snapshot: every value is kept as text exactly as it landed (typing is
silver's job), plus lineage columns. A row that cannot be parsed is kept too, with its raw
line and the parser's error, so that silver can quarantine it with a reason: no row that
entered bronze is ever lost. A file that cannot be read at all (corrupt, truncated) is copied
aside and recorded as ``rejected`` in the ingestion audit log; it never fails the other files.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import logging
import tempfile
import threading
import time
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from ..layout import (
    bronze_audit_key,
    bronze_partition_prefix,
    bronze_rejected_file_key,
    landing_prefix,
    partition_key,
)
from ..resources import Lake, ObjectInfo, ObjectStore

log = logging.getLogger("creditrisk.ingest")

LINEAGE_COLUMNS = ("_source_uri", "_source_sha256", "_landed_at", "_ingest_run_id", "_partition",
                   "_row_ordinal", "_raw_line", "_parse_error")

MALFORMED_SUFFIX = ".malformed.parquet"
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"  # measured: faster and smaller than 3
BOM = b"\xef\xbb\xbf"

AUDIT_COLUMNS = ("table_name", "partition", "source_key", "source_uri", "sha256", "bytes", "landed_at",
                 "rows", "malformed_rows", "status", "reason", "bronze_key", "ingest_run_id", "ingested_at")


class CorruptFileError(ValueError):
    """The file cannot be read at all; the message says why."""


@dataclass
class FileAudit:
    table_name: str
    partition: str
    source_key: str
    source_uri: str
    sha256: str
    bytes: int
    landed_at: dt.datetime
    rows: int = 0
    malformed_rows: int = 0
    status: str = "accepted"  # accepted | accepted_with_warnings | empty | rejected
    reason: str = ""
    bronze_key: str = ""
    ingest_run_id: str = ""
    ingested_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    bronze_files: list[str] = field(default_factory=list)  # the bronze file and, if any, its malformed lines


@dataclass
class PartitionResult:
    table: str
    partition: str
    files: list[FileAudit]
    seconds: float = 0.0
    preview: pd.DataFrame | None = None

    @property
    def rows(self) -> int:
        return sum(f.rows + f.malformed_rows for f in self.files)

    @property
    def malformed_rows(self) -> int:
        return sum(f.malformed_rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def rejected_files(self) -> int:
        return sum(f.status == "rejected" for f in self.files)


def file_format(name: str) -> tuple[str, bool]:
    """``part-0.csv.gz`` → ("csv", True). Raises CorruptFileError for unknown extensions."""
    lower = name.lower()
    gz = lower.endswith(".gz")
    base = lower[:-3] if gz else lower
    for fmt in ("csv", "jsonl", "parquet"):
        if base.endswith("." + fmt) or (fmt == "jsonl" and base.endswith(".json")):
            return fmt, gz
    raise CorruptFileError(f"unknown file type {name!r} (expected .csv, .jsonl or .parquet, optionally .gz)")


def decode_text(data: bytes) -> tuple[str, str]:
    """UTF-8 text from ``data``; a non-UTF-8 file is transcoded from cp1252/latin-1 (lossless) and noted."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start}"
    for enc in ("cp1252", "latin-1"):
        try:
            return data.decode(enc), f"not UTF-8 ({where}): transcoded from {enc}"
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def _gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise CorruptFileError(f"corrupt gzip: {exc}") from exc


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def csv_header(first_line: str) -> list[str]:
    """Column names from a CSV header line; raises CorruptFileError when unusable."""
    import csv

    names = next(csv.reader([first_line]), [])
    names = [n.strip() for n in names]
    if not names or any(n == "" for n in names):
        raise CorruptFileError("CSV header is missing or has an empty column name")
    if len(set(names)) != len(names):
        raise CorruptFileError("CSV header repeats a column name")
    return names


def _csv_source(path: Path, header: list[str]) -> str:
    """A ``read_csv`` over ``path``: all VARCHAR, columns from the header, malformed lines to ``rej_errors``.

    No dialect sniffing: the dialect is fixed (RFC 4180) and the columns come from the header, so a
    small file with a bad line is read the same way as a large one.
    """
    columns = "{" + ", ".join(f"{_sql_str(n)}: 'VARCHAR'" for n in header) + "}"
    return (f"""read_csv({_sql_str(str(path))}, auto_detect=false, header=true, columns={columns}, delim=',',
                quote='"', escape='"', strict_mode=true, null_padding=false, store_rejects=true,
                rejects_table='rej_errors', rejects_scan='rej_scans', max_line_size=10000000)""")


def _write_csv(con: duckdb.DuckDBPyConnection, path: Path, header: list[str], lin: str,
               out: Path) -> tuple[int, int, bool]:
    """One streaming pass: parsed rows → ``out``; malformed lines → ``<out>.malformed.parquet`` (if any).

    Returns (parsed rows, malformed rows, whether DuckDB met bytes that are not UTF-8).
    """
    con.execute("DROP TABLE IF EXISTS rej_errors; DROP TABLE IF EXISTS rej_scans; "
                "CREATE OR REPLACE TEMP SEQUENCE bronze_ordinal START 1")
    try:
        n_ok = con.execute(
            f"""COPY (SELECT *, {lin}, nextval('bronze_ordinal') AS _row_ordinal, NULL::VARCHAR AS _raw_line,
                             NULL::VARCHAR AS _parse_error FROM {_csv_source(path, header)})
                TO {_sql_str(str(out))} ({PARQUET_OPTIONS})"""
        ).fetchone()[0]  # type: ignore[index]
    except duckdb.Error as exc:
        raise CorruptFileError(f"unreadable CSV: {str(exc).splitlines()[0]}") from exc
    con.execute(
        """CREATE OR REPLACE TEMP TABLE malformed AS
           SELECT line::BIGINT AS line, any_value(csv_line) AS raw,
                  string_agg(error_type || ': ' || error_message, '; ') AS error
           FROM rej_errors GROUP BY line"""
    )
    n_bad = con.execute("SELECT count(*) FROM malformed").fetchone()[0]  # type: ignore[index]
    bad_encoding = bool(con.execute("SELECT count(*) FROM rej_errors WHERE error_type = 'INVALID ENCODING'")
                        .fetchone()[0])  # type: ignore[index]
    if bad_encoding:
        return int(n_ok), int(n_bad), True
    if n_bad:
        null_cols = ", ".join(f"NULL::VARCHAR AS {_ident(c)}" for c in header)
        con.execute(f"""COPY (SELECT {null_cols}, {lin}, line AS _row_ordinal, raw AS _raw_line, error AS _parse_error
                             FROM malformed ORDER BY line)
                        TO {_sql_str(str(malformed_path(out)))} ({PARQUET_OPTIONS})""")
    return int(n_ok), int(n_bad), False


def malformed_path(out: Path) -> Path:
    """Where the malformed lines of a CSV source go, beside its bronze file."""
    return out.with_name(out.name.removesuffix(".parquet") + MALFORMED_SUFFIX)


def _parse_jsonl(con: duckdb.DuckDBPyConnection, text: str) -> None:
    lines = pd.DataFrame({"raw": text.split("\n")})
    lines["line"] = range(1, len(lines) + 1)
    lines = lines[lines["raw"].str.strip() != ""]
    con.register("jsonl_lines", lines)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE jl AS
           SELECT line, raw, CASE WHEN json_valid(raw) THEN json_type(raw) = 'OBJECT' ELSE false END AS ok,
                  json_valid(raw) AS valid
           FROM jsonl_lines"""
    )
    con.unregister("jsonl_lines")
    con.execute("CREATE OR REPLACE TEMP TABLE jl_ok AS SELECT line, raw::JSON AS doc FROM jl WHERE ok")
    keys = [r[0] for r in con.execute(
        "SELECT k FROM (SELECT unnest(json_keys(doc)) AS k, line FROM jl_ok) GROUP BY k ORDER BY min(line), k"
    ).fetchall()]
    if keys:
        names = column_names_for_keys(keys)
        cols = ", ".join(f"json_extract_string(doc, {_sql_str(_json_path(k))}) AS {_ident(n)}"
                         for k, n in zip(keys, names, strict=True))
        con.execute(f"CREATE OR REPLACE TEMP TABLE parsed AS SELECT {cols} FROM jl_ok ORDER BY line")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE parsed (_no_columns VARCHAR)")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE malformed AS
           SELECT line, raw, CASE WHEN valid THEN 'NOT_AN_OBJECT: line is JSON but not an object'
                                  ELSE 'INVALID_JSON: line is not valid JSON' END AS error
           FROM jl WHERE NOT ok"""
    )


def column_names_for_keys(keys: list[str]) -> list[str]:
    """Usable, distinct column names for JSON keys (DuckDB names are case-insensitive and non-empty).

    An empty key becomes ``EMPTY_KEY``; a key equal to an earlier one but for case gets ``__2``,
    ``__3``... Silver then sees them as unexpected columns and records them: nothing is dropped.
    """
    seen: set[str] = set()
    out = []
    for k in keys:
        name = k.strip() or "EMPTY_KEY"
        if name.startswith("_"):
            name = "KEY" + name
        base, i = name, 1
        while name.lower() in seen:
            i += 1
            name = f"{base}__{i}"
        seen.add(name.lower())
        out.append(name)
    return out


def _json_path(key: str) -> str:
    """A JSON Pointer (RFC 6901) to ``key``: addresses any key, the empty one included."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _parse_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    try:
        schema = con.execute(f"DESCRIBE SELECT * FROM read_parquet({_sql_str(str(path))})").fetchall()
        cols = ", ".join(f"CAST({_ident(r[0])} AS VARCHAR) AS {_ident(r[0])}" for r in schema)
        con.execute(f"CREATE OR REPLACE TEMP TABLE parsed AS SELECT {cols} FROM read_parquet({_sql_str(str(path))})")
    except duckdb.Error as exc:
        raise CorruptFileError(f"unreadable Parquet: {str(exc).splitlines()[0]}") from exc
    con.execute("CREATE OR REPLACE TEMP TABLE malformed (line BIGINT, raw VARCHAR, error VARCHAR)")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def parse_to_bronze(con: duckdb.DuckDBPyConnection, local: Path, name: str, data: bytes,
                    lineage: dict[str, str], out: Path) -> tuple[int, int, str, list[Path]]:
    """Parse one landed file and write its bronze Parquet to ``out`` (plus malformed lines beside it).

    Returns (parsed rows, malformed rows, warning, files written). Raises CorruptFileError when unreadable.
    """
    fmt, gz = file_format(name)
    warning = ""
    lin = ", ".join(f"{_sql_str(v)} AS {k}" for k, v in lineage.items())
    if fmt == "csv":
        if not gz and b"\r" not in data and not data.startswith(BOM):
            # fast path: DuckDB reads the landed file as it is and says if it meets non-UTF-8 bytes
            first = data[: data.find(b"\n")] if b"\n" in data else data
            header = csv_header(first.decode("utf-8", "replace"))
            _reject_reserved(header)
            n_ok, n_bad, bad_encoding = _write_csv(con, local, header, lin, out)
            if not bad_encoding:
                return n_ok, n_bad, "", [out] + ([malformed_path(out)] if n_bad else [])
        text, warning = decode_text(_gunzip(data) if gz else data)
        if "\r" in text:  # CRLF or mixed line endings: one convention for the parser
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            warning = "; ".join(w for w in (warning, "line endings normalised to LF") if w)
        src = out.with_suffix(".src.csv")
        src.write_text(text, encoding="utf-8")
        header = csv_header(text[: text.find("\n")] if "\n" in text else text)
        _reject_reserved(header)
        n_ok, n_bad, _ = _write_csv(con, src, header, lin, out)
        return n_ok, n_bad, warning, [out] + ([malformed_path(out)] if n_bad else [])
    if fmt == "parquet":
        if gz:
            local = out.with_suffix(".src.parquet")
            local.write_bytes(_gunzip(data))
        _parse_parquet(con, local)
    else:
        text, warning = decode_text(_gunzip(data) if gz else data)
        _parse_jsonl(con, text)
    parsed_cols = [r[0] for r in con.execute("DESCRIBE parsed").fetchall()]
    _reject_reserved(parsed_cols)
    data_cols = ", ".join(_ident(c) for c in parsed_cols)
    null_cols = ", ".join(f"NULL::VARCHAR AS {_ident(c)}" for c in parsed_cols)
    con.execute(
        f"""COPY (
              SELECT {data_cols}, {lin}, row_number() OVER () AS _row_ordinal,
                     NULL::VARCHAR AS _raw_line, NULL::VARCHAR AS _parse_error FROM parsed
              UNION ALL
              SELECT {null_cols}, {lin}, line AS _row_ordinal, raw AS _raw_line, error AS _parse_error
              FROM malformed
            ) TO {_sql_str(str(out))} ({PARQUET_OPTIONS})"""
    )
    n_ok = con.execute("SELECT count(*) FROM parsed").fetchone()[0]  # type: ignore[index]
    n_bad = con.execute("SELECT count(*) FROM malformed").fetchone()[0]  # type: ignore[index]
    return int(n_ok), int(n_bad), warning, [out]


def _reject_reserved(columns: list[str]) -> None:
    if any(c in LINEAGE_COLUMNS for c in columns):
        raise CorruptFileError("file has a column whose name is reserved for lineage (starts with '_')")


def ingest_file(store: ObjectStore, con: duckdb.DuckDBPyConnection, table: str, hour: dt.datetime,
                obj: ObjectInfo, run_id: str, workdir: Path) -> FileAudit:
    """Landing file → bronze Parquet (or a rejected-file record). Never raises for bad data."""
    name = obj.key.rsplit("/", 1)[-1]
    pkey = partition_key(hour)
    with store.local_path(obj.key) as local:
        data = local.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        audit = FileAudit(table, pkey, obj.key, store.uri(obj.key), sha, len(data), obj.last_modified,
                          ingest_run_id=run_id)
        if not data:
            audit.status, audit.reason = "empty", "file is empty (0 bytes)"
            return audit
        out = workdir / f"{Path(name).name.split('.')[0]}-{sha[:12]}.parquet"
        lineage = {"_source_uri": audit.source_uri, "_source_sha256": sha,
                   "_landed_at": obj.last_modified.isoformat(), "_ingest_run_id": run_id, "_partition": pkey}
        try:
            n_ok, n_bad, warning, written = parse_to_bronze(con, local, name, data, lineage, out)
        except CorruptFileError as exc:
            audit.status, audit.reason = "rejected", str(exc)
            store.put_bytes(bronze_rejected_file_key(table, hour, name), data)
            log.warning("bronze file rejected", extra={"table": table, "partition": pkey, "file": obj.key,
                                                       "reason": str(exc)})
            return audit
    audit.rows, audit.malformed_rows = n_ok, n_bad
    reasons = [warning] if warning else []
    if n_bad:
        reasons.append(f"{n_bad} malformed row(s) kept with their parse error for silver to quarantine")
    if reasons:
        audit.status, audit.reason = "accepted_with_warnings", "; ".join(reasons)
    if n_ok + n_bad == 0:
        audit.status, audit.reason = "empty", "file has no data rows"
    prefix = bronze_partition_prefix(table, hour)
    audit.bronze_key = prefix + out.name
    for path in written:
        store.put_file(prefix + path.name, path)
        audit.bronze_files.append(prefix + path.name)
    return audit


def ingest_partition(store: ObjectStore, lake: Lake, table: str, hour: dt.datetime,
                     run_id: str | None = None, preview_rows: int = 5,
                     con: duckdb.DuckDBPyConnection | None = None) -> PartitionResult:
    """Ingest every file landed for ``table`` in ``hour``. Idempotent: the partition is replaced."""
    started = time.perf_counter()
    run_id = run_id or uuid.uuid4().hex
    objs = [o for o in store.list(landing_prefix(table, hour)) if not o.key.rsplit("/", 1)[-1].startswith(".")]
    audits: list[FileAudit] = []
    own = con is None
    if con is None:
        con = lake.connect(threads=1)  # small files: one thread each, partitions run side by side
    preview = None
    try:
        with tempfile.TemporaryDirectory(prefix="creditrisk-bronze-") as tmp:
            for obj in objs:
                audits.append(ingest_file(store, con, table, hour, obj, run_id, Path(tmp)))
            if preview_rows and any(a.bronze_key for a in audits):
                first = next(a for a in audits if a.bronze_key)
                preview = con.execute(
                    f"SELECT * EXCLUDE (_source_uri, _ingest_run_id) FROM read_parquet("
                    f"{_sql_str(str(Path(tmp) / first.bronze_key.rsplit('/', 1)[-1]))}) LIMIT {preview_rows}"
                ).df()
    finally:
        if own:
            con.close()
    keep = {k for a in audits for k in a.bronze_files}
    for old in store.list(bronze_partition_prefix(table, hour)):
        if old.key not in keep:  # files that are no longer in landing, or from an older parser
            store.delete(old.key)
    write_audit(store, table, hour, audits)
    result = PartitionResult(table, partition_key(hour), audits, time.perf_counter() - started, preview)
    log.info("bronze partition ingested", extra={"table": table, "partition": result.partition,
                                                 "files": len(audits), "rows": result.rows,
                                                 "rejected_files": result.rejected_files})
    return result


def write_audit(store: ObjectStore, table: str, hour: dt.datetime, audits: list[FileAudit]) -> None:
    frame = pd.DataFrame([{k: v for k, v in asdict(a).items() if k != "bronze_files"} for a in audits],
                         columns=list(AUDIT_COLUMNS))
    frame = frame.astype({"rows": "int64", "malformed_rows": "int64", "bytes": "int64"})
    with tempfile.TemporaryDirectory(prefix="creditrisk-audit-") as tmp:
        path = Path(tmp) / "audit.parquet"
        frame.to_parquet(path, index=False)
        store.put_file(bronze_audit_key(table, hour), path)


def audit_glob(store: ObjectStore) -> str:
    """A DuckDB-readable glob over the whole ingestion audit log."""
    return store.uri("bronze/_audit").rstrip("/") + "/**/*.parquet"


def read_audit_log(store: ObjectStore, lake: Lake) -> pd.DataFrame:
    """The ingestion audit log as a DataFrame (empty when nothing was ingested yet)."""
    if not store.list("bronze/_audit/"):
        return pd.DataFrame(columns=list(AUDIT_COLUMNS))
    con = lake.connect()
    try:
        return con.execute(
            f"SELECT * FROM read_parquet({_sql_str(audit_glob(store))}, "
            "hive_partitioning=false) ORDER BY table_name, partition, source_key"
        ).df()
    finally:
        con.close()


def ingest_partitions(store: ObjectStore, lake: Lake, table: str, hours: list[dt.datetime],
                      run_id: str | None = None, workers: int = 2, preview_rows: int = 5) -> list[PartitionResult]:
    """``ingest_partition`` for many hours, ``workers`` at a time (DuckDB releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    run_id = run_id or uuid.uuid4().hex
    if workers <= 1 or len(hours) <= 1:
        return [ingest_partition(store, lake, table, h, run_id, preview_rows if i == 0 else 0)
                for i, h in enumerate(hours)]
    local = threading.local()
    connections: list[duckdb.DuckDBPyConnection] = []

    def one(item: tuple[int, dt.datetime]) -> PartitionResult:
        if not hasattr(local, "con"):  # one connection per worker thread, reused across hours
            local.con = lake.connect(threads=1)
            connections.append(local.con)
        i, hour = item
        return ingest_partition(store, lake, table, hour, run_id, preview_rows if i == 0 else 0, con=local.con)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bronze") as pool:
            return list(pool.map(one, enumerate(hours)))
    finally:
        for c in connections:
            c.close()

"""Parse one hour of landed files per table into bronze Parquet.

Bronze is the raw snapshot: every value is kept as text exactly as it landed (typing is
silver's job), plus lineage columns. A row that cannot be parsed is kept too, with its raw
line and the parser's error, so that silver can quarantine it with a reason: no row that
entered bronze is ever lost. A file that cannot be read at all (corrupt, truncated) is copied
aside and recorded as ``rejected`` in the ingestion audit log; it never fails the other files.

A C0 control character other than tab, CR and LF (NUL, ESC, ...) is never legitimate in landed
text: a CSV record or JSONL line holding one becomes a malformed row (``CONTROL_CHARACTER: ...``,
raw text kept with each control character shown as its Unicode control picture, e.g. NUL as
U+2400), the other rows go through. A file whose header, or most of whose records, hold control
characters is binary or corrupt and is rejected whole.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import logging
import re
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from ..layout import (
    BRONZE_AUDIT_PREFIX,
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
# C0 control characters but tab, LF and CR: the same bytes in UTF-8, cp1252 and latin-1
CONTROL_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D))
_NOT_CONTROL_BYTES = bytes(b for b in range(256) if b not in CONTROL_BYTES)
CONTROL_PREFIX = "CONTROL_CHARACTER: "
_CONTROL_RE = re.compile("[" + re.escape(CONTROL_BYTES.decode("ascii")) + "]")
_CONTROL_PICTURES = {b: 0x2400 + b for b in CONTROL_BYTES}  # str.translate: NUL -> U+2400 "␀", ESC -> "␛"
_CONTROL_NAMES = ("NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM "
                  "SUB ESC FS GS RS US").split()
_CSV_FIELD = r'(?:"[^"]*(?:""[^"]*)*"|[^,\n"][^,\n]*|)'  # RFC 4180: quoted (may span lines) or unquoted
_CSV_RECORD = re.compile(f"{_CSV_FIELD}(?:,{_CSV_FIELD})*")

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


def has_control_bytes(data: bytes) -> bool:
    """Whether ``data`` holds a C0 control byte other than tab, LF, CR.

    One C pass that keeps only control bytes, so it writes (almost) nothing: ~0.4 ms per MB,
    a few % of the parse; measured faster than a regex (~5x) or one ``in`` per control byte.
    """
    return bool(data.translate(None, _NOT_CONTROL_BYTES))


def _control_name(char: str) -> str:
    return f"0x{ord(char):02X} ({_CONTROL_NAMES[ord(char)]})"


def control_error(raw: str) -> str:
    """The parse error of a record holding control characters: which bytes, where (1-based character)."""
    first = _CONTROL_RE.search(raw)
    if first is None:
        raise ValueError("control_error needs a record holding a control character")
    found = _CONTROL_RE.findall(raw)
    kinds = ", ".join(f"{_control_name(c)} x{found.count(c)}" for c in sorted(set(found)))
    return (f"{CONTROL_PREFIX}{_control_name(first.group())} at character {first.start() + 1} "
            f"(in all: {kinds}); _raw_line shows each as its Unicode control picture (U+2400 + byte)")


def escape_controls(raw: str) -> str:
    """``raw`` with each control character replaced by its Unicode control picture (safe in Parquet/DuckDB)."""
    return raw.translate(_CONTROL_PICTURES)


def _csv_record_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of every record of a CSV text as the strict RFC 4180 reader splits it (end: its LF or EOF).

    A newline inside a quoted field does not end a record; after bad quoting (``"a"b``) the record
    ends at the next line end, as the reader resynchronises. Blank lines are records (the reader
    counts them in its line numbers).
    """
    pos, n = 0, len(text)
    while pos < n:
        m = _CSV_RECORD.match(text, pos)
        end = m.end() if m else pos
        if end < n and text[end] != "\n":
            nl = text.find("\n", end)
            end = n if nl < 0 else nl
        yield pos, end
        pos = end + 1


def cut_control_records(text: str) -> tuple[str, list[tuple[int, str, str]]]:
    """Take the CSV records holding control characters out of ``text`` (LF line endings).

    Returns the text without them and, per record taken out, (its line number as the CSV reader
    counts them, header = 1; raw record with control pictures; parse error). Raises
    CorruptFileError when the header, or more than half of the data records, hold control
    characters: such a file is binary or corrupt, not a file with a few bad lines.
    """
    hits = [m.start() for m in _CONTROL_RE.finditer(text)]
    if not hits:
        return text, []
    kept: list[str] = []
    bad: list[tuple[int, str, str]] = []
    last, h, number = 0, 0, 0
    for number, (start, end) in enumerate(_csv_record_spans(text), start=1):
        if h == len(hits) or hits[h] >= end:  # hits are sorted and never on a LF: this record holds none
            continue
        while h < len(hits) and hits[h] < end:
            h += 1
        raw = text[start:end]
        if number == 1:
            raise CorruptFileError(f"CSV header holds control character {_control_name(_CONTROL_RE.findall(raw)[0])}: "
                                   "the file looks binary or corrupt")
        bad.append((number, escape_controls(raw), control_error(raw)))
        kept.append(text[last:start])
        last = end + 1
    _reject_mostly_control(len(bad), number - 1, "data records")
    kept.append(text[last:])
    return "".join(kept), bad


def _reject_mostly_control(n_bad: int, n_records: int, what: str) -> None:
    if 2 * n_bad > n_records:
        raise CorruptFileError(f"{n_bad} of {n_records} {what} hold control characters: "
                               "the file looks binary or corrupt")


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
               out: Path, cut: list[tuple[int, str, str]] | None = None) -> tuple[int, int, bool]:
    """One streaming pass: parsed rows → ``out``; malformed lines → ``<out>.malformed.parquet`` (if any).

    ``cut``: records already taken out of ``path`` (``cut_control_records``), written as malformed
    lines too; the reader's line numbers are mapped back to those of the landed file.
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
    if cut:
        # cut record j (0-based) at landed line c_j: reader lines >= c_j - j were after it, one line further down
        con.register("control_cut", pd.DataFrame(
            [(line, raw, error, line - j) for j, (line, raw, error) in enumerate(cut)],
            columns=["line", "raw", "error", "at"]))
        con.execute(
            """CREATE OR REPLACE TEMP TABLE malformed AS
               SELECT m.line + (SELECT count(*) FROM control_cut c WHERE c.at <= m.line) AS line, m.raw, m.error
               FROM malformed m
               UNION ALL SELECT line::BIGINT, raw::VARCHAR, error::VARCHAR FROM control_cut"""
        )
        con.unregister("control_cut")
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


def _parse_jsonl(con: duckdb.DuckDBPyConnection, text: str, control: bool = False) -> int:
    """Lines of ``text`` → temp tables ``parsed`` and ``malformed``. Returns how many lines hold control characters.

    ``control``: whether ``text`` may hold control characters (the caller checked the bytes); a line
    holding one is malformed, kept with control pictures. Raises CorruptFileError when most lines do.
    """
    raw = text.split("\n")
    columns: dict[str, object] = {"raw": raw}
    n_control, ctrl = 0, "NULL::VARCHAR"
    if control:
        errors: list[str | None] = [None] * len(raw)
        for i, line in enumerate(raw):
            if _CONTROL_RE.search(line):
                errors[i], raw[i] = control_error(line), escape_controls(line)
                n_control += 1
        columns["control_error"], ctrl = pd.Series(errors, dtype="string"), "control_error::VARCHAR"
    lines = pd.DataFrame(columns)
    lines["line"] = range(1, len(lines) + 1)
    lines = lines[lines["raw"].str.strip() != ""]  # a line of control pictures is not blank: it stays
    if n_control:
        _reject_mostly_control(n_control, len(lines), "JSONL lines")
    con.register("jsonl_lines", lines)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE jl AS
           SELECT line, raw, {ctrl} AS control_error,
                  CASE WHEN {ctrl} IS NOT NULL OR NOT json_valid(raw) THEN false
                       ELSE json_type(raw) = 'OBJECT' END AS ok,
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
           SELECT line, raw, CASE WHEN control_error IS NOT NULL THEN control_error
                                  WHEN valid THEN 'NOT_AN_OBJECT: line is JSON but not an object'
                                  ELSE 'INVALID_JSON: line is not valid JSON' END AS error
           FROM jl WHERE NOT ok"""
    )
    return n_control


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
        if not gz and b"\r" not in data and not data.startswith(BOM) and not has_control_bytes(data):
            # fast path: DuckDB reads the landed file as it is and says if it meets non-UTF-8 bytes
            first = data[: data.find(b"\n")] if b"\n" in data else data
            header = csv_header(first.decode("utf-8", "replace"))
            _reject_reserved(header)
            n_ok, n_bad, bad_encoding = _write_csv(con, local, header, lin, out)
            if not bad_encoding:
                return n_ok, n_bad, "", [out] + ([malformed_path(out)] if n_bad else [])
        raw = _gunzip(data) if gz else data
        text, warning = decode_text(raw)
        if "\r" in text:  # CRLF or mixed line endings: one convention for the parser
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            warning = "; ".join(w for w in (warning, "line endings normalised to LF") if w)
        cut: list[tuple[int, str, str]] = []
        if has_control_bytes(raw):
            text, cut = cut_control_records(text)
            if cut:
                warning = "; ".join(w for w in (warning, _control_warning(cut)) if w)
        src = out.with_suffix(".src.csv")
        src.write_text(text, encoding="utf-8")
        header = csv_header(text[: text.find("\n")] if "\n" in text else text)
        _reject_reserved(header)
        n_ok, n_bad, _ = _write_csv(con, src, header, lin, out, cut)
        return n_ok, n_bad, warning, [out] + ([malformed_path(out)] if n_bad else [])
    if fmt == "parquet":
        if gz:
            local = out.with_suffix(".src.parquet")
            local.write_bytes(_gunzip(data))
        _parse_parquet(con, local)
    else:
        raw = _gunzip(data) if gz else data
        text, warning = decode_text(raw)
        n_control = _parse_jsonl(con, text, control=has_control_bytes(raw))
        if n_control:
            warning = "; ".join(w for w in (warning, f"control characters in {n_control} line(s)") if w)
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


def _control_warning(cut: list[tuple[int, str, str]]) -> str:
    lines = ", ".join(str(line) for line, _, _ in cut[:5]) + (", ..." if len(cut) > 5 else "")
    return f"control characters in {len(cut)} record(s) (line {lines})"


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
    return store.uri(BRONZE_AUDIT_PREFIX).rstrip("/") + "/**/*.parquet"


def read_audit_log(store: ObjectStore, lake: Lake) -> pd.DataFrame:
    """The ingestion audit log as a DataFrame (empty when nothing was ingested yet)."""
    if not store.list(BRONZE_AUDIT_PREFIX):
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

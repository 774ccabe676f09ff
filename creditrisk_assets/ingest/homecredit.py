"""``creditrisk import homecredit``: the Home Credit Default Risk files, as published on Kaggle, into landing.

Generic over the contracts' ``homecredit:`` mappings (``creditrisk_assets/contracts/*.yml``), the one owner
of the Kaggle ↔ contract correspondence: a table added there is imported without code changes.

Placing rows in time. The published files have no clock: times are days / months relative to the
application. Every application gets a decision time from its ``SK_ID_CURR`` alone (so any subset of
the files works and a rerun gives the same answer): ``i = SK_ID_CURR - id_base``, hour
``start + i // per_hour``, ``((i % per_hour) + 1) * 3600 // (per_hour + 1)`` seconds into it (never on
the hour). Rows land in the hour of their anchor:

* ``decision`` (application): its own decision time;
* ``outcome`` (loan_outcome, from application_train's ``TARGET``): decision time + outcome delay,
  which is also its ``OUTCOME_TIME``;
* ``{key: SK_ID_CURR}`` (bureau, previous_application, ...): the decision time of that application;
* ``{via: bureau, key: SK_ID_BUREAU}`` (bureau_balance): the decision time of the application that
  owns the bureau row (so bureau.csv must be in the same import).

Relative columns become absolute: days → the decision date + days (a timestamp: midnight of that date,
a day is the resolution); months → the first day of the decision month + months. Home Credit's
``365243`` ("not applicable") becomes null in converted columns; a value that is not a whole number lands
as ``<KAGGLE_COLUMN>=<text>`` so silver quarantines it with a reason. Every other value lands with its
text unchanged (files are read ``all_varchar``): bad numbers and unknown categories are silver's to
quarantine, not the importer's. Published columns no contract maps are passed through under their own
names (bronze keeps them, silver records ``extra_column`` events); a label another table maps from the
same file (``TARGET``) goes only there.

A row that cannot be placed in time (application id missing, not a positive integer, below ``id_base``;
a bureau_balance row whose ``SK_ID_BUREAU`` is not in bureau.csv) is rejected: not landed, written with
its reason to ``imports/homecredit/<import id>/rejected/<table>.csv``. Read = written + rejected for every
table, checked here; the run's report is ``imports/homecredit/<import id>/report.json``. All row work is
DuckDB SQL over the files (no Python per row): bureau_balance has 27 million rows.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import hashlib
import json
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from tqdm import tqdm

from ..contracts import TABLES, Column, HomeCreditTable, Table
from ..layout import import_rejected_key, import_report_key, parse_landing_key
from ..quality.silver import lit, q
from ..resources import ObjectStore
from ..simulate.population import PENSIONER_SENTINEL
from .landing_writer import HOUR_COLUMN, spread_sql, write_hourly

log = logging.getLogger("creditrisk.ingest.homecredit")

SOURCE = "homecredit"
#: Home Credit's "not applicable" in its DAYS_* columns; null once a relative column is made absolute.
SENTINEL_DAYS = PENSIONER_SENTINEL
#: an id that places its application further than this after ``--start`` cannot be a real id
MAX_HOURS = 24 * 366 * 1000
#: relative values with more digits are not days / months of a credit history (and would overflow a date)
MAX_RELATIVE_DIGITS = 6
MAX_PER_HOUR = 3599  # offsets are whole seconds, never on the hour: at most one application per second
COMPRESSED_SUFFIX = ".gz"

_FILE_COLUMN = "_hc_file"  # the importer's own columns start with _hc_ (never landed)
_TS_FMT = "%Y-%m-%dT%H:%M:%S"
_DATE_FMT = "%Y-%m-%d"


class HomeCreditError(ValueError):
    """A problem with the source files or the options; the message is one line naming what to fix."""


class AccountingError(RuntimeError):
    """Rows read ≠ rows written + rows rejected for a table: a bug, never a property of the data."""


@dataclass(frozen=True)
class ImportOptions:
    """What ``creditrisk import homecredit`` is asked to do."""

    source: Path
    start: dt.datetime
    per_hour: int = 300
    id_base: int = 100_000
    outcome_delay_hours: int = 12
    tables: tuple[str, ...] | None = None  # None: every table whose files are in ``source``

    def __post_init__(self) -> None:
        if self.start.minute or self.start.second or self.start.microsecond:
            raise HomeCreditError(f"--start {self.start:%Y-%m-%dT%H:%M}: must be on the hour (landing is hourly)")
        if not 1 <= self.per_hour <= MAX_PER_HOUR:
            raise HomeCreditError(f"--per-hour {self.per_hour}: must be within 1..{MAX_PER_HOUR} "
                                  "(decision times are whole seconds, never on the hour)")
        if self.id_base < 0:
            raise HomeCreditError(f"--id-base {self.id_base}: must be >= 0")
        if self.outcome_delay_hours < 0:
            raise HomeCreditError(f"--outcome-delay-hours {self.outcome_delay_hours}: must be >= 0")
        if self.tables is not None:
            unknown = [t for t in self.tables if t not in importable_tables()]
            if unknown or not self.tables:
                raise HomeCreditError(f"--tables {','.join(self.tables)}: expected a comma-separated subset of "
                                      f"{', '.join(importable_tables())}")

    def to_json(self) -> dict[str, Any]:
        return {"source": str(self.source), "start": self.start.strftime("%Y-%m-%dT%H:%M"),
                "per_hour": self.per_hour, "id_base": self.id_base,
                "outcome_delay_hours": self.outcome_delay_hours,
                "tables": list(self.tables) if self.tables is not None else None}

    def import_id(self, now: dt.datetime) -> str:
        """UTC time of the run + a short hash of the options: ``20261001T120000Z-1a2b3c4d``."""
        digest = hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:8]
        return f"{now:%Y%m%dT%H%M%SZ}-{digest}"


@dataclass
class TableImport:
    """One table's accounting: read = written + sum(rejected.values())."""

    table: str
    files: list[str]
    read: int = 0
    written: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason code → rows
    landing_files: int = 0
    first_hour: str | None = None
    last_hour: str | None = None
    passed_through: list[str] = field(default_factory=list)  # published columns no contract column maps
    missing_columns: list[str] = field(default_factory=list)  # contract columns the files do not have
    sentinel_nulls: dict[str, int] = field(default_factory=dict)  # converted column → 365243 values made null
    rejected_key: str | None = None

    @property
    def rejected_rows(self) -> int:
        return sum(self.rejected.values())

    @property
    def balanced(self) -> bool:
        return self.read == self.written + self.rejected_rows


@dataclass
class ImportResult:
    import_id: str
    report_key: str
    tables: dict[str, TableImport]
    hours: list[dt.datetime]  # every landing hour written (sorted)
    landing_keys: dict[str, int]  # landing key → rows


# ------------------------------------------------------------------------------ the contracts' mappings

def importable_tables() -> tuple[str, ...]:
    """Tables with a ``homecredit:`` mapping, in the pipeline's order."""
    return tuple(name for name, t in TABLES.items() if t.homecredit is not None)


def published_files() -> dict[str, list[str]]:
    """Published file name → the tables read from it (from the contracts)."""
    out: dict[str, list[str]] = {}
    for name in importable_tables():
        for f in _hc(TABLES[name]).files:
            out.setdefault(f, []).append(name)
    return out


def _hc(table: Table) -> HomeCreditTable:
    assert table.homecredit is not None, table.name
    return table.homecredit


def id_column(table: Table) -> str:
    """The contract column that places a row: the application id (decision/outcome/key) or the via key."""
    hc = _hc(table)
    if hc.anchor in ("decision", "outcome"):
        if len(table.primary_key) != 1:
            raise HomeCreditError(f"{table.source_file}: a homecredit anchor {hc.anchor} needs a one-column key")
        return table.primary_key[0]
    return str(hc.anchor_key)


def source_name(table: Table, column: str) -> str:
    """The published name of a contract column (its ``homecredit.column``)."""
    col = table.column(column)
    if col.homecredit is None:
        raise HomeCreditError(f"{table.source_file}: column {column} places rows in time but has homecredit: null")
    return col.homecredit.column


def read_order(tables: Sequence[str]) -> list[str]:
    """``tables`` plus the via parents they need, parents first."""
    out: list[str] = []

    def visit(name: str) -> None:
        hc = _hc(TABLES[name])
        if hc.anchor == "via":
            visit(str(hc.anchor_via))
        if name not in out:
            out.append(name)

    for name in tables:
        visit(name)
    return out


# ------------------------------------------------------------------------------ finding the files

def locate_files(source: Path) -> dict[str, Path]:
    """Published file name → its path in ``source`` (``.csv`` or ``.csv.gz``, name case-insensitive).

    Raises ``HomeCreditError`` (one line) for a missing folder, a zip archive, or a folder with none of
    the published files.
    """
    expected = list(published_files())
    if source.suffix.lower() == ".zip":
        raise HomeCreditError(f"--source {source} is a zip archive: unzip it (unzip {source.name} -d DIR) "
                              "and pass the folder")
    if not source.exists():
        raise HomeCreditError(f"--source {source}: no such folder")
    if not source.is_dir():
        raise HomeCreditError(f"--source {source} is a file: pass the folder holding {', '.join(expected)}")
    entries = {p.name.lower(): p for p in source.iterdir() if p.is_file()}
    found: dict[str, Path] = {}
    zipped: list[str] = []
    for name in expected:
        lower = name.lower()
        for candidate in (lower, lower + COMPRESSED_SUFFIX):
            if candidate in entries:
                found[name] = entries[candidate]
                break
        else:
            if lower + ".zip" in entries or lower.removesuffix(".csv") + ".zip" in entries:
                zipped.append(name)
    if zipped:
        raise HomeCreditError(f"{source}: {', '.join(zipped)} only as .zip: unzip them into {source} first")
    if not found:
        archives = sorted(p.name for p in entries.values() if p.suffix.lower() == ".zip")
        if archives:
            raise HomeCreditError(f"{source} holds {', '.join(archives)}: unzip it into a folder "
                                  f"(unzip {archives[0]} -d DIR) and pass that folder")
        raise HomeCreditError(f"{source} holds none of the Home Credit files: expected {', '.join(expected)} "
                              "(or .csv.gz)")
    return found


def plan(files: dict[str, Path], tables: tuple[str, ...] | None) -> list[str]:
    """The tables to land: the requested ones (all with files when None), each with its files present
    and the files of its via parents (``HomeCreditError`` otherwise)."""
    wanted = [t for t in importable_tables()  # in the pipeline's order
              if (t in tables if tables is not None else any(f in files for f in _hc(TABLES[t]).files))]
    for name in wanted:
        hc = _hc(TABLES[name])
        if not any(f in files for f in hc.files):
            raise HomeCreditError(f"--tables {name}: {' or '.join(hc.files)} is not in the source folder")
    for name in read_order(wanted):
        hc = _hc(TABLES[name])
        if hc.anchor == "via":
            parent = TABLES[str(hc.anchor_via)]
            if not any(f in files for f in _hc(parent).files):
                need = " or ".join(_hc(parent).files)
                raise HomeCreditError(f"{' or '.join(hc.files)} needs {need} in the same import (its rows reach "
                                      f"the application through {hc.anchor_key}): add {need} or leave "
                                      f"{name} out with --tables")
    return wanted


def header(path: Path) -> list[str]:
    """The column names in the first line of a published file (``.csv`` or ``.csv.gz``)."""
    if path.stat().st_size == 0:
        raise HomeCreditError(f"{path.name} is empty (0 bytes): copy it again from the download")
    try:
        with (gzip.open(path, "rt", encoding="utf-8-sig", newline="") if path.name.lower().endswith(COMPRESSED_SUFFIX)
              else open(path, encoding="utf-8-sig", newline="")) as fh:
            names = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise HomeCreditError(f"{path.name}: not a readable CSV ({_first_line(exc)})") from None
    if not names or not all(n.strip() for n in names):
        raise HomeCreditError(f"{path.name}: the first line is not a header of column names")
    twice = sorted({n for n in names if [m.lower() for m in names].count(n.lower()) > 1})
    if twice:
        raise HomeCreditError(f"{path.name}: column {', '.join(twice)} appears twice in the header")
    return names


def read_csv_sql(paths: Sequence[Path]) -> str:
    """Every value as its text (columns from each file's header, no type or dialect sniffing: a ragged line is
    an error, never a reason to guess another layout), files combined by column name, the file in ``_hc_file``."""
    parts = []
    for p in paths:
        columns = "{" + ", ".join(f"{lit(n)}: 'VARCHAR'" for n in header(p)) + "}"
        parts.append(f"SELECT * FROM read_csv({lit(str(p))}, auto_detect=false, header=true, columns={columns}, "
                     f"delim=',', quote='\"', escape='\"', filename={lit(_FILE_COLUMN)})")
    return "(" + " UNION ALL BY NAME ".join(parts) + ")"


def file_columns(paths: Sequence[Path]) -> list[str]:
    """The published columns of ``paths`` (their header rows, in order of first appearance)."""
    out: list[str] = []
    for p in paths:
        out += [n for n in header(p) if n not in out]
    return out


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _text(col: str) -> str:
    return f"NULLIF(trim({q(col)}), '')"


def _placed_by_id_sql(opts: ImportOptions, src: str, kaggle_id: str) -> str:
    """Rows of ``src`` with ``_hc_reason`` (null: placed) and ``_hc_decision`` from their application id."""
    t, base = _text(kaggle_id), opts.id_base
    return f"""
        WITH s AS (SELECT *, {t} AS _hc_idtext, TRY_CAST({t} AS BIGINT) AS _hc_id FROM {src}),
        r AS (SELECT *, CASE
                WHEN _hc_idtext IS NULL THEN 'missing_id'
                WHEN NOT regexp_full_match(_hc_idtext, '[0-9]+') OR _hc_id IS NULL OR _hc_id = 0 THEN 'bad_id'
                WHEN _hc_id < {base} THEN 'id_below_base'
                WHEN (_hc_id - {base}) // {opts.per_hour} >= {MAX_HOURS} THEN 'id_out_of_range'
              END AS _hc_reason FROM s)
        SELECT * EXCLUDE (_hc_idtext, _hc_id),
               CASE WHEN _hc_reason IS NULL THEN {spread_sql(f'_hc_id - {base}', opts.start, opts.per_hour)} END AS _hc_decision
        FROM r"""


def reason_details(table: Table) -> dict[str, str]:
    """Reason code → what it means for ``table`` (the rejected file's ``detail`` column, the report)."""
    hc = _hc(table)
    key = source_name(table, id_column(table))
    if hc.anchor != "via":
        return {"missing_id": f"{key} is empty",
                "bad_id": f"{key} is not a positive integer",
                "id_below_base": f"{key} is below --id-base",
                "id_out_of_range": f"{key} places the application more than {MAX_HOURS // (24 * 366)} years "
                                   "after --start"}
    parent = TABLES[str(hc.anchor_via)]
    pfile = " / ".join(_hc(parent).files)
    return {"missing_id": f"{key} is empty",
            "orphan": f"{key} is not in {pfile}",
            "parent_unplaced": f"its {pfile} row was rejected (cannot be placed in time)",
            "ambiguous_parent": f"{key} belongs to several applications in {pfile}"}


def _relative_sql(col: Column, kaggle: str) -> str:
    """A relative published value → the text of the absolute date / timestamp (see the module doc)."""
    assert col.homecredit is not None and col.homecredit.relative is not None
    v = _text(kaggle)
    n = f"CAST(TRY_CAST({v} AS DOUBLE) AS INTEGER)"
    whole = f"regexp_full_match({v}, '[+-]?[0-9]{{1,{MAX_RELATIVE_DIGITS}}}([.]0*)?')"
    day = "CAST(_hc_decision AS DATE)"
    if col.homecredit.relative == "days":
        value = (f"strftime({day} + {n}, '{_DATE_FMT}')" if col.dtype == "date"
                 else f"strftime(CAST({day} AS TIMESTAMP) + to_days({n}), '{_TS_FMT}')")
    else:
        start = f"CAST(date_trunc('month', {day}) AS TIMESTAMP) + to_months({n})"
        value = f"strftime({start}, '{_DATE_FMT if col.dtype == 'date' else _TS_FMT}')"
    return (f"CASE WHEN {v} IS NULL THEN NULL WHEN NOT {whole} THEN {lit(kaggle + '=')} || {q(kaggle)} "
            f"WHEN {n} = {SENTINEL_DAYS} THEN NULL ELSE {value} END")


def output_columns(table: Table, columns: list[str], shared: set[str],
                   delay_hours: int) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """(output name, SQL) of a table's landed columns; the pass-through and the missing columns.

    ``columns``: the published columns of its files; ``shared``: published columns another table maps
    from the same files (a label: never passed through here).
    """
    hc = _hc(table)
    landing = _landing_time_sql(table, delay_hours)
    present = set(columns)
    out: list[tuple[str, str]] = []
    missing: list[str] = []
    mapped: set[str] = set()
    for c in table.columns:
        if c.homecredit is None:
            if c.name == table.event_time:  # e.g. DECISION_TIME, OUTCOME_TIME: the time the row is placed at
                fmt = _DATE_FMT if c.dtype == "date" else _TS_FMT
                out.append((c.name, f"strftime({landing}, '{fmt}')"))
            continue
        kaggle = c.homecredit.column
        mapped.add(kaggle)
        if kaggle not in present:
            missing.append(c.name)
            continue
        out.append((c.name, _relative_sql(c, kaggle) if c.homecredit.relative else q(kaggle)))
    passed: list[str] = []
    if hc.anchor != "outcome":  # an outcome table is derived from another table's file: nothing else of it
        names = {n for n, _ in out} | set(table.column_names)
        for name in columns:
            if name in mapped or name in shared:
                continue
            target = name if name not in names else f"{name}__homecredit"
            out.append((target, q(name)))
            passed.append(name)
    return out, passed, missing


def _landing_time_sql(table: Table, delay_hours: int) -> str:
    if _hc(table).anchor == "outcome":
        return f"(_hc_decision + to_hours({int(delay_hours)}))"
    return "_hc_decision"


# ------------------------------------------------------------------------------ the import

def import_homecredit(opts: ImportOptions, store: ObjectStore, progress: bool = False,
                      now: dt.datetime | None = None) -> ImportResult:
    """Land the published files of ``opts.source`` (see the module doc); raises ``HomeCreditError`` for a
    problem with the files or options, ``AccountingError`` if any table's rows do not balance."""
    started = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    files = locate_files(opts.source)
    wanted = plan(files, opts.tables)
    import_id = opts.import_id(started)
    results: dict[str, TableImport] = {}
    landing_keys: dict[str, int] = {}
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        with tempfile.TemporaryDirectory(prefix="homecredit-") as tmp:
            con.execute(f"SET temp_directory = {lit(str(Path(tmp) / 'spill'))}")
            _create_placements(con, opts, files, read_order(wanted))  # checks the files' headers
            # every file is read (and counted) before anything lands: a malformed file fails the import first
            bar = tqdm(wanted, desc="read homecredit", unit="table", file=sys.stderr, disable=not progress)
            for name in bar:
                bar.set_postfix_str(name)
                results[name] = _read_table(con, files, TABLES[name])
            bar.close()
            log.info("homecredit import started", extra={"import_id": import_id, "tables": wanted,
                                                          "files": sorted(files), **opts.to_json()})
            bar = tqdm(wanted, desc="import homecredit", unit="table", file=sys.stderr, disable=not progress)
            for name in bar:

                def step(what: str, table: str = name) -> None:
                    bar.set_postfix_str(f"{table}: {what}")

                res = results[name]
                keys = _land_table(con, opts, files, TABLES[name], res, store, import_id, Path(tmp), progress, step)
                landing_keys.update(keys)
                log.info("homecredit table imported", extra={"import_id": import_id, "table": name,
                                                              "read": res.read, "written": res.written,
                                                              "rejected": res.rejected})
            bar.close()
    finally:
        con.close()
    hours = sorted({h for k in landing_keys if (h := _hour_of(k)) is not None})
    report = _report(opts, import_id, started, files, results, hours)
    key = import_report_key(SOURCE, import_id)
    store.put_bytes(key, (json.dumps(report, indent=1, sort_keys=True) + "\n").encode())
    unbalanced = [r for r in results.values() if not r.balanced]
    if unbalanced:
        r = unbalanced[0]
        raise AccountingError(f"{r.table}: read {r.read} rows but wrote {r.written} and rejected {r.rejected_rows} "
                              f"(report {key})")
    return ImportResult(import_id, key, results, hours, landing_keys)


def _hour_of(key: str) -> dt.datetime | None:
    parsed = parse_landing_key(key)
    return None if parsed is None else parsed[1]


def _paths(files: dict[str, Path], table: Table) -> list[Path]:
    return [files[f] for f in _hc(table).files if f in files]


def _create_placements(con: duckdb.DuckDBPyConnection, opts: ImportOptions, files: dict[str, Path],
                       order: list[str]) -> None:
    """A view ``_hc_placed_<table>`` per table to read (parents first): its rows with ``_hc_reason``
    (null when placed) and ``_hc_decision``; a via table's parent map is materialised once."""
    for name in order:
        table = TABLES[name]
        hc = _hc(table)
        paths = _paths(files, table)
        columns = file_columns(paths)
        key = source_name(table, id_column(table))
        if key not in columns:
            raise HomeCreditError(f"{', '.join(p.name for p in paths)} has no {key} column: it places every "
                                  f"{name} row in time")
        src = read_csv_sql(paths)
        if hc.anchor != "via":
            sql = _placed_by_id_sql(opts, src, key)
        else:
            parent = TABLES[str(hc.anchor_via)]
            pkey = source_name(parent, str(hc.anchor_key)) if str(hc.anchor_key) in parent.column_names else key
            pcols = file_columns(_paths(files, parent))
            if pkey not in pcols:
                raise HomeCreditError(f"{', '.join(p.name for p in _paths(files, parent))} has no {pkey} column: "
                                      f"{name} rows reach their application through it")
            try:
                con.execute(f"""CREATE OR REPLACE TEMP TABLE {q('_hc_map_' + name)} AS
                    SELECT {_text(pkey)} AS _hc_key, count(DISTINCT _hc_decision) AS _hc_n,
                           min(_hc_decision) AS _hc_decision
                    FROM {q('_hc_placed_' + parent.name)} WHERE {_text(pkey)} IS NOT NULL GROUP BY 1""")
            except duckdb.Error as exc:
                raise HomeCreditError(f"{', '.join(p.name for p in _paths(files, parent))}: not a readable CSV "
                                      f"({_first_line(exc)})") from None
            sql = f"""
                SELECT s.*, CASE WHEN {_text(key)} IS NULL THEN 'missing_id' WHEN m._hc_key IS NULL THEN 'orphan'
                                 WHEN m._hc_n = 0 THEN 'parent_unplaced' WHEN m._hc_n > 1 THEN 'ambiguous_parent'
                            END AS _hc_reason,
                       CASE WHEN m._hc_n = 1 THEN m._hc_decision END AS _hc_decision
                FROM {src} s LEFT JOIN {q('_hc_map_' + name)} m ON {_text(key)} = m._hc_key"""
        con.execute(f"CREATE OR REPLACE TEMP VIEW {q('_hc_placed_' + name)} AS {sql}")


def _shared_columns(table: Table) -> set[str]:
    """Published columns other tables map from the files of ``table`` and ``table`` does not."""
    own = {c.homecredit.column for c in table.columns if c.homecredit is not None}
    files = set(_hc(table).files)
    out: set[str] = set()
    for other in importable_tables():
        t = TABLES[other]
        if t.name != table.name and files & set(_hc(t).files):
            out |= {c.homecredit.column for c in t.columns if c.homecredit is not None}
    return out - own


def _read_table(con: duckdb.DuckDBPyConnection, files: dict[str, Path], table: Table) -> TableImport:
    """Rows read, counted on the files themselves (independently of placement), and the 365243 values."""
    paths = _paths(files, table)
    columns = file_columns(paths)
    res = TableImport(table.name, [p.name for p in paths])
    relative = [(c.name, c.homecredit.column) for c in table.columns
                if c.homecredit is not None and c.homecredit.relative and c.homecredit.column in columns]
    sentinels = "".join(f", count(*) FILTER (WHERE TRY_CAST({_text(k)} AS DOUBLE) = {SENTINEL_DAYS})"
                        for _, k in relative)
    try:
        counts = con.execute(f"SELECT count(*){sentinels} FROM {read_csv_sql(paths)}").fetchone()
    except duckdb.Error as exc:
        raise HomeCreditError(f"{', '.join(res.files)}: not a readable CSV ({_first_line(exc)})") from None
    assert counts is not None
    res.read = int(counts[0])
    res.sentinel_nulls = {name: int(n) for (name, _), n in zip(relative, counts[1:], strict=True) if n}
    return res


def _land_table(con: duckdb.DuckDBPyConnection, opts: ImportOptions, files: dict[str, Path], table: Table,
                res: TableImport, store: ObjectStore, import_id: str, tmp: Path, progress: bool,
                step: Callable[[str], None]) -> dict[str, int]:
    """Land the placed rows of ``table`` and write the rejected ones aside; fills ``res``; {landing key: rows}."""
    columns = file_columns(_paths(files, table))
    outputs, res.passed_through, res.missing_columns = output_columns(table, columns, _shared_columns(table),
                                                                      opts.outcome_delay_hours)
    placed = q("_hc_placed_" + table.name)

    # written: one landing file per hour
    select = ", ".join(f"{sql} AS {q(name)}" for name, sql in outputs)
    landing = _landing_time_sql(table, opts.outcome_delay_hours)
    select_sql = (f"SELECT {select}, date_trunc('hour', {landing}) AS {q(HOUR_COLUMN)} "
                  f"FROM {placed} WHERE _hc_reason IS NULL")
    names = [n for n, _ in outputs]
    order = [k for k in table.primary_key if k in names] + [n for n in names if n not in table.primary_key]
    step("landing")
    keys = write_hourly(con, select_sql, table, store, order_by=order, progress=progress)
    res.written = sum(keys.values())
    res.landing_files = len(keys)
    hours = sorted(h for k in keys if (h := _hour_of(k)) is not None)
    if hours:
        res.first_hour, res.last_hour = hours[0].strftime("%Y-%m-%dT%H:00"), hours[-1].strftime("%Y-%m-%dT%H:00")

    # rejected: written aside with the reason; counted again from that file
    step("rejected rows")
    details = reason_details(table)
    detail = "CASE _hc_reason " + " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in details.items()) + " END"
    path = tmp / f"rejected-{table.name}.csv"
    src_cols = ", ".join(q(c) for c in columns)
    n_rejected = con.execute(
        f"COPY (SELECT _hc_reason AS reason, {detail} AS detail, parse_filename({_FILE_COLUMN}) AS source_file, "
        f"{src_cols} FROM {placed} WHERE _hc_reason IS NOT NULL ORDER BY ALL) "
        f"TO {lit(str(path))} (FORMAT csv, HEADER true)").fetchone()
    if n_rejected and n_rejected[0]:
        res.rejected = {str(r): int(n) for r, n in con.execute(
            f"SELECT reason, count(*) FROM read_csv({lit(str(path))}, all_varchar=true, header=true) "
            "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()}
        res.rejected_key = import_rejected_key(SOURCE, import_id, table.name)
        store.put_file(res.rejected_key, path)
    path.unlink(missing_ok=True)
    return keys


def _report(opts: ImportOptions, import_id: str, started: dt.datetime, files: dict[str, Path],
            results: dict[str, TableImport], hours: list[dt.datetime]) -> dict[str, Any]:
    return {
        "source": SOURCE, "import_id": import_id, "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        "options": opts.to_json(),
        "files": {name: {"path": str(p), "bytes": p.stat().st_size} for name, p in sorted(files.items())},
        "tables": {name: {**asdict(r), "rejected_rows": r.rejected_rows, "balanced": r.balanced,
                          "reasons": {k: reason_details(TABLES[name])[k] for k in r.rejected}}
                   for name, r in results.items()},
        "hours": {"count": len(hours),
                  "first": hours[0].strftime("%Y-%m-%dT%H:00") if hours else None,
                  "last": hours[-1].strftime("%Y-%m-%dT%H:00") if hours else None},
        "placement": {"decision_time": "start + (SK_ID_CURR - id_base) // per_hour hours + "
                                       "((SK_ID_CURR - id_base) % per_hour + 1) * 3600 // (per_hour + 1) seconds",
                      "relative_days": "decision date + days (timestamps: midnight of that date); "
                                       f"{SENTINEL_DAYS} -> null",
                      "relative_months": "first day of the decision month + months"},
    }


# ------------------------------------------------------------------------------ CLI

def summary_lines(result: ImportResult) -> list[str]:
    lines = []
    for name, r in result.tables.items():
        line = (f"{name} ({', '.join(r.files)}): read {r.read:,} · written {r.written:,} · "
                f"rejected {r.rejected_rows:,}")
        if r.rejected:
            line += " (" + ", ".join(f"{k} {n:,}" for k, n in r.rejected.items()) + ")"
        lines.append(line)
    if result.hours:
        lines.append(f"landed {sum(result.landing_keys.values()):,} rows in {len(result.landing_keys)} files over "
                     f"{len(result.hours)} hours ({result.hours[0]:%Y-%m-%dT%H:00} .. {result.hours[-1]:%Y-%m-%dT%H:00})")
    return lines


def _tables_arg(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def build_parser(default_start: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="creditrisk import homecredit",
        description="Land the Home Credit Default Risk files (Kaggle, as downloaded and unzipped) into the "
                    "landing area, placing every application in time from its SK_ID_CURR.")
    ap.add_argument("--source", required=True, type=Path, help="folder holding application_train.csv, "
                    "bureau.csv, ... (any subset; .csv or .csv.gz)")
    ap.add_argument("--start", default=default_start,
                    help=f"hour of the first application, YYYY-MM-DDTHH:MM UTC (default {default_start})")
    ap.add_argument("--per-hour", type=int, default=300, help="applications per hour (default 300)")
    ap.add_argument("--id-base", type=int, default=100_000,
                    help="SK_ID_CURR of the first application slot; lower ids are rejected (default 100000)")
    ap.add_argument("--outcome-delay-hours", type=int, default=12,
                    help="hours from decision to outcome (TARGET) (default 12)")
    ap.add_argument("--tables", type=_tables_arg, default=None,
                    help=f"comma-separated tables to land (default: all whose files are there): "
                         f"{', '.join(importable_tables())}")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap


def main(argv: list[str]) -> int:
    """``creditrisk import homecredit``; 0 on success, 2 on a problem with the files or options, 1 on a
    storage or accounting failure."""
    from ..cli_common import start_command
    from ..resources import ObjectStoreError, open_store_for_writing
    from ..simulate.config import parse_start

    settings, args = start_command(build_parser, argv)  # a wrong setting: SettingsError, one line from cli.main
    try:
        start = parse_start(args.start)
    except ValueError as exc:
        print(f"error: --start: {exc}", file=sys.stderr)
        return 2
    try:
        opts = ImportOptions(source=args.source, start=start, per_hour=args.per_hour,
                             id_base=args.id_base, outcome_delay_hours=args.outcome_delay_hours, tables=args.tables)
        locate_files(opts.source)  # one-line errors before touching the store
        store = open_store_for_writing(settings)
        result = import_homecredit(opts, store, progress=not args.no_progress)
    except HomeCreditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ObjectStoreError, AccountingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in summary_lines(result):
        print(line)
    print(f"report: {store.uri(result.report_key)}")
    return 0

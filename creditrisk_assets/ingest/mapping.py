"""``creditrisk import table --source FILE --mapping MAPPING.yml``: a lender's own table → landing files.

A lender with one application table and a default flag gets in by writing a mapping (YAML) that says
which column is the application id, how each row is placed in time, which column is the label and
what every other column is::

    id: LOAN_ID                                   # → SK_ID_CURR (a positive integer)
    decision_time: {column: APPLIED_AT}           # or {start: "2026-10-01T00:00", per_hour: 300}: spread by id
    label: {column: DEFAULTED, positive: ["1", "Y"], negative: ["0", "N"], outcome_delay_hours: 12}
    columns:                                      # every other column of FILE, each one of:
      MONTHLY_INCOME: {to: AMT_INCOME_TOTAL, scale: 12}        # a contract column (optional numeric scale)
      GENDER: {to: CODE_GENDER, values: {female: F, male: M}}  # optional value map ("" maps to missing)
      LOAN_AMOUNT: AMT_CREDIT                     # shorthand for {to: AMT_CREDIT}
      BRANCH: bronze                              # lands, stays in bronze (unclassified, PII-safe default)
      NOTES: drop                                 # never landed

The rows become ``application`` landing files (one per decision hour) and, from the label,
``loan_outcome`` landing files (``OUTCOME_TIME`` = decision time + ``outcome_delay_hours``, landing in
that hour). Values keep their text (CSV is read all-VARCHAR, Parquet values are cast to text): silver
types and checks them against the contract, as for any other source. Rows that cannot be placed in
time (id not a positive integer, decision time unparseable) are not landed: they are written with
their reason to ``imports/table/<import id>/rejected/application.csv``; rows whose label is empty or
neither positive nor negative land as applications without an outcome (``rejected/loan_outcome.csv``).
Per table, rows read = written + rejected (checked); the report is ``imports/table/<import id>/report.json``.

The mapping is checked before anything is written; every error is one line naming the mapping file
and the key or column to fix. Time texts without an offset are UTC. All the row work is SQL in DuckDB.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import math
import re
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml  # type: ignore[import-untyped]  # types-PyYAML is not in the dev dependencies

from ..contracts import APPLICATION, CONTRACTS_DIR, LOAN_OUTCOME, TABLES, Table
from ..layout import HOUR_FMT, import_rejected_key, import_report_key, landing_file_key, landing_table_prefix
from ..quality.silver import lit, q
from ..resources import ObjectStore, ObjectStoreError, open_store_for_writing
from ..settings import Settings, SettingsError
from ..simulate.config import parse_start
from .landing_writer import HOUR_COLUMN, spread_sql, write_hourly

SOURCE = "table"  # the import source name in imports/<source>/<import id>/
KEEP_IN_BRONZE, DROP = "bronze", "drop"
SOURCE_FORMATS = (".csv", ".csv.gz", ".parquet")
DEFAULT_POSITIVE, DEFAULT_NEGATIVE = ("1",), ("0",)
#: how landed times are written: the canonical text silver reads
TIME_TEXT = "%Y-%m-%dT%H:%M:%S"
#: a spread start is an hour like the simulator's ``--start`` (read by its ``parse_start``), but not in
#: Dagster's partition key form
_START_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_IMPORT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: the furthest a spread by id may place a row from ``start`` (sparse ids would otherwise overflow)
MAX_SPREAD_HOURS = 24 * 366 * 50
#: a spread offsets by whole seconds and never lands on the hour: at most one application a second
MAX_PER_HOUR = 3599

# reason codes (as ``creditrisk import homecredit`` names them) of a row not landed (application) or
# landed without an outcome (loan_outcome); ``reason_details`` says what each means for a mapping
MISSING_ID, BAD_ID, ID_BELOW_BASE, ID_OUT_OF_RANGE = "missing_id", "bad_id", "id_below_base", "id_out_of_range"
MISSING_TIME, BAD_TIME, MALFORMED = "missing_decision_time", "bad_decision_time", "malformed_line"
MISSING_LABEL, UNKNOWN_LABEL = "missing_label", "unknown_label"

_KEYS = ("id", "decision_time", "label", "columns")
_LABEL_KEYS = ("column", "positive", "negative", "outcome_delay_hours")
_COLUMN_KEYS = ("to", "scale", "values")

log = logging.getLogger("creditrisk.ingest.mapping")


class MappingError(ValueError):
    """A mapping that cannot be used; the message names the mapping file and the key or column."""


class SourceError(ValueError):
    """The source file cannot be read or does not fit its mapping; the message names what to fix."""


class ImportAccountingError(RuntimeError):
    """Rows read ≠ written + rejected: a bug, never a data problem."""


def contract_path(table: Table = APPLICATION) -> str:
    """The contract file as a user finds it in the repository (``creditrisk_assets/contracts/<table>.yml``)."""
    return str((CONTRACTS_DIR / table.source_file).relative_to(CONTRACTS_DIR.parents[1]))


# ----------------------------------------------------------------------------- the mapping

@dataclass(frozen=True)
class ColumnMap:
    """A column of the file landed as contract column ``to`` (value map first, then the numeric scale)."""

    source: str
    to: str
    scale: float | None = None
    values: tuple[tuple[str, str | None], ...] = ()  # (text in the file, text landed; None: missing)


@dataclass(frozen=True)
class DecisionTime:
    """Either a column of the file (``column``, optional strptime ``format``) or a spread by id from ``start``."""

    column: str | None = None
    format: str | None = None
    start: dt.datetime | None = None
    per_hour: int | None = None
    id_base: int | None = None  # None: the smallest valid id of the file


@dataclass(frozen=True)
class Label:
    column: str
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    outcome_delay_hours: int


@dataclass(frozen=True)
class TableMapping:
    path: str  # the mapping file, as given (errors name it)
    id: str
    decision_time: DecisionTime
    label: Label | None
    columns: tuple[ColumnMap, ...]
    bronze: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()

    @property
    def named(self) -> list[str]:
        """Every column of the file the mapping names, in mapping order."""
        out = [self.id]
        if self.decision_time.column:
            out.append(self.decision_time.column)
        if self.label:
            out.append(self.label.column)
        return out + [c.source for c in self.columns] + list(self.bronze) + list(self.drop)


def _err(path: str, where: str, problem: str) -> MappingError:
    return MappingError(f"{path}: {where}: {problem}")


def _name(value: Any, path: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _err(path, where, f"expected a column name, got {value!r}")
    return value.strip()


def _int(value: Any, path: str, where: str, lo: int) -> int:
    text = value.strip() if isinstance(value, str) else ""
    if not re.fullmatch(r"[+-]?[0-9]+", text) or int(text) < lo:
        raise _err(path, where, f"expected an integer >= {lo}, got {value!r}")
    return int(text)


def _texts(value: Any, path: str, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v.strip() for v in items):
        raise _err(path, where, f"expected a value or a non-empty list of values, got {value!r}")
    return tuple(v.strip() for v in items)


def _mapping(value: Any, path: str, where: str, keys: Sequence[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _err(path, where, f"expected a mapping with {', '.join(keys)}, got {value!r}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise _err(path, where, f"unknown key(s) {', '.join(unknown)}; expected {', '.join(keys)}")
    return value


def _decision_time(raw: Any, path: str) -> DecisionTime:
    if isinstance(raw, str):
        raw = {"column": raw}
    body = _mapping(raw, path, "decision_time", ("column", "format", "start", "per_hour", "id_base"))
    if ("column" in body) == ("start" in body):
        raise _err(path, "decision_time", "give either {column: COL} (a time column of the file) or "
                                          "{start: \"YYYY-MM-DDTHH:00\", per_hour: N} (spread by id)")
    if "column" in body:
        if set(body) - {"column", "format"}:
            raise _err(path, "decision_time", "per_hour / id_base only go with start")
        fmt = body.get("format")
        if fmt is not None:
            fmt = _strptime_format(fmt, path)
        return DecisionTime(column=_name(body["column"], path, "decision_time.column"), format=fmt)
    if "format" in body:
        raise _err(path, "decision_time.format", "a format only goes with column")
    try:  # a spread start: on the hour, UTC
        start = parse_start(body["start"].strip(), _START_FORMATS) if isinstance(body["start"], str) else None
    except ValueError:
        start = None
    if start is None:
        raise _err(path, "decision_time.start", f"expected an hour YYYY-MM-DDTHH:00 (UTC), got {body['start']!r}")
    if "per_hour" not in body:
        raise _err(path, "decision_time.per_hour", "missing: how many applications per hour the spread places")
    per_hour = _int(body["per_hour"], path, "decision_time.per_hour", 1)
    if per_hour > MAX_PER_HOUR:
        raise _err(path, "decision_time.per_hour", f"{per_hour}: at most {MAX_PER_HOUR} (one application a second, "
                                                   "never on the hour)")
    base = _int(body["id_base"], path, "decision_time.id_base", 1) if "id_base" in body else None
    return DecisionTime(start=start, per_hour=per_hour, id_base=base)


def _strptime_format(value: Any, path: str) -> str:
    if not isinstance(value, str) or "%" not in value:
        raise _err(path, "decision_time.format", f"expected a strptime format like '%d/%m/%Y %H:%M', got {value!r}")
    try:
        duckdb.connect().execute("SELECT TRY_STRPTIME('', ?)", [value]).fetchall()
    except duckdb.Error as exc:
        raise _err(path, "decision_time.format", str(exc).splitlines()[0]) from None
    return value


def _label(raw: Any, path: str) -> Label:
    body = _mapping(raw, path, "label", _LABEL_KEYS)
    for key in ("column", "outcome_delay_hours"):
        if key not in body:
            raise _err(path, f"label.{key}", "missing")
    positive = _texts(body.get("positive", list(DEFAULT_POSITIVE)), path, "label.positive")
    negative = _texts(body.get("negative", list(DEFAULT_NEGATIVE)), path, "label.negative")
    both = sorted(set(positive) & set(negative))
    if both:
        raise _err(path, "label", f"{', '.join(both)} is both positive and negative")
    return Label(_name(body["column"], path, "label.column"), positive, negative,
                 _int(body["outcome_delay_hours"], path, "label.outcome_delay_hours", 0))


def _scale(value: Any, path: str, where: str) -> float:
    try:
        scale = float(value.strip()) if isinstance(value, str) else math.nan
    except ValueError:
        scale = math.nan
    if not math.isfinite(scale) or scale == 0:
        raise _err(path, where, f"expected a non-zero number, got {value!r}")
    return scale


def _column(source: str, raw: Any, path: str, contract: Table) -> ColumnMap | str:
    where = f"columns.{source}"
    if isinstance(raw, str) and raw.strip() in (KEEP_IN_BRONZE, DROP):
        return raw.strip()
    if isinstance(raw, str):
        raw = {"to": raw}
    if not isinstance(raw, dict):
        raise _err(path, where, f"expected {KEEP_IN_BRONZE}, {DROP}, a contract column name or {{to: COLUMN, scale, "
                                f"values}}, got {raw!r}")
    body = _mapping(raw, path, where, _COLUMN_KEYS)
    if "to" not in body:
        raise _err(path, where, "missing to: the contract column it lands as")
    to = _name(body["to"], path, f"{where}.to")
    if to not in contract.column_names:
        raise _err(path, f"{where}.to", f"{to} is not a column of the {contract.name} contract: add it to "
                                        f"{contract_path(contract)} (name, type, role, description; see "
                                        "contracts/README.md), then map to it")
    if to == contract.event_time or to in contract.primary_key:
        owner = "decision_time" if to == contract.event_time else "id"
        raise _err(path, f"{where}.to", f"{to} comes from {owner}:, not from columns")
    scale = None
    if "scale" in body:
        scale = _scale(body["scale"], path, f"{where}.scale")
        dtype = contract.column(to).dtype
        if dtype not in ("int", "float"):
            raise _err(path, f"{where}.scale", f"a scale applies to int / float columns; {to} is {dtype}")
    values: tuple[tuple[str, str | None], ...] = ()
    if "values" in body:
        vmap = body["values"]
        if not isinstance(vmap, dict) or not vmap or not all(isinstance(k, str) and isinstance(v, str)
                                                             for k, v in vmap.items()):
            raise _err(path, f"{where}.values", f"expected a mapping of file value → contract value, got {vmap!r}")
        values = tuple((k.strip(), v.strip() or None) for k, v in vmap.items())
    return ColumnMap(source, to, scale, values)


def parse_mapping(raw: Any, path: str, contract: Table = APPLICATION) -> TableMapping:
    """A loaded mapping document → ``TableMapping``, checked against the ``contract`` (not yet the file)."""
    if not isinstance(raw, dict):
        raise MappingError(f"{path}: a mapping is a YAML mapping with {', '.join(_KEYS)}")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise _err(path, unknown[0], f"unknown key; expected {', '.join(_KEYS)}")
    for key in ("id", "decision_time", "columns"):
        if key not in raw:
            raise _err(path, key, "missing")
    id_column = _name(raw["id"], path, "id")
    decision = _decision_time(raw["decision_time"], path)
    label = _label(raw["label"], path) if "label" in raw else None
    if not isinstance(raw["columns"], dict):
        raise _err(path, "columns", "expected a mapping of every other column of the file to a contract column, "
                                    f"{KEEP_IN_BRONZE} or {DROP}")
    owned = {id_column: "id"}
    label_column = None if label is None else label.column
    for column, key in ((decision.column, "decision_time.column"), (label_column, "label.column")):
        if column is None:
            continue
        if column in owned:
            raise _err(path, key, f"{column} is already {owned[column]}; the id, decision time and label are "
                                  "different columns")
        owned[column] = key
    columns, bronze, drop = [], [], []
    targets: dict[str, str] = {}
    for source, spec in raw["columns"].items():
        source = _name(source, path, "columns")
        if source in owned:
            raise _err(path, f"columns.{source}", f"already used as {owned[source]}; remove it from columns")
        got = _column(source, spec, path, contract)
        if got == KEEP_IN_BRONZE:
            bronze.append(source)
        elif got == DROP:
            drop.append(source)
        else:
            assert isinstance(got, ColumnMap)
            if got.to in targets:
                raise _err(path, f"columns.{source}.to",
                       f"{got.to} is already the target of columns.{targets[got.to]}")
            targets[got.to] = source
            columns.append(got)
    # a column kept in bronze lands under its own name: not one silver reads as a contract column (DuckDB
    # names are case-insensitive), nor the landing writer's hour column, nor another bronze column's
    landed = {n.upper(): n for n in (*contract.column_names, HOUR_COLUMN)}
    for name in bronze:
        clash = landed.get(name.upper())
        if clash in contract.column_names:
            raise _err(path, f"columns.{name}", f"kept in bronze it would land as the contract column {clash}: map "
                                                f"it ({{to: {clash}}}) or {DROP} it")
        if clash is not None:
            raise _err(path, f"columns.{name}", f"kept in bronze it would land under the same name as {clash} "
                                                f"(names are case-insensitive): {DROP} one of them")
        landed[name.upper()] = name
    provided = {*contract.primary_key, contract.event_time, *targets}
    missing = [c.name for c in contract.columns if c.required and c.name not in provided]
    if missing:
        raise _err(path, "columns", f"the {contract.name} contract ({contract_path(contract)}) requires "
                                    f"{', '.join(missing)}: map a column of the file to each ({{to: NAME}}), "
                                    "or mark those a lender does not have `required: false, nullable: true` there")
    return TableMapping(path, id_column, decision, label, tuple(columns), tuple(bronze), tuple(drop))


def load_mapping(path: Path) -> TableMapping:
    """Read and check a mapping file. Scalars are read as text (``Y``, ``yes``, ``01`` stay as written)."""
    name = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise MappingError(f"{name}: cannot read the mapping ({exc.strerror or exc})") from None
    try:
        raw = yaml.load(text, Loader=yaml.BaseLoader)  # noqa: S506 - BaseLoader builds only str / list / dict
    except yaml.YAMLError as exc:
        raise MappingError(f"{name}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_mapping(raw, name)


def check_source_columns(mapping: TableMapping, columns: Sequence[str], source: str) -> None:
    """Every column the mapping names is in the file, and every column of the file is in the mapping."""
    present = set(columns)
    for name in mapping.named:
        if name not in present:
            where = ("id" if name == mapping.id else "decision_time.column" if name == mapping.decision_time.column
                     else "label.column" if mapping.label and name == mapping.label.column else f"columns.{name}")
            near = [c for c in columns if c.lower() == name.lower()]
            hint = f"; did you mean {near[0]}?" if near else f" (its columns: {', '.join(columns[:30])})"
            raise _err(mapping.path, where, f"{name} is not a column of {source}{hint}")
    unlisted = [c for c in columns if c not in set(mapping.named)]
    if unlisted:
        raise _err(mapping.path, "columns", f"{len(unlisted)} column(s) of {source} not in the mapping: "
                                            f"{', '.join(unlisted)}; map each to a contract column ({{to: NAME}}) "
                                            f"or classify it as {KEEP_IN_BRONZE} or {DROP}")


def check_schema_policy(mapping: TableMapping, policy: str) -> None:
    """Columns kept in bronze are extra columns to silver: the ``reject`` policy would quarantine every file."""
    if mapping.bronze and policy == "reject":
        raise _err(mapping.path, f"columns.{mapping.bronze[0]}",
                   f"kept in bronze, but the {APPLICATION.name} schema policy is reject, which quarantines every file "
                   f"with an extra column: {DROP} it, map it, or change the policy (CREDITRISK_SCHEMA_POLICY / "
                   f"{contract_path(APPLICATION)})")


def reason_details(mapping: TableMapping) -> dict[str, str]:
    """Reason code → what it means for the rows of this mapping (the rejected files' ``_detail``, the report)."""
    d, label = mapping.decision_time, mapping.label
    out = {MISSING_ID: f"{mapping.id} is empty", BAD_ID: f"{mapping.id} is not a positive integer"}
    if d.column is not None:
        out[MISSING_TIME] = f"{d.column} is empty"
        out[BAD_TIME] = (f"{d.column} is not a time (ISO 8601, UTC unless it has an offset)" if d.format is None
                         else f"{d.column} does not match {d.format}")
    else:
        out[ID_BELOW_BASE] = f"{mapping.id} is below decision_time.id_base"
        out[ID_OUT_OF_RANGE] = (f"{mapping.id} places the application more than {MAX_SPREAD_HOURS // (24 * 366)} "
                                "years after decision_time.start (sparse ids? give a per_hour that fits)")
    out[MALFORMED] = "a line of the CSV file that cannot be parsed (field count, quoting, encoding)"
    if label is not None:
        out[MISSING_LABEL] = f"{label.column} is empty: no outcome"
        out[UNKNOWN_LABEL] = (f"{label.column} is neither positive ({', '.join(label.positive)}) nor negative "
                              f"({', '.join(label.negative)}): no outcome")
    return out


# ----------------------------------------------------------------------------- placing rows in time

def _in(value_sql: str, values: Sequence[str]) -> str:
    return f"{value_sql} IN ({', '.join(lit(v) for v in values)})"


def column_sql(c: ColumnMap, table: Table = APPLICATION) -> str:
    """The landed text of ``c``: value map on the trimmed text (unmapped values pass unchanged), then the
    scale on numbers (text that is no number passes unchanged: silver names it a type error)."""
    v = f"s.{q(c.source)}"
    if c.values:
        whens = " ".join(f"WHEN {lit(k)} THEN {'NULL' if t is None else lit(t)}" for k, t in c.values)
        v = f"(CASE trim({v}) {whens} ELSE {v} END)"
    if c.scale is not None:
        text = f"trim({v})"
        number = (f"COALESCE(TRY_CAST({text} AS DOUBLE), CASE WHEN regexp_full_match({text}, '[+-]?[0-9]+,[0-9]+') "
                  f"THEN TRY_CAST(replace({text}, ',', '.') AS DOUBLE) END)")
        scaled = f"({number} * {c.scale!r})"
        shown = f"CAST({scaled} AS VARCHAR)"
        if table.column(c.to).dtype == "int":
            shown = (f"CASE WHEN {scaled} = trunc({scaled}) AND abs({scaled}) < 9e18 "
                     f"THEN CAST(CAST({scaled} AS BIGINT) AS VARCHAR) ELSE {shown} END")
        v = f"(CASE WHEN {number} IS NULL OR NOT isfinite({number}) THEN {v} ELSE {shown} END)"
    return f"{v} AS {q(c.to)}"


def source_format(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(SOURCE_FORMATS, key=len, reverse=True):
        if name.endswith(ext):
            return ext[1:]
    raise SourceError(f"{path}: unsupported file type; expected one of {', '.join(SOURCE_FORMATS)}")


def read_source(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """The file into temp table ``src`` (every value as text, file order); malformed CSV lines into temp
    table ``src_malformed`` (line, error). Returns the number of malformed lines."""
    fmt = source_format(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such file (--source)")
    where = lit(str(path))
    con.execute("CREATE OR REPLACE TEMP TABLE src_malformed (line BIGINT, error VARCHAR)")
    try:
        if fmt == "parquet":
            cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({where})").fetchall()]
            casts = ", ".join(f"CAST({q(c)} AS VARCHAR) AS {q(c)}" for c in cols)
            con.execute(f"CREATE OR REPLACE TEMP TABLE src AS SELECT {casts} FROM read_parquet({where})")
            return 0
        con.execute(f"""CREATE OR REPLACE TEMP TABLE src AS SELECT * FROM read_csv({where}, all_varchar = true,
                        header = true, store_rejects = true, rejects_table = 'src_rejects',
                        rejects_scan = 'src_scans')""")
        con.execute("INSERT INTO src_malformed SELECT line, min(error_type) FROM src_rejects GROUP BY line")
    except duckdb.Error as exc:
        raise SourceError(f"{path}: cannot be read as {fmt} ({str(exc).splitlines()[0]})") from None
    row = con.execute("SELECT count(*) FROM src_malformed").fetchone()
    return int(row[0]) if row else 0


def _place(con: duckdb.DuckDBPyConnection, mapping: TableMapping) -> int | None:
    """Temp table ``placed``: per source row (``_rid`` = its rowid in ``src``) the id, decision time,
    target and the reasons it is not landed / has no outcome. Returns the id base of a spread."""
    raw_id = f"trim(s.{q(mapping.id)})"
    dt_map = mapping.decision_time
    label = mapping.label
    label_sql = "NULL" if label is None else f"nullif(trim(s.{q(label.column)}), '')"
    time_text = "NULL" if dt_map.column is None else f"nullif(trim(s.{q(dt_map.column)}), '')"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE ids AS
        SELECT s.rowid AS _rid, s.rowid + 1 AS _row, nullif({raw_id}, '') AS _id_text,
               CASE WHEN regexp_full_match({raw_id}, '[+]?[0-9]+([.]0+)?')
                    THEN TRY_CAST(regexp_extract({raw_id}, '[0-9]+') AS BIGINT) END AS _id,
               {time_text} AS _time_text, {label_sql} AS _label_text
        FROM src AS s""")
    base = None
    if dt_map.column is not None:
        parsed = ("TRY_CAST(_time_text AS TIMESTAMPTZ)" if dt_map.format is None
                  else f"CAST(TRY_STRPTIME(_time_text, {lit(dt_map.format)}) AS TIMESTAMPTZ)")
        decision = f"timezone('UTC', {parsed})"
        placed_time = f"WHEN _time_text IS NULL THEN {lit(MISSING_TIME)} WHEN _decision IS NULL THEN {lit(BAD_TIME)}"
    else:
        assert dt_map.start is not None and dt_map.per_hour is not None
        if dt_map.id_base is not None:
            base = dt_map.id_base
        else:
            row = con.execute("SELECT min(_id) FROM ids WHERE _id >= 1").fetchone()
            base = int(row[0]) if row and row[0] is not None else 1
        too_far = f"(_id - {base}) // {dt_map.per_hour} > {MAX_SPREAD_HOURS}"
        decision = (f"CASE WHEN _id >= {base} AND NOT {too_far} THEN "
                    f"{spread_sql(f'_id - {int(base)}', dt_map.start, dt_map.per_hour)} END")
        placed_time = f"WHEN _id < {base} THEN {lit(ID_BELOW_BASE)} WHEN {too_far} THEN {lit(ID_OUT_OF_RANGE)}"
    target = "NULL" if label is None else (f"CASE WHEN {_in('_label_text', label.positive)} THEN 1 "
                                           f"WHEN {_in('_label_text', label.negative)} THEN 0 END")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE placed AS
        WITH t AS (SELECT *, {decision} AS _decision, {target} AS _target FROM ids)
        SELECT *, CASE WHEN _id_text IS NULL THEN {lit(MISSING_ID)} WHEN _id IS NULL OR _id < 1 THEN {lit(BAD_ID)}
                       {placed_time} END AS _reason,
                  CASE WHEN _label_text IS NULL THEN {lit(MISSING_LABEL)}
                       WHEN _target IS NULL THEN {lit(UNKNOWN_LABEL)} END AS _label_reason
        FROM t""")
    return base


# ----------------------------------------------------------------------------- the report

@dataclass
class TableCounts:
    """One landed table: rows read = written + rejected (by reason); the landing files written."""

    read: int = 0
    written: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason code → rows
    files: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # reason code → what it means

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def line(self, table: str) -> str:
        reasons = ", ".join(f"{r}: {n:,}" for r, n in sorted(self.rejected.items(), key=lambda kv: (-kv[1], kv[0])))
        return (f"{table}: read {self.read:,}, written {self.written:,} ({len(self.files)} landing file(s)), "
                f"rejected {self.rejected_total:,}" + (f" ({reasons})" if reasons else ""))


@dataclass
class ImportReport:
    import_id: str
    source: str
    mapping: str
    tables: dict[str, TableCounts]
    hours: list[dt.datetime]  # every landing hour written, both tables
    id_base: int | None = None  # the base of a spread by id (give it as decision_time.id_base to repeat it)
    bronze_only: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    report_key: str = ""
    rejected_keys: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """read = written + rejected for every table (raises ImportAccountingError)."""
        for name, t in self.tables.items():
            if t.read != t.written + t.rejected_total:
                raise ImportAccountingError(f"{name}: read {t.read} != written {t.written} + rejected "
                                            f"{t.rejected_total}")

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["hours"] = [f"{h:%Y-%m-%dT%H:%M}" for h in self.hours]
        for name, t in self.tables.items():
            out["tables"][name]["rejected_total"] = t.rejected_total
        return out

    def lines(self) -> list[str]:
        span = f"{self.hours[0]:%Y-%m-%dT%H:%M} .. {self.hours[-1]:%Y-%m-%dT%H:%M}" if self.hours else "none"
        out = [f"import table {self.import_id}: {self.source} with {self.mapping}; landing hours {span}"]
        for name, t in self.tables.items():
            out.append(t.line(name))
            out += [f"  {code}: {detail}" for code, detail in t.reasons.items()]
        if self.id_base is not None:
            out.append(f"decision times spread by id from id_base {self.id_base}")
        if self.bronze_only:
            out.append(f"kept in bronze only: {', '.join(self.bronze_only)}")
        out += [f"rejected rows of {name}: {key}" for name, key in self.rejected_keys.items()]
        out.append(f"report: {self.report_key}")
        return out


def _count_by(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, int]:
    return {str(r): int(n) for r, n in con.execute(sql).fetchall()}


def _hours(con: duckdb.DuckDBPyConnection, sql: str) -> list[dt.datetime]:
    return [r[0] for r in con.execute(f"SELECT DISTINCT {HOUR_COLUMN} FROM ({sql}) ORDER BY 1").fetchall()]


def _put_csv(con: duckdb.DuckDBPyConnection, sql: str, store: ObjectStore, key: str) -> None:
    with tempfile.TemporaryDirectory(prefix="creditrisk-import-") as tmp:
        path = Path(tmp) / "rejected.csv"
        con.execute(f"COPY ({sql}) TO {lit(str(path))} (FORMAT csv, HEADER true)")
        store.put_file(key, path)


def new_import_id(now: dt.datetime | None = None) -> str:
    return f"{(now or dt.datetime.now(dt.UTC)):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def import_table(source: Path, mapping: TableMapping, store: ObjectStore, settings: Settings,
                 import_id: str | None = None, replace: bool = False, progress: bool = False) -> ImportReport:
    """Land the rows of ``source`` per ``mapping``; write the rejected rows and the report; return the report.

    Nothing is written when the file does not fit the mapping, or when a landing file it would write
    exists already (an earlier import or simulation of the same hours) unless ``replace``.
    """
    from ..quality.runner import policy_for

    import_id = import_id or new_import_id()
    if not _IMPORT_ID_RE.match(import_id):
        raise SourceError(f"import id {import_id!r}: use letters, digits, '.', '_' or '-' (--import-id)")
    check_schema_policy(mapping, policy_for(APPLICATION, settings))
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        malformed = read_source(con, source)
        columns = [r[0] for r in con.execute("DESCRIBE src").fetchall()]
        check_source_columns(mapping, columns, source.name)
        base = _place(con, mapping)
        ok = "p._reason IS NULL"
        app_cols = [f"CAST(p._id AS VARCHAR) AS {q('SK_ID_CURR')}",
                    f"strftime(p._decision, '{TIME_TEXT}') AS {q(APPLICATION.event_time)}",
                    *(column_sql(c) for c in mapping.columns), *(f"s.{q(b)}" for b in mapping.bronze),
                    f"date_trunc('hour', p._decision) AS {HOUR_COLUMN}"]
        app_sql = f"SELECT {', '.join(app_cols)} FROM placed AS p JOIN src AS s ON s.rowid = p._rid WHERE {ok}"
        out_sql = None
        if mapping.label is not None:
            outcome = f"(p._decision + to_hours({mapping.label.outcome_delay_hours}))"
            out_sql = (f"SELECT CAST(p._id AS VARCHAR) AS {q('SK_ID_CURR')}, CAST(p._target AS VARCHAR) AS "
                       f"{q('TARGET')}, strftime({outcome}, '{TIME_TEXT}') AS {q(LOAN_OUTCOME.event_time)}, "
                       f"date_trunc('hour', {outcome}) AS {HOUR_COLUMN} FROM placed AS p "
                       f"WHERE {ok} AND p._label_reason IS NULL")
        plan = {APPLICATION.name: app_sql, **({LOAN_OUTCOME.name: out_sql} if out_sql else {})}
        _refuse_before_partitions(con, app_sql, settings)
        if not replace:
            _refuse_overwrite(con, plan, store)

        tables: dict[str, TableCounts] = {}
        app = TableCounts(read=_scalar(con, "SELECT count(*) FROM src") + malformed)
        app.rejected = _count_by(con, "SELECT _reason, count(*) FROM placed WHERE _reason IS NOT NULL GROUP BY 1")
        if malformed:
            app.rejected[MALFORMED] = malformed
        for name, sql in plan.items():
            counts = write_hourly(con, sql, TABLES[name], store, progress=progress)
            t = app if name == APPLICATION.name else TableCounts()
            t.written, t.files = sum(counts.values()), sorted(counts)
            tables[name] = t
        hours = sorted({h for sql in plan.values() for h in _hours(con, sql)})
        if mapping.label is not None:
            out = tables[LOAN_OUTCOME.name]
            out.read = app.written  # every landed application may have an outcome
            out.rejected = _count_by(con, f"SELECT _label_reason, count(*) FROM placed AS p WHERE {ok} AND "
                                          "_label_reason IS NOT NULL GROUP BY 1")

        details = reason_details(mapping)
        for t in tables.values():
            t.reasons = {code: details[code] for code in sorted(t.rejected)}
        report = ImportReport(import_id, str(source), mapping.path, tables, hours, base, list(mapping.bronze),
                              list(mapping.drop), import_report_key(SOURCE, import_id))
        report.check()
        detail = "CASE _reason " + " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in details.items()) + " END"
        if app.rejected:  # the row as the file has it (but the columns the mapping drops), with why
            key = import_rejected_key(SOURCE, import_id, APPLICATION.name)
            raw = ", ".join(f"s.{q(c)}" for c in columns if c not in set(mapping.drop))
            _put_csv(con, f"""SELECT _source_row, _source_line, _reason, {detail} || coalesce(': ' || _error, '') AS _detail,
                                     * EXCLUDE (_source_row, _source_line, _reason, _error)
                              FROM (SELECT p._row AS _source_row, NULL::BIGINT AS _source_line, p._reason AS _reason,
                                           NULL::VARCHAR AS _error, {raw}
                                    FROM placed AS p JOIN src AS s ON s.rowid = p._rid WHERE p._reason IS NOT NULL
                                    UNION ALL BY NAME
                                    SELECT line AS _source_line, '{MALFORMED}' AS _reason, error AS _error
                                    FROM src_malformed)
                              ORDER BY _source_row NULLS LAST, _source_line""", store, key)
            report.rejected_keys[APPLICATION.name] = key
        if mapping.label is not None and tables[LOAN_OUTCOME.name].rejected:
            key = import_rejected_key(SOURCE, import_id, LOAN_OUTCOME.name)
            _put_csv(con, f"""SELECT _row AS _source_row, CAST(_id AS VARCHAR) AS SK_ID_CURR, _reason, {detail} AS _detail,
                                     _label_text AS {q(mapping.label.column)}
                              FROM (SELECT * EXCLUDE (_reason), _label_reason AS _reason FROM placed
                                    WHERE _reason IS NULL AND _label_reason IS NOT NULL) ORDER BY _row""",
                     store, key)
            report.rejected_keys[LOAN_OUTCOME.name] = key
    finally:
        con.close()
    store.put_bytes(report.report_key, (json.dumps(report.to_json(), indent=1, sort_keys=True) + "\n").encode())
    log.info("table imported", extra={"import_id": import_id, "hours": len(hours),
                                      **{f"{n}_{k}": getattr(t, k) for n, t in tables.items()
                                         for k in ("read", "written", "rejected_total")}})
    return report


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _refuse_before_partitions(con: duckdb.DuckDBPyConnection, app_sql: str, settings: Settings) -> None:
    """Landing hours before the first hourly partition are never ingested by the Dagster assets."""
    first = dt.datetime.strptime(settings.partitions_start, HOUR_FMT)
    hours = _hours(con, app_sql)
    if hours and hours[0] < first:
        raise SourceError(f"the first decision lands in hour {hours[0]:%Y-%m-%dT%H:%M}, before the first hourly "
                          f"partition ({settings.partitions_start}): the assets would never ingest it; set "
                          f"CREDITRISK_PARTITIONS_START to {hours[0]:{HOUR_FMT}} or earlier, or move decision_time")


def _refuse_overwrite(con: duckdb.DuckDBPyConnection, plan: dict[str, str], store: ObjectStore) -> None:
    for name, sql in plan.items():
        table = TABLES[name]
        existing = {o.key for o in store.list(landing_table_prefix(table.name))}
        clash = [k for k in (landing_file_key(table.name, h, table.landing_format) for h in _hours(con, sql))
                 if k in existing]
        if clash:
            raise SourceError(f"{len(clash)} {table.name} landing file(s) of these hours exist already (e.g. "
                              f"{clash[0]}, from an earlier import or simulation): pass --replace to overwrite "
                              "them, or place the rows in other hours (decision_time)")


# ----------------------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="creditrisk import table",
        description="Land a lender's own application table (with a default flag) as application and loan_outcome "
                    "landing files, per a mapping YAML (see creditrisk_assets/ingest/mapping.py for its form).")
    ap.add_argument("--source", required=True, type=Path, metavar="FILE", help="the table: .csv, .csv.gz or .parquet")
    ap.add_argument("--mapping", required=True, type=Path, metavar="MAPPING.yml",
                    help="which column is the id, the decision time, the label, and what every other column is")
    ap.add_argument("--import-id", default=None, help="names imports/table/<id>/ (default: UTC time + random suffix)")
    ap.add_argument("--replace", action="store_true", help="overwrite landing files of the same hours")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    return ap


def main(argv: list[str]) -> int:
    """``creditrisk import table``: 0 when landed, 2 for a mapping / file to fix, 1 when the store fails."""
    from ..logs import configure_logging

    args = build_parser().parse_args(argv)
    prog = "creditrisk import table"
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        mapping = load_mapping(args.mapping)
        store = open_store_for_writing(settings)
        report = import_table(args.source, mapping, store, settings, import_id=args.import_id,
                              replace=args.replace, progress=not args.no_progress)
    except (MappingError, SourceError, SettingsError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except ObjectStoreError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0

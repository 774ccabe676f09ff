"""Column contracts of every source table, loaded from the YAML files beside this module.

One file per source table (``<table>.yml``) is the one place that says what a row must look like:
read by the simulator (what to write), bronze (which tables exist, their landing format), silver
(types, rules, keys, PII handling, which columns flow on), the dbt sources, the docs and the asset
metadata (``contract_markdown``), and the Home Credit importer (``homecredit:`` mappings). A user
adds a column or a table by editing or adding a YAML file; no Python changes. The schema of a file
is in ``README.md`` beside it; every file is validated when loaded, and an error names the file,
the table and the column.

Column names follow Home Credit's where they exist. Time columns are absolute (ISO-8601, UTC)
instead of Home Credit's "days relative to the application", so features can be computed
point-in-time; each column's ``homecredit:`` entry says which published column it comes from and
how the relative value is turned into an absolute one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml  # type: ignore[import-untyped]  # types-PyYAML is not in the dev dependencies

DType = Literal["int", "float", "str", "date", "timestamp"]
#: none: not personal; identifier: pseudonymised by keyed HMAC; free_text: dropped in silver;
#: birth_date: turned into age at application; sensitive: kept but never used as a feature.
PiiClass = Literal["none", "identifier", "free_text", "birth_date", "sensitive"]
#: key: an identifier or join key; event_time: places the row in time; feature: may feed features;
#: label: the outcome to predict; fairness: kept for fairness analysis, never a feature;
#: drop: known, but stays in bronze (not copied to silver).
Role = Literal["key", "event_time", "feature", "label", "fairness", "drop"]
FileFormat = Literal["csv", "csv.gz", "jsonl", "jsonl.gz", "parquet"]
Relative = Literal["days", "months"]
SchemaPolicy = Literal["alert", "auto_correct", "reject"]

CONTRACTS_DIR = Path(__file__).resolve().parent


class ContractError(ValueError):
    """A contract file that does not follow the schema; the message names file, table and column."""


@dataclass(frozen=True)
class HomeCreditColumn:
    """Where a contract column comes from in the published Home Credit files."""

    column: str
    relative: Relative | None = None  # days / months relative to the application, turned absolute on import


@dataclass(frozen=True)
class HomeCreditTable:
    """Which published file(s) a table is read from and how its rows are placed in time.

    ``anchor``: ``decision`` (the application itself), ``outcome`` (the label, from the application
    file), ``key`` (rows carry the application id in ``anchor_key``) or ``via`` (rows reach the
    application through ``anchor_via``'s ``anchor_key``, e.g. bureau_balance → bureau).
    """

    files: tuple[str, ...]
    anchor: Literal["decision", "outcome", "key", "via"]
    anchor_key: str | None = None
    anchor_via: str | None = None


@dataclass(frozen=True)
class Column:
    name: str
    dtype: DType
    description: str
    nullable: bool = False
    required: bool = True  # a file without it is quarantined whole; optional ones are null-filled
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    pii: PiiClass = "none"
    role: Role = "feature"
    homecredit: HomeCreditColumn | None = None  # None: the published files do not have it

    @property
    def in_silver(self) -> bool:
        """Copied to silver (pseudonymised where personal); ``drop`` and free text stay in bronze."""
        return self.role != "drop" and self.pii != "free_text"


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    event_time: str  # the column that places a row in time (point-in-time joins use it)
    landing_format: FileFormat
    schema_policy: SchemaPolicy = "auto_correct"
    homecredit: HomeCreditTable | None = None
    source_file: str = ""  # the YAML file it was loaded from
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


# ----------------------------------------------------------------------------- loading

_TABLE_KEYS = {"table", "description", "primary_key", "event_time", "landing_format", "schema_policy",
               "homecredit", "columns"}
_COLUMN_KEYS = {"name", "type", "role", "description", "nullable", "required", "min", "max", "allowed", "pii",
                "homecredit"}


def _fail(path: Path, table: str, column: str | None, problem: str) -> ContractError:
    where = f"{path.name}: table {table}" + (f", column {column}" if column else "")
    return ContractError(f"{where}: {problem}")


def _choice(value: Any, options: tuple[str, ...], what: str, path: Path, table: str, column: str | None) -> str:
    if value not in options:
        raise _fail(path, table, column, f"{what} {value!r} is not one of {', '.join(options)}")
    return str(value)


def _number(value: Any, what: str, path: Path, table: str, column: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, table, column, f"{what} must be a number, got {value!r}")
    return float(value)


def _column(raw: Any, path: Path, table: str) -> Column:
    if not isinstance(raw, dict) or "name" not in raw:
        raise _fail(path, table, None, f"every column needs a mapping with a name, got {raw!r}")
    name = str(raw["name"])
    unknown = set(raw) - _COLUMN_KEYS
    if unknown:
        raise _fail(path, table, name, f"unknown key(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(_COLUMN_KEYS))}")
    for key in ("type", "role", "description"):
        if key not in raw:
            raise _fail(path, table, name, f"missing {key!r}")
    dtype = _choice(raw["type"], get_args(DType), "type", path, table, name)
    role = _choice(raw["role"], get_args(Role), "role", path, table, name)
    pii = _choice(raw.get("pii", "none"), get_args(PiiClass), "pii", path, table, name)
    nullable, required = raw.get("nullable", False), raw.get("required", True)
    if not isinstance(nullable, bool) or not isinstance(required, bool):
        raise _fail(path, table, name, "nullable and required must be true or false")
    if not required and not nullable:
        raise _fail(path, table, name, "an optional column (required: false) must be nullable: a file without it "
                                       "is null-filled")
    if pii != "none" and pii != "sensitive" and required:
        raise _fail(path, table, name, f"a {pii} column must be optional (required: false, nullable: true): "
                                       "many sources do not have personal data")
    if pii == "free_text" and role != "drop":
        raise _fail(path, table, name, "free text never reaches silver: its role must be drop")
    lo, hi = _number(raw.get("min"), "min", path, table, name), _number(raw.get("max"), "max", path, table, name)
    if lo is not None and hi is not None and lo > hi:
        raise _fail(path, table, name, f"min {lo:g} is above max {hi:g}")
    if (lo is not None or hi is not None) and dtype not in ("int", "float"):
        raise _fail(path, table, name, f"min/max only apply to int and float columns, not {dtype}")
    allowed = raw.get("allowed")
    if allowed is not None:
        if dtype != "str" or not isinstance(allowed, list) or not allowed:
            raise _fail(path, table, name, "allowed must be a non-empty list, on a str column")
        allowed = tuple(str(a) for a in allowed)
    hc = raw.get("homecredit", {"column": name})
    source = None
    if hc is not None:
        if isinstance(hc, str):
            hc = {"column": hc}
        if not isinstance(hc, dict) or "column" not in hc or set(hc) - {"column", "relative"}:
            raise _fail(path, table, name, "homecredit must be null, a column name or {column, relative}")
        rel = hc.get("relative")
        if rel is not None:
            _choice(rel, get_args(Relative), "homecredit.relative", path, table, name)
            if dtype not in ("date", "timestamp"):
                raise _fail(path, table, name, "a relative homecredit column becomes a date or timestamp")
        source = HomeCreditColumn(str(hc["column"]), rel)
    return Column(name=name, dtype=dtype, description=str(raw["description"]), nullable=nullable,  # type: ignore[arg-type]
                  required=required, min=lo, max=hi, allowed=allowed, pii=pii, role=role, homecredit=source)  # type: ignore[arg-type]


def _homecredit_table(raw: Any, path: Path, table: str, columns: dict[str, Column]) -> HomeCreditTable | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("files"), list) or not raw["files"]:
        raise _fail(path, table, None, "homecredit needs files: [<published file name>, ...]")
    anchor = raw.get("anchor")
    files = tuple(str(f) for f in raw["files"])
    if anchor in ("decision", "outcome"):
        return HomeCreditTable(files, anchor)
    if isinstance(anchor, dict) and "key" in anchor and set(anchor) <= {"key", "via"}:
        key = str(anchor["key"])
        if key not in columns:
            raise _fail(path, table, key, "homecredit.anchor.key is not a column of the table")
        via = anchor.get("via")
        return HomeCreditTable(files, "via" if via else "key", key, None if via is None else str(via))
    raise _fail(path, table, None, "homecredit.anchor must be decision, outcome, {key: COL} or {via: TABLE, key: COL}")


def load_table(path: Path) -> Table:
    """One contract file → ``Table``, validated (``ContractError`` names file, table and column)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ContractError(f"{path.name}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict) or "table" not in raw:
        raise ContractError(f"{path.name}: a contract is a mapping starting with 'table: <name>'")
    name = str(raw["table"])
    if name != path.stem:
        raise _fail(path, name, None, f"the file must be named {name}.yml")
    unknown = set(raw) - _TABLE_KEYS
    if unknown:
        raise _fail(path, name, None, f"unknown key(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(_TABLE_KEYS))}")
    for key in ("description", "primary_key", "event_time", "landing_format", "columns"):
        if key not in raw:
            raise _fail(path, name, None, f"missing {key!r}")
    if not isinstance(raw["columns"], list) or not raw["columns"]:
        raise _fail(path, name, None, "columns must be a non-empty list")
    columns: dict[str, Column] = {}
    for item in raw["columns"]:
        col = _column(item, path, name)
        if col.name in columns:
            raise _fail(path, name, col.name, "defined twice")
        columns[col.name] = col
    pk = tuple(str(k) for k in raw["primary_key"])
    for k in pk:
        if k not in columns:
            raise _fail(path, name, k, "primary key column is not defined")
        if columns[k].role not in ("key", "event_time") or columns[k].nullable:
            raise _fail(path, name, k, "a primary key column needs role key (or event_time) and no nulls")
    event_time = str(raw["event_time"])
    if event_time not in columns or columns[event_time].dtype not in ("date", "timestamp"):
        raise _fail(path, name, event_time, "event_time must name a date or timestamp column")
    if columns[event_time].role != "event_time":
        raise _fail(path, name, event_time, "the event-time column needs role event_time")
    others = [c.name for c in columns.values() if c.role == "event_time" and c.name != event_time]
    if others:
        raise _fail(path, name, others[0], f"role event_time is reserved for the table's event_time {event_time}")
    return Table(
        name=name, description=str(raw["description"]), columns=tuple(columns.values()), primary_key=pk,
        event_time=event_time,
        landing_format=_choice(raw["landing_format"], get_args(FileFormat), "landing_format", path, name, None),  # type: ignore[arg-type]
        schema_policy=_choice(raw.get("schema_policy", "auto_correct"), get_args(SchemaPolicy), "schema_policy",  # type: ignore[arg-type]
                              path, name, None),
        homecredit=_homecredit_table(raw.get("homecredit"), path, name, columns), source_file=path.name,
    )


#: the order tables are listed in (the pipeline's natural order); tables added by users follow, by name
_ORDER = ("application", "bureau", "bureau_balance", "previous_application", "installments_payments",
          "credit_card_balance", "pos_cash_balance", "loan_outcome")


def load_contracts(directory: Path = CONTRACTS_DIR) -> dict[str, Table]:
    """Every ``*.yml`` contract in ``directory``, validated, by table name."""
    tables = [load_table(p) for p in sorted(directory.glob("*.yml"))]
    rank = {n: i for i, n in enumerate(_ORDER)}
    tables.sort(key=lambda t: (rank.get(t.name, len(rank)), t.name))
    out = {t.name: t for t in tables}
    for t in out.values():
        hc = t.homecredit
        if hc is not None and hc.anchor == "via" and hc.anchor_via not in out:
            raise _fail(directory / t.source_file, t.name, None, f"homecredit.anchor.via names no table: {hc.anchor_via}")
    return out


TABLES: dict[str, Table] = load_contracts()
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
APPLICATION = TABLES["application"]
LOAN_OUTCOME = TABLES["loan_outcome"]


def contract_markdown(table: Table) -> str:
    """The contract as a markdown table (docs and asset metadata)."""
    lines = [
        f"**{table.name}** — {table.description}  ",
        f"key: `{', '.join(table.primary_key)}` · event time: `{table.event_time}` · "
        f"landing format: `{table.landing_format}` · schema policy: `{table.schema_policy}` · "
        f"contract: `creditrisk_assets/contracts/{table.source_file}`",
        "",
        "| column | type | role | null | required | range / values | PII | Home Credit | description |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in table.columns:
        if c.allowed:
            rng = ", ".join(c.allowed)
        elif c.min is not None or c.max is not None:
            rng = _rng(c)
        else:
            rng = ""
        hc = "" if c.homecredit is None else c.homecredit.column + (
            f" (relative {c.homecredit.relative})" if c.homecredit.relative else "")
        lines.append(
            f"| {c.name} | {c.dtype} | {c.role} | {'yes' if c.nullable else 'no'} | {'yes' if c.required else 'no'} "
            f"| {rng} | {c.pii if c.pii != 'none' else ''} | {hc} | {c.description} |"
        )
    return "\n".join(lines)


def _rng(c: Column) -> str:
    lo = "-inf" if c.min is None else f"{c.min:g}"
    hi = "+inf" if c.max is None else f"{c.max:g}"
    return f"[{lo}, {hi}]"

"""Bronze text rows → typed, validated, deduplicated, pseudonymised silver rows + quarantine.

All row-level work is one set of SQL statements in DuckDB (vectorised, no Python per row):

1. per source file, compare its columns with the contract (schema evolution, per policy);
   columns with role ``drop`` are known but stay in bronze: a file without them is normal;
2. type every column (``auto_correct`` also coerces lossless variants: comma decimals, other
   date formats), collect every violated rule of every row into a list (``drop`` columns are
   neither typed nor checked: nothing downstream reads them);
3. among clean rows, keep the first per primary key; later copies are quarantined as
   ``duplicate_row`` (identical) or ``duplicate_key`` (conflicting), also across partitions;
4. pseudonymise identifiers (keyed HMAC-SHA256 in SQL), turn date of birth into age at the
   event time, drop free text; quarantined rows keep a pseudonymised JSON payload.

Every bronze row ends in exactly one of silver or quarantine: ``account_rows`` checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

from ..contracts import Column, Table
from ..ingest.bronze import CONTROL_PREFIX, LINEAGE_COLUMNS, MALFORMED_SUFFIX
from .pii import hmac_sql, raw_pii_columns, silver_name

Policy = str  # "alert" | "auto_correct" | "reject"
POLICIES = ("alert", "auto_correct", "reject")
SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "str": "VARCHAR", "date": "DATE", "timestamp": "TIMESTAMP"}
AGE_RANGE = (18, 100)
SILVER_LINEAGE = {"_partition": "VARCHAR", "_source_uri": "VARCHAR", "_source_sha256": "VARCHAR",
                  "_row_ordinal": "BIGINT", "_ingest_run_id": "VARCHAR", "_silver_run_id": "VARCHAR"}
QUARANTINE_DDL = {"table_name": "VARCHAR", "partition": "VARCHAR", "source_uri": "VARCHAR",
                  "source_sha256": "VARCHAR", "row_ordinal": "BIGINT", "rule": "VARCHAR", "reason": "VARCHAR",
                  "payload": "VARCHAR", "silver_run_id": "VARCHAR", "quarantined_at": "TIMESTAMP"}
SCHEMA_EVENT_DDL = {"table_name": "VARCHAR", "partition": "VARCHAR", "source_uri": "VARCHAR",
                    "source_sha256": "VARCHAR", "event": "VARCHAR", "column_name": "VARCHAR",
                    "policy": "VARCHAR", "action": "VARCHAR", "rows_affected": "BIGINT",
                    "silver_run_id": "VARCHAR"}


@dataclass
class SchemaEvent:
    partition: str
    source_uri: str
    source_sha256: str
    event: str  # missing_required_column | missing_optional_column | extra_column | type_coerced
    column_name: str
    policy: str
    action: str
    rows_affected: int = 0


@dataclass
class SilverResult:
    table: str
    partitions: list[str]
    bronze_rows: int = 0
    silver_rows: int = 0
    quarantined_rows: int = 0
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    schema_events: list[SchemaEvent] = field(default_factory=list)
    snapshot_id: int | None = None
    chunks: int = 1  # chronological chunks of hours the run was cut into (quality.runner.run_silver)


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ----------------------------------------------------------------------------- DDL

def silver_columns(table: Table) -> dict[str, str]:
    """Silver column → SQL type (after PII handling), then lineage columns."""
    cols: dict[str, str] = {}
    for c in table.columns:
        name = silver_name(c)
        if name is None:
            continue
        cols[name] = "VARCHAR" if c.pii == "identifier" else ("INTEGER" if c.pii == "birth_date" else SQL_TYPES[c.dtype])
    return {**cols, **SILVER_LINEAGE}


def ensure_lake_tables(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    """Create the silver tables of ``table`` that are missing, and add the columns a contract gained since
    they were created (older rows read null), in one lake transaction (a concurrent run may do the same:
    ``Lake.transact`` takes turns and retries). A column a contract lost stays in the lake, unwritten."""
    from ..resources import Lake

    wanted = ((table.name, silver_columns(table)), ("quarantine", QUARANTINE_DDL), ("schema_events", SCHEMA_EVENT_DDL))
    present: dict[str, set[str]] = {}
    for name, column in con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = 'lake' "
                                    "AND schema_name = 'silver'").fetchall():
        present.setdefault(name, set()).add(column)
    if all(name in present and set(ddl) <= present[name] for name, ddl in wanted):
        return

    def work(c: duckdb.DuckDBPyConnection) -> None:
        c.execute("CREATE SCHEMA IF NOT EXISTS lake.silver")
        for name, ddl in wanted:
            cols = ", ".join(f"{q(k)} {v}" for k, v in ddl.items())
            c.execute(f"CREATE TABLE IF NOT EXISTS lake.silver.{q(name)} ({cols})")
            for column, sql_type in ddl.items():
                if name in present and column not in present[name]:
                    c.execute(f"ALTER TABLE lake.silver.{q(name)} ADD COLUMN IF NOT EXISTS {q(column)} {sql_type}")

    Lake.transact(con, work)


# ----------------------------------------------------------------------------- typing

def _canonical(c: Column, v: str) -> str:
    if c.dtype == "int":
        return f"CASE WHEN regexp_full_match({v}, '[+-]?[0-9]+') THEN TRY_CAST({v} AS BIGINT) END"
    if c.dtype == "float":
        return (f"CASE WHEN regexp_full_match({v}, '[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?') "
                f"THEN TRY_CAST({v} AS DOUBLE) END")
    if c.dtype == "date":
        return f"TRY_STRPTIME({v}, '%Y-%m-%d')::DATE"
    if c.dtype == "timestamp":
        return f"COALESCE(TRY_STRPTIME({v}, '%Y-%m-%dT%H:%M:%S'), TRY_STRPTIME({v}, '%Y-%m-%d %H:%M:%S'))"
    return v


def _corrected(c: Column, v: str) -> str | None:
    """A lossless reading of common variants, or None when there is none."""
    if c.dtype == "float":
        return f"CASE WHEN regexp_full_match({v}, '[+-]?[0-9]+,[0-9]+') THEN TRY_CAST(replace({v}, ',', '.') AS DOUBLE) END"
    if c.dtype == "int":
        return (f"CASE WHEN regexp_full_match({v}, '[+-]?[0-9]+[.,]0+') "
                f"THEN TRY_CAST(regexp_extract({v}, '^[+-]?[0-9]+') AS BIGINT) END")
    if c.dtype == "date":
        fmts = ["%d/%m/%Y", "%Y/%m/%d", "%d.%m.%Y", "%Y%m%d"]
        return "COALESCE(" + ", ".join(f"TRY_STRPTIME({v}, '{f}')::DATE" for f in fmts) + ")"
    if c.dtype == "timestamp":
        fmts = ["%d/%m/%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%f"]
        return "COALESCE(" + ", ".join(f"TRY_STRPTIME({v}, '{f}')" for f in fmts) + ")"
    return None


def _rules(c: Column, raw: str, typed: str) -> list[tuple[str, str]]:
    """(SQL condition, violation text) for every rule of one column."""
    name = c.name
    rules = [(f"{raw} IS NOT NULL AND {typed} IS NULL", f"type: {name} is not a valid {c.dtype}")]
    if not c.nullable:
        rules.append((f"{raw} IS NULL", f"not_null: {name} is missing"))
    if c.min is not None:
        rules.append((f"{typed} < {c.min!r}", f"range: {name} below {c.min:g}"))
    if c.max is not None:
        rules.append((f"{typed} > {c.max!r}", f"range: {name} above {c.max:g}"))
    if c.allowed:
        values = ", ".join(lit(a) for a in c.allowed)
        rules.append((f"{typed} NOT IN ({values})", f"allowed_values: {name} not an allowed value"))
    return rules


def flagged_list(pairs: list[tuple[str, str]]) -> str:
    """The texts whose condition holds, as a list; the list is only built for rows where one does."""
    if not pairs:
        return "[]::VARCHAR[]"
    any_ = " OR ".join(f"({cond})" for cond, _ in pairs)
    items = ", ".join(f"CASE WHEN {cond} THEN {text} END" for cond, text in pairs)
    return f"CASE WHEN {any_} THEN list_filter([{items}], x -> x IS NOT NULL) ELSE []::VARCHAR[] END"


# ----------------------------------------------------------------------------- per table (bronze and online)
# over rows with the raw text of every column in ``<column>__raw``: silver's, and ``gold.online``'s for request rows

def typed_columns(table: Table, policy: Policy) -> tuple[list[str], list[tuple[str, str]]]:
    """``<typed reading> AS <column>`` for every column (canonical, and with ``auto_correct`` a lossless
    corrected reading where the canonical one fails), and (condition, column name literal) flagging the rows
    whose value of that column only the corrected reading gives."""
    typed_cols: list[str] = []
    coerced_flags: list[tuple[str, str]] = []
    for c in table.columns:
        raw = q(c.name + "__raw")
        if c.role == "drop":  # never leaves bronze: kept as text, not typed, checked or coerced
            typed_cols.append(f"{raw} AS {q(c.name)}")
            continue
        canonical = _canonical(c, raw)
        corrected = _corrected(c, raw) if policy == "auto_correct" else None
        if corrected:
            typed_cols.append(f"COALESCE({canonical}, {corrected}) AS {q(c.name)}")
            coerced_flags.append((f"{raw} IS NOT NULL AND ({canonical}) IS NULL AND ({corrected}) IS NOT NULL",
                                  lit(c.name)))
        else:
            typed_cols.append(f"{canonical} AS {q(c.name)}")
    return typed_cols, coerced_flags


def rule_checks(table: Table) -> list[tuple[str, str, str]]:
    """(column, SQL condition over its raw and typed values, violation text) for every rule silver checks,
    the age range of a birth date included (``drop`` columns are not checked)."""
    checks: list[tuple[str, str, str]] = []
    for c in table.columns:
        if c.role == "drop":
            continue
        checks += [(c.name, cond, text) for cond, text in _rules(c, q(c.name + "__raw"), q(c.name))]
        if c.pii == "birth_date":
            age = _age_sql(c.name, table.event_time)
            checks.append((c.name, f"{age} NOT BETWEEN {AGE_RANGE[0]} AND {AGE_RANGE[1]}",
                           f"range: age from {c.name} outside [{AGE_RANGE[0]}, {AGE_RANGE[1]}]"))
    return checks


def silver_output(table: Table, pii_key: str) -> list[tuple[str, str]]:
    """(silver column, expression over the typed columns) for every column silver keeps: identifiers as keyed
    HMAC, a birth date as age at the event time (free text and ``drop`` columns are not kept)."""
    out: list[tuple[str, str]] = []
    for c in table.columns:
        name = silver_name(c)
        if name is None:
            continue
        if c.pii == "identifier":
            out.append((name, hmac_sql(q(c.name), pii_key)))  # a str column: typed = trimmed text
        elif c.pii == "birth_date":
            out.append((name, f"CAST({_age_sql(c.name, table.event_time)} AS INTEGER)"))
        else:
            out.append((name, q(c.name)))
    return out


# ----------------------------------------------------------------------------- schema

def file_columns(con: duckdb.DuckDBPyConnection, uri: str) -> list[str]:
    rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({lit(uri)}, hive_partitioning=false)").fetchall()
    return [r[0] for r in rows if r[0] not in LINEAGE_COLUMNS]


def schema_events_for_file(table: Table, columns: list[str], policy: Policy, partition: str, uri: str,
                           sha: str) -> tuple[list[SchemaEvent], str | None]:
    """(events, reason to quarantine the whole file or None)."""
    events: list[SchemaEvent] = []
    reject_reasons: list[str] = []
    present = set(columns) - {"_no_columns"}
    for c in table.columns:
        if c.name in present or c.role == "drop":  # a drop column stays in bronze: a source without it is normal
            continue
        if c.required:
            events.append(SchemaEvent(partition, uri, sha, "missing_required_column", c.name, policy,
                                      "file quarantined"))
            reject_reasons.append(f"required column {c.name} missing")
        elif policy == "reject":
            events.append(SchemaEvent(partition, uri, sha, "missing_optional_column", c.name, policy,
                                      "file quarantined (policy reject)"))
            reject_reasons.append(f"optional column {c.name} missing (policy reject)")
        else:
            events.append(SchemaEvent(partition, uri, sha, "missing_optional_column", c.name, policy,
                                      "filled with null"))
    for name in sorted(present - set(table.column_names)):
        if policy == "reject":
            events.append(SchemaEvent(partition, uri, sha, "extra_column", name, policy, "file quarantined (policy reject)"))
            reject_reasons.append(f"unexpected column {name} (policy reject)")
        else:
            events.append(SchemaEvent(partition, uri, sha, "extra_column", name, policy,
                                      "kept aside: values stay in bronze, not copied to silver"))
    return events, ("schema: " + "; ".join(reject_reasons)) if reject_reasons else None


# ----------------------------------------------------------------------------- transform

def build_silver(con: duckdb.DuckDBPyConnection, table: Table, bronze_uris: list[str], partitions: list[str],
                 policy: Policy, pii_key: str, run_id: str, check_earlier_partitions: bool = True,
                 run_partitions: list[str] | None = None, carry_keys: bool = False) -> SilverResult:
    """Fill temp tables ``silver_out``, ``quarantine_out`` and ``events_out`` for ``partitions``.

    A run over many hours calls this once per chronological chunk of them (``run_partitions``: every partition
    of the run, which the check against earlier silver partitions leaves out; ``carry_keys``: the first
    occurrence of every key of the earlier chunks, kept in the narrow temp table ``dedup_seen``, ranks before
    this chunk's rows). The outcome is the same as one call over the whole run, row for row and reason for reason.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown schema policy {policy!r}; expected one of {POLICIES}")
    schemas = _check_file_schemas(con, table, bronze_uris, policy)
    _register_file_rejects(con, schemas.rejects)
    _type_and_validate(con, table, policy, _raw_rows_sql(table, bronze_uris, schemas.columns))
    _flag_duplicates(con, table, partitions if run_partitions is None else run_partitions, check_earlier_partitions,
                     carry_keys)
    _combine_violations(con)
    _fill_outputs(con, table, pii_key, run_id)
    events = schemas.events + _coercion_events(con, policy)
    per_file = _rows_per_file(con)
    _count_rows_affected(events, per_file)
    _fill_events(con, table, events, run_id)
    return _result(con, table, partitions, events, per_file)


@dataclass
class _FileSchemas:
    """What the bronze files' columns say: schema events, files to quarantine whole, every column seen."""

    events: list[SchemaEvent] = field(default_factory=list)
    rejects: dict[str, str] = field(default_factory=dict)  # source sha256 → reason
    columns: set[str] = field(default_factory=set)


def _check_file_schemas(con: duckdb.DuckDBPyConnection, table: Table, bronze_uris: list[str],
                        policy: Policy) -> _FileSchemas:
    """Compare every bronze file's columns with the contract (malformed-line files have none to check)."""
    schemas = _FileSchemas()
    for uri in bronze_uris:
        if uri.endswith(MALFORMED_SUFFIX):  # malformed lines of a source: no columns to check
            continue
        meta = con.execute(f"SELECT _partition, _source_sha256, _source_uri FROM read_parquet({lit(uri)}, hive_partitioning=false) LIMIT 1").fetchone()
        if meta is None:
            continue
        cols = file_columns(con, uri)
        schemas.columns |= set(cols)
        file_events, reject = schema_events_for_file(table, cols, policy, meta[0], meta[2], meta[1])
        schemas.events += file_events
        if reject:
            schemas.rejects[meta[1]] = reject
    return schemas


def _raw_rows_sql(table: Table, bronze_uris: list[str], union_cols: set[str]) -> str:
    """A query over the bronze files: every contract column as trimmed text (``<column>__raw``, null when empty
    or absent from every file) and the lineage columns; no rows when there are no files."""
    src = (f"read_parquet([{', '.join(lit(u) for u in bronze_uris)}], union_by_name=true, hive_partitioning=false)"
           if bronze_uris else None)
    select_raw = []
    for c in table.columns:
        raw = f"NULLIF(trim({q(c.name)}), '')" if c.name in union_cols else "NULL::VARCHAR"
        select_raw.append(f"{raw} AS {q(c.name + '__raw')}")
    lineage = "_partition, _source_uri, _source_sha256, _row_ordinal, _ingest_run_id, _parse_error, _raw_line"
    if src is None:
        return (f"SELECT {', '.join(select_raw)}, NULL::VARCHAR AS _partition, NULL::VARCHAR AS _source_uri, "
                "NULL::VARCHAR AS _source_sha256, NULL::BIGINT AS _row_ordinal, NULL::VARCHAR AS _ingest_run_id, "
                "NULL::VARCHAR AS _parse_error, NULL::VARCHAR AS _raw_line WHERE false")
    return f"SELECT {', '.join(select_raw)}, {lineage} FROM {src}"


def _register_file_rejects(con: duckdb.DuckDBPyConnection, file_rejects: dict[str, str]) -> None:
    """Temp table ``file_rejects``: the files whose schema quarantines all their rows, with the reason."""
    con.execute("CREATE OR REPLACE TEMP TABLE file_rejects (sha VARCHAR, reason VARCHAR)")
    if file_rejects:
        con.executemany("INSERT INTO file_rejects VALUES (?, ?)", list(file_rejects.items()))


def _type_and_validate(con: duckdb.DuckDBPyConnection, table: Table, policy: Policy, raw_sql: str) -> None:
    """Temp table ``checked``, in one pass: raw text → typed columns, the columns coerced per row, every violated
    rule per row (a malformed line, a rejected file, then the column rules)."""
    typed_cols, coerced_flags = typed_columns(table, policy)
    rules = [(cond, lit(text)) for _, cond, text in rule_checks(table)]
    raw_names = ", ".join(q(c.name + "__raw") for c in table.columns)
    keep_raw = ", ".join(f"CASE WHEN len(_violations) > 0 THEN {q(c.name + '__raw')} END AS {q(c.name + '__raw')}"
                         for c in table.columns)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE checked AS
            WITH raw AS ({raw_sql}),
            typed AS (SELECT raw.*, {', '.join(typed_cols)}, {flagged_list(coerced_flags)} AS _coerced FROM raw),
            judged AS (
              SELECT t.*, CASE
                  WHEN starts_with(t._parse_error, {lit(CONTROL_PREFIX)})  -- NUL, ESC... in the landed line
                    THEN ['control_character: ' || t._parse_error[{len(CONTROL_PREFIX) + 1}:]]
                  WHEN t._parse_error IS NOT NULL THEN ['malformed_row: ' || t._parse_error]
                  WHEN f.reason IS NOT NULL THEN [f.reason]
                  ELSE {flagged_list(rules)} END AS _violations
              FROM typed t LEFT JOIN file_rejects f ON t._source_sha256 = f.sha
            )
            -- the raw text is kept only where a rule fired (the quarantine payload needs it)
            SELECT judged.* EXCLUDE ({raw_names}), {keep_raw} FROM judged"""
    )


def _flag_duplicates(con: duckdb.DuckDBPyConnection, table: Table, run_partitions: list[str],
                     check_earlier_partitions: bool, carry_keys: bool = False) -> None:
    """Temp table ``extra_violations``: duplicates among clean rows (first occurrence wins), and keys already in
    silver partitions outside the run. With ``carry_keys`` the first occurrences of earlier chunks
    (``dedup_seen``) take part in the ranking, and this chunk's new first occurrences are added to them."""
    pk = ", ".join(q(k) for k in table.primary_key)
    content = "hash(" + ", ".join(q(c.name) for c in table.columns) + ")"  # typed values of clean rows
    order = "_partition, _source_sha256, _row_ordinal"
    # a view: the narrow key columns of the clean rows, read from ``checked`` where needed (not a second copy)
    con.execute(f"CREATE OR REPLACE TEMP VIEW clean_keys AS SELECT rowid AS _rid, {pk}, {order}, {content} AS _content "
                "FROM checked WHERE len(_violations) = 0")
    seen = ""
    if carry_keys:
        con.execute(f"CREATE TEMP TABLE IF NOT EXISTS dedup_seen AS SELECT {pk}, _content FROM clean_keys LIMIT 0")
        # earlier chunks hold earlier partitions, so their rows rank first (an empty partition sorts before any),
        # as in one ranking of the whole run; only the keys this chunk has are looked up
        seen = (f" UNION ALL SELECT NULL::BIGINT AS _rid, {pk}, '' AS _partition, NULL AS _source_sha256, "
                f"NULL AS _row_ordinal, _content FROM dedup_seen SEMI JOIN clean_keys USING ({pk})")
    earlier, earlier_case = "", ""
    if check_earlier_partitions:
        parts = ", ".join(lit(p) for p in run_partitions) or "NULL"
        # only this chunk's keys are looked up (a hash of them probes the scan of silver's key columns)
        earlier = (f"LEFT JOIN (SELECT {pk}, min(_partition) AS _earlier FROM lake.silver.{q(table.name)} "
                   f"SEMI JOIN clean_keys USING ({pk}) WHERE _partition NOT IN ({parts}) GROUP BY {pk}) e USING ({pk})")
        earlier_case = "WHEN e._earlier IS NOT NULL THEN ['duplicate_key: key already in silver partition ' || e._earlier]"
    # rank only narrow key columns; join the few extra violations back (no wide copy of the rows)
    ranking = f"""WITH clean AS (SELECT * FROM clean_keys{seen})
                  SELECT _rid, {pk}, _content, row_number() OVER w AS _rn, first_value(_content) OVER w AS _first_content
                  FROM clean
                  WINDOW w AS (PARTITION BY {pk} ORDER BY {order})"""
    if carry_keys:  # the chunk's ranking is read twice: kept (narrow, bounded by the chunk)
        con.execute(f"CREATE OR REPLACE TEMP TABLE ranked_keys AS {ranking}")
        ranked = "ranked_keys"
    else:
        ranked = f"({ranking})"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE extra_violations AS
            SELECT _rid, CASE
                WHEN _rn > 1 AND _content = _first_content THEN ['duplicate_row: exact copy of an earlier row']
                WHEN _rn > 1 THEN ['duplicate_key: same key as an earlier row with different values']
                {earlier_case}
                END AS _violations
            FROM {ranked} ranked {earlier}
            WHERE _rid IS NOT NULL AND (_rn > 1 {"OR e._earlier IS NOT NULL" if earlier else ""})"""
    )
    if carry_keys:
        # this chunk's first occurrences of keys no earlier chunk had (a carried key ranks first itself)
        con.execute(f"INSERT INTO dedup_seen SELECT {pk}, _content FROM ranked_keys WHERE _rid IS NOT NULL AND _rn = 1")
        con.execute("DROP TABLE ranked_keys")
    con.execute("DROP VIEW clean_keys")


def _combine_violations(con: duckdb.DuckDBPyConnection) -> None:
    """Temp view ``all_rows``: every checked row with its violations, the duplicate ones included."""
    con.execute(
        """CREATE OR REPLACE TEMP VIEW all_rows AS
           SELECT c.* EXCLUDE (_violations), coalesce(x._violations, c._violations) AS _violations
           FROM checked c LEFT JOIN extra_violations x ON c.rowid = x._rid"""
    )


def _coercion_events(con: duckdb.DuckDBPyConnection, policy: Policy) -> list[SchemaEvent]:
    """One ``type_coerced`` schema event per file and column a lossless correction was applied to."""
    return [SchemaEvent(part, uri, sha, "type_coerced", name, policy, "coerced (lossless)", int(n))
            for part, uri, sha, name, n in con.execute(
                "SELECT _partition, _source_uri, _source_sha256, col, count(*) FROM "
                "(SELECT _partition, _source_uri, _source_sha256, unnest(_coerced) AS col FROM checked "
                " WHERE len(_coerced) > 0) GROUP BY ALL ORDER BY ALL").fetchall()]


def _rows_per_file(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Bronze rows per source file (sha256)."""
    return dict(con.execute("SELECT _source_sha256, count(*) FROM checked GROUP BY 1").fetchall())


def _count_rows_affected(events: list[SchemaEvent], per_file: dict[str, int]) -> None:
    """A file-level schema event affects every row of its file."""
    for ev in events:
        if ev.event != "type_coerced" and ev.rows_affected == 0:
            ev.rows_affected = int(per_file.get(ev.source_sha256, 0))


def _result(con: duckdb.DuckDBPyConnection, table: Table, partitions: list[str], events: list[SchemaEvent],
            per_file: dict[str, int]) -> SilverResult:
    """The counts of the filled temp tables."""
    result = SilverResult(table.name, partitions)
    result.schema_events = events
    result.bronze_rows = int(sum(per_file.values()))
    result.silver_rows = int(con.execute("SELECT count(*) FROM silver_out").fetchone()[0])  # type: ignore[index]
    result.quarantined_rows = int(con.execute("SELECT count(*) FROM quarantine_out").fetchone()[0])  # type: ignore[index]
    result.quarantine_by_rule = dict(con.execute(
        "SELECT rule, count(*) FROM quarantine_out GROUP BY 1 ORDER BY 2 DESC").fetchall())
    return result


def _age_sql(dob_col: str, event_col: str) -> str:
    return f"date_part('year', age(CAST({q(event_col)} AS DATE), {q(dob_col)}))"


def _fill_outputs(con: duckdb.DuckDBPyConnection, table: Table, key: str, run_id: str) -> None:
    out = [f"{expr} AS {q(name)}" for name, expr in silver_output(table, key)]
    out += ["_partition", "_source_uri", "_source_sha256", "_row_ordinal", "_ingest_run_id",
            f"{lit(run_id)} AS _silver_run_id"]
    con.execute(f"CREATE OR REPLACE TEMP VIEW silver_out AS SELECT {', '.join(out)} FROM all_rows "
                "WHERE len(_violations) = 0")

    payload_parts = []
    for c in table.columns:
        # raw text where a rule fired; the typed value for duplicates (clean rows keep no raw text)
        raw = f"coalesce({q(c.name + '__raw')}, CAST({q(c.name)} AS VARCHAR))"
        if c.pii == "identifier":
            payload_parts.append(f"{lit(c.name + '_HASH')}, {hmac_sql(raw, key)}")
        elif c.pii in ("free_text", "birth_date") or c.role == "drop":
            continue
        else:
            payload_parts.append(f"{lit(c.name)}, {raw}")
    has_pii = bool(raw_pii_columns(table))
    raw_line = (f"json_object('_raw_line_hmac', {hmac_sql('_raw_line', key)}, '_raw_line_chars', length(_raw_line))"
                if has_pii else "json_object('_raw_line', _raw_line)")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE quarantine_out AS
            SELECT {lit(table.name)} AS table_name, _partition AS partition, _source_uri AS source_uri,
                   _source_sha256 AS source_sha256, _row_ordinal AS row_ordinal,
                   split_part(_violations[1], ':', 1) AS rule, array_to_string(_violations, '; ') AS reason,
                   CAST(CASE WHEN _parse_error IS NOT NULL THEN {raw_line}
                        ELSE json_object({', '.join(payload_parts)}) END AS VARCHAR) AS payload,
                   {lit(run_id)} AS silver_run_id, now()::TIMESTAMP AS quarantined_at
            FROM all_rows WHERE len(_violations) > 0"""
    )


def _fill_events(con: duckdb.DuckDBPyConnection, table: Table, events: list[SchemaEvent], run_id: str) -> None:
    frame = pd.DataFrame([{**e.__dict__, "table_name": table.name, "silver_run_id": run_id} for e in events],
                         columns=list(SCHEMA_EVENT_DDL))
    frame["rows_affected"] = frame["rows_affected"].astype("int64")
    con.register("events_frame", frame)
    con.execute("CREATE OR REPLACE TEMP TABLE events_out AS SELECT * FROM events_frame")
    con.unregister("events_frame")


# ----------------------------------------------------------------------------- lake writes

def write_silver(con: duckdb.DuckDBPyConnection, table: Table, partitions: list[str]) -> int:
    """Replace ``partitions`` of silver, quarantine and schema events in one lake snapshot."""
    from ..resources import Lake

    ensure_lake_tables(con, table)
    parts = ", ".join(lit(p) for p in partitions) or "NULL"
    t = q(table.name)

    def work(c: duckdb.DuckDBPyConnection) -> None:
        c.execute(f"DELETE FROM lake.silver.{t} WHERE _partition IN ({parts})")
        c.execute(f"INSERT INTO lake.silver.{t} BY NAME SELECT * FROM silver_out")
        for name, src in (("quarantine", "quarantine_out"), ("schema_events", "events_out")):
            c.execute(f"DELETE FROM lake.silver.{name} WHERE table_name = {lit(table.name)} AND partition IN ({parts})")
            c.execute(f"INSERT INTO lake.silver.{name} BY NAME SELECT * FROM {src}")

    Lake.transact(con, work)
    return Lake.snapshot_id(con)


@dataclass
class Accounting:
    table: str
    partitions: int
    bronze_rows: int
    silver_rows: int
    quarantined_rows: int

    @property
    def balanced(self) -> bool:
        return self.bronze_rows == self.silver_rows + self.quarantined_rows

    @property
    def missing(self) -> int:
        return self.bronze_rows - self.silver_rows - self.quarantined_rows


def account_rows(con: duckdb.DuckDBPyConnection, table: Table, bronze_uris: list[str],
                 partitions: list[str]) -> Accounting:
    """Count bronze, silver and quarantine rows of ``partitions`` independently of the transform."""
    parts = ", ".join(lit(p) for p in partitions) or "NULL"
    bronze = 0
    if bronze_uris:
        bronze = int(con.execute(f"SELECT count(*) FROM read_parquet([{', '.join(lit(u) for u in bronze_uris)}], "
                                 "union_by_name=true, hive_partitioning=false)").fetchone()[0])  # type: ignore[index]
    ensure_lake_tables(con, table)
    silver = int(con.execute(f"SELECT count(*) FROM lake.silver.{q(table.name)} WHERE _partition IN ({parts})")
                 .fetchone()[0])  # type: ignore[index]
    quarantined = int(con.execute(f"SELECT count(*) FROM lake.silver.quarantine WHERE table_name = ? "
                                  f"AND partition IN ({parts})", [table.name]).fetchone()[0])  # type: ignore[index]
    return Accounting(table.name, len(partitions), bronze, silver, quarantined)


def read_as_of(con: duckdb.DuckDBPyConnection, table: str, snapshot_id: int | None = None) -> pd.DataFrame:
    """A silver table as it was at ``snapshot_id`` (latest when None)."""
    from ..resources import Lake

    at = Lake.as_of(snapshot_id)
    return con.execute(f"SELECT * FROM lake.silver.{q(table)}{at}").df()

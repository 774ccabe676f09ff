"""Online features: the dbt models' own compiled SQL, run over one batch of raw applications.

``POST /v1/decide`` gets an application as it arrives (every contract column, PII included) and the
bureau records pulled at decision time. Its features are computed here by the *same SQL* that builds
``gold/applicant_features``, never by a second implementation:

1. ``compile_manifest``: ``dbt compile`` of the gold project, without a window (every application, silver
   unpinned), into a cache keyed by a fingerprint of the project's files; only the manifest's
   ``compiled_code`` is used. A changed model is a new fingerprint, so the online path follows it.
2. ``FeatureGraph.from_manifest``: from the mart (the model whose relation is ``GOLD_TABLE``) the
   models it depends on, in dependency order, and the silver sources they read; each model's compiled
   SQL with its refs and sources pointed at local relations. The mart's contract types its output.
3. ``OnlineEngine``: one in-memory DuckDB (per serving replica). The request's raw rows go through
   silver's own typing and rules (``quality.silver``: the same canonical / auto-correct readings, the
   same rule list, the same keyed HMAC, ``AGE_YEARS`` from the date of birth); views over them stand in
   for ``lake.silver.<table>``, and views over a copy of the lake's other sources (the applicant's history
   with the lender, at one lake snapshot) for the rest; the models run as views over just this batch's
   rows. Every statement is prepared once (planning the graph costs ~20 ms, more than running it).

The typing, rules and output columns come from the functions ``build_silver`` itself uses
(``quality.silver.typed_columns``, ``rule_checks``, ``silver_output``), over one table of raw text
(``silver_sql``). Two checks are the request's own: a key twice in one request (silver keeps
the first and quarantines the rest) and a record of another applicant.

Point in time is the models' own: only history strictly before the application's decision time counts.
A value silver would quarantine is a ``FieldError`` naming the raw field (``application.AMT_CREDIT``,
``bureau[3].CREDIT_ACTIVE``), never a failure; an applicant without history gets the features gold gives
one (counts 0, means null). Clear identifiers exist only in the engine's memory, for one batch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..contracts import TABLES, Table
from ..quality.pii import silver_name
from ..quality.silver import (
    SILVER_LINEAGE,
    flagged_list,
    lit,
    q,
    rule_checks,
    silver_columns,
    silver_output,
    typed_columns,
)
from ..settings import Settings
from .build import BuildWindow
from .catalogue import KEY_COLUMNS
from .dbt_profiles import PROJECT_DIR
from .lookup import GOLD_TABLE

#: the tables a decision request carries (the rest of the mart's sources are the applicant's history in the lake)
REQUEST_TABLES = ("application", "bureau", "bureau_balance")
#: the table whose one row is the application being decided (its primary key identifies the applicant)
APPLICATION = "application"
#: how often a replica looks for a newer lake snapshot of the applicant histories (seconds)
HISTORY_REFRESH_S = 30.0
#: files of a dbt project that do not change what it compiles to
_NOT_PROJECT = ("target", "logs", "dbt_packages", "dbt_internal_packages")
#: optimizers off in the engine: those reading table statistics (a plan prepared once must not depend on the
#: rows of one batch: prepared over empty tables, joins fold away), and ``in_clause``, which turns every
#: ``NOT IN (<allowed values>)`` of silver's rules into a hash join (~1 ms each per batch, at any size)
_DISABLED_OPTIMIZERS = ("statistics_propagation", "compressed_materialization", "empty_result_pullup",
                        "row_group_pruner", "in_clause")
#: up to this many raw rows of a table are inserted with one parametrised statement, more through Arrow
_FEW_ROWS = 8
_SEP = "\x1f"  # between column and message in a violation (neither holds it)


class OnlineError(RuntimeError):
    """The online feature path cannot be built (no compiled SQL, an unexpected graph); the message says why."""


@dataclass(frozen=True)
class FieldError:
    """A raw value silver would not accept: the field as the request names it and why (never the value)."""

    field: str
    error: str


def field_name(table: str, row: int, column: str) -> str:
    """``application.AMT_CREDIT`` for the application, ``bureau[3].CREDIT_ACTIVE`` for a record of a list."""
    return f"{table}.{column}" if table == APPLICATION else f"{table}[{row}].{column}"


# ----------------------------------------------------------------------------- compiling

def project_fingerprint(project_dir: Path = PROJECT_DIR) -> str:
    """A hash of every file that decides what the project compiles to (models, macros, project file)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in project_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(project_dir)
        if rel.parts[0] in _NOT_PROJECT or path.name == "profiles.yml":
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _compile_profile(folder: Path, project_dir: Path) -> Path:
    """A profile for ``dbt compile`` alone: an in-memory DuckDB (compiling reads no data, so it never meets the
    lake's writers nor the gold build's DuckDB file); relation names it prints are replaced anyway."""
    import yaml  # type: ignore[import-untyped]  # types-PyYAML is not in the dev dependencies

    name = yaml.safe_load((project_dir / "dbt_project.yml").read_text())["profile"]
    folder.mkdir(parents=True, exist_ok=True)
    output = {"type": "duckdb", "path": ":memory:", "threads": 1,
              "config_options": {"autoinstall_known_extensions": False, "autoload_known_extensions": False}}
    (folder / "profiles.yml").write_text(yaml.safe_dump({name: {"target": "online", "outputs": {"online": output}}}))
    return folder


def compile_manifest(settings: Settings, project_dir: Path = PROJECT_DIR) -> Path:
    """The manifest (with compiled SQL) of ``project_dir``, compiled once per project fingerprint under
    ``<home>/dbt/online/<fingerprint>/`` (replicas starting together compile it once, under a file lock)."""
    cache = settings.home.resolve() / "dbt" / "online" / project_fingerprint(project_dir)
    manifest = cache / "manifest.json"
    if manifest.exists():
        return manifest
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "a") as lock:  # noqa: PTH123 - flock needs the file object
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if manifest.exists():
            return manifest
        with tempfile.TemporaryDirectory(dir=cache, prefix="compile-") as tmp:
            work = Path(tmp)
            cmd = [str(Path(sys.executable).parent / "dbt"), "compile", "--project-dir", str(project_dir),
                   "--profiles-dir", str(_compile_profile(work, project_dir)), "--target-path", str(work / "target"),
                   "--log-path", str(work / "logs"), "--no-partial-parse"]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=project_dir,
                                  env={**os.environ, **BuildWindow().env(),  # no window: every application
                                       "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
            if proc.returncode != 0:
                tail = [line for line in proc.stdout.splitlines() if "rror" in line][-5:]
                raise OnlineError(f"dbt compile of {project_dir} failed: {' | '.join(tail) or proc.stdout[-500:]}")
            tmp_manifest = cache / f".manifest-{os.getpid()}.json"
            shutil.copyfile(work / "target" / "manifest.json", tmp_manifest)
            os.replace(tmp_manifest, manifest)
    return manifest


# ----------------------------------------------------------------------------- the graph

@dataclass(frozen=True)
class FeatureGraph:
    """What the manifest says about the mart: its models in dependency order, the sources they read, its
    output columns and their contract types."""

    models: tuple[tuple[str, str], ...]  # (local view name, SQL reading local relations), dependencies first
    sources: tuple[str, ...]  # silver tables read, by contract name
    mart: str  # the mart's local view name
    key: str  # the mart's unique key (one row per application)
    columns: tuple[tuple[str, str | None], ...]  # mart output column, contract data type (None: untyped)
    manifest_hash: str = ""

    @property
    def features(self) -> list[str]:
        return [c for c, _ in self.columns if c not in KEY_COLUMNS]

    @property
    def history_tables(self) -> list[str]:
        """The sources a request does not carry: read from the lake per applicant."""
        return [s for s in self.sources if s not in REQUEST_TABLES]

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], mart_relation: str = GOLD_TABLE) -> FeatureGraph:
        nodes, sources = manifest["nodes"], manifest["sources"]
        wanted = ".".join(f'"{p}"' for p in mart_relation.split("."))
        marts = [u for u, n in nodes.items() if n.get("resource_type") == "model" and n.get("relation_name") == wanted]
        if len(marts) != 1:
            raise OnlineError(f"the manifest has {len(marts)} models writing {mart_relation}; expected one")
        order: list[str] = []
        seen: set[str] = set()

        def visit(uid: str, path: tuple[str, ...]) -> None:
            if uid in seen:
                return
            if uid in path:
                raise OnlineError(f"dependency cycle through {uid}")
            for dep in nodes.get(uid, {}).get("depends_on", {}).get("nodes", []):
                visit(dep, (*path, uid))
            seen.add(uid)
            order.append(uid)

        visit(marts[0], ())
        local: dict[str, str] = {}
        tables: list[str] = []
        for uid in order:
            if uid in sources:
                name = sources[uid]["name"]
                if name not in TABLES:
                    raise OnlineError(f"source {uid} is not a contract table (creditrisk_assets/contracts/)")
                local[sources[uid]["relation_name"]] = f"src_{name}"
                tables.append(name)
            elif uid not in nodes or nodes[uid].get("resource_type") != "model":
                raise OnlineError(f"{uid}: the mart depends on something that is neither a model nor a source")
        models = []
        for uid in order:
            if uid not in nodes:
                continue
            node = nodes[uid]
            sql = node.get("compiled_code")
            if not sql:
                raise OnlineError(f"{uid} has no compiled SQL: the manifest must come from `dbt compile`")
            for relation, name in sorted(local.items(), key=lambda kv: -len(kv[0])):  # longest first
                sql = sql.replace(relation, name)
            view = f"m_{node['name']}"
            models.append((view, sql))
            local[node["relation_name"]] = view
        mart = nodes[marts[0]]
        key = mart.get("config", {}).get("unique_key")
        if not isinstance(key, str):
            raise OnlineError(f"{marts[0]} needs one unique_key column (one row per application), got {key!r}")
        typed = mart.get("contract", {}).get("enforced", False)
        columns = tuple((name, (c.get("data_type") or None) if typed else None) for name, c in mart["columns"].items())
        digest = hashlib.sha256(json.dumps([m for m in models], sort_keys=True).encode()).hexdigest()[:16]
        return cls(tuple(models), tuple(tables), models[-1][0], key, columns, digest)

    @classmethod
    def load(cls, manifest_path: Path) -> FeatureGraph:
        return cls.from_manifest(json.loads(manifest_path.read_text()))


# ----------------------------------------------------------------------------- silver, for request rows

@dataclass(frozen=True)
class SilverSql:
    """Silver's typing, rules and output of one contract table, as SQL over a table of raw text rows."""

    typed: str  # SELECT _req, _row, <typed columns>, _violations FROM raw_<table>
    output: list[tuple[str, str]]  # (silver column, expression over the typed columns: HMAC, AGE_YEARS, ...)


def silver_sql(table: Table, policy: str, pii_key: str) -> SilverSql:
    """The statements ``quality.silver.build_silver`` runs over bronze text, for request rows: the same
    ``NULLIF(trim())`` of the raw text, canonical (and, with ``auto_correct``, lossless corrected) readings,
    rules with their texts, age range of a birth date, HMAC of identifiers; each violation prefixed with its
    column (the request names the field)."""
    # the request's text values arrive as one list per row (``v``, in contract column order): cheap to insert
    raw_cols = [f"NULLIF(trim(v[{i}]), '') AS {q(c.name + '__raw')}" for i, c in enumerate(table.columns, 1)]
    typed_cols, _ = typed_columns(table, policy)
    rules = [(cond, lit(column + _SEP + text)) for column, cond, text in rule_checks(table)]
    names = ", ".join(q(c.name) for c in table.columns if c.role != "drop")  # nothing reads drop columns on
    typed = (f"WITH raw AS (SELECT _req, _row, {', '.join(raw_cols)} FROM {q('raw_' + table.name)}), "
             f"typed AS (SELECT raw.*, {', '.join(typed_cols)} FROM raw) "
             f"SELECT _req, _row, {names}, {flagged_list(rules)} AS _violations FROM typed")
    output = silver_output(table, pii_key)
    return SilverSql(typed, output)


# ----------------------------------------------------------------------------- requests and answers

Raw = str | None


@dataclass
class RawDecision:
    """One decision request as raw text per contract column: ``rows[table]`` (the application: one row)."""

    rows: dict[str, list[dict[str, Raw]]]


@dataclass
class Decided:
    """The features of one request (the mart row) and its rows as silver keeps them, pseudonymised, as JSON
    (``{"application": [...], "bureau": [...]}``: identifiers as HMAC, age instead of the birth date)."""

    features: dict[str, Any]
    pseudonymised: str
    snapshot_id: int | None = None


@dataclass
class Rejected:
    errors: list[FieldError]


def _history_frames(lake_con: duckdb.DuckDBPyConnection, tables: Sequence[str], key: str,
                    snapshot_id: int | None) -> dict[str, pa.Table]:
    """The silver tables ``tables`` at ``snapshot_id``, sorted by the applicant key (scans skip row groups)."""
    from ..resources import Lake

    at = Lake.as_of(snapshot_id)
    present = {r[0] for r in lake_con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' "
                                              "AND schema_name = 'silver'").fetchall()}
    out = {}
    for t in tables:
        if t not in present:
            continue
        try:
            out[t] = lake_con.execute(f"SELECT * FROM lake.silver.{q(t)}{at} ORDER BY {q(key)}").to_arrow_table()
        except duckdb.CatalogException:  # created after ``snapshot_id``: no history then
            continue
    return out


class OnlineEngine:
    """The feature graph over one batch of requests at a time, in an in-memory DuckDB of its own.

    A batch is one transaction, rolled back at the end: nothing of it (raw identifiers included) outlives it.
    Not thread-safe: one batch at a time (serving runs it on one worker)."""

    def __init__(self, graph: FeatureGraph, pii_key: str, policy: Callable[[Table], str],
                 history: Mapping[str, pa.Table] | None = None, snapshot_id: int | None = None) -> None:
        self.graph, self.snapshot_id = graph, snapshot_id
        self.key_column = TABLES[APPLICATION].primary_key[0]  # the applicant key: history tables are read by it
        self.request_tables = [t for t in REQUEST_TABLES if t in graph.sources or t == APPLICATION]
        self.contracts = {t: TABLES[t] for t in {*graph.sources, *self.request_tables}}
        for t in graph.history_tables:
            if self.key_column not in {silver_name(c) for c in TABLES[t].columns}:
                raise OnlineError(f"history table {t} has no {self.key_column}: it cannot be read per applicant")
        self.columns = {t: self.contracts[t].column_names for t in self.request_tables}
        self.con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                      "autoload_known_extensions": False})
        self.con.execute("SET threads=1")  # one core per replica; a batch is small
        self.con.execute(f"SET disabled_optimizers='{','.join(_DISABLED_OPTIMIZERS)}'")
        self.silver = {t: silver_sql(self.contracts[t], policy(self.contracts[t]), pii_key) for t in self.request_tables}
        self._create(history or {})

    # -- setup ------------------------------------------------------------------------------------
    def _create(self, history: Mapping[str, pa.Table]) -> None:
        """Tables, then views, then every statement prepared (a later catalog change would re-plan them).

        The sources the models read are views: a request table's is its checked rows in silver's form (HMAC,
        age), a history table's the lake copy's rows of the batch's applicants."""
        c, key = self.con, q(self.key_column)
        for t in self.request_tables:
            c.execute(f"CREATE TEMP TABLE {q('raw_' + t)} (_req BIGINT, _row BIGINT, v VARCHAR[])")
            c.execute(f"CREATE TEMP TABLE {q('checked_' + t)} AS {self.silver[t].typed} LIMIT 0")
        for t in self.graph.history_tables:
            cols = silver_columns(self.contracts[t])
            if t in history:
                present = set(history[t].column_names)
                select = ", ".join(q(k) if k in present else f"NULL::{v} AS {q(k)}" for k, v in cols.items())
                c.register("history_frame", history[t])
                c.execute(f"CREATE TEMP TABLE {q('hist_' + t)} AS SELECT {select} FROM history_frame")
                c.unregister("history_frame")
            else:
                c.execute(f"CREATE TEMP TABLE {q('hist_' + t)} ({', '.join(f'{q(k)} {v}' for k, v in cols.items())})")
        for t in self.request_tables:
            lineage = [f"NULL::{v} AS {q(k)}" for k, v in SILVER_LINEAGE.items()]
            out = [f"{expr} AS {q(name)}" for name, expr in self.silver[t].output]
            c.execute(f"CREATE TEMP VIEW {q('src_' + t)} AS SELECT {', '.join([*out, *lineage])} "
                      f"FROM {q('checked_' + t)} WHERE len(_violations) = 0")
        for t in self.graph.history_tables:
            c.execute(f"CREATE TEMP VIEW {q('src_' + t)} AS SELECT * FROM {q('hist_' + t)} "
                      f"WHERE {key} IN (SELECT {key} FROM {q('src_' + APPLICATION)})")
        for view, sql in self.graph.models:
            c.execute(f"CREATE TEMP VIEW {q(view)} AS {sql}")

        violations, rows = [], []
        for t in self.request_tables:
            checked = q("checked_" + t)
            c.execute(f"PREPARE {q('check_' + t)} AS INSERT INTO {checked} {self.silver[t].typed}")
            violations.append(f"SELECT _req, {lit(t)} AS t, _row, unnest(_violations) AS v FROM {checked} "
                              "WHERE len(_violations) > 0")
            violations += self._request_checks(t)
            struct = ", ".join(f"{q(name)} := {expr}" for name, expr in self.silver[t].output)
            rows.append(f"SELECT _req, {lit(t)} AS t, list(CAST(to_json(struct_pack({struct})) AS VARCHAR) "
                        f"ORDER BY _row) AS rows FROM {checked} WHERE len(_violations) = 0 GROUP BY _req")
            c.execute(f"PREPARE {q('drop_' + t)} AS DELETE FROM {checked} WHERE _req IN (SELECT unnest($1::BIGINT[]))")
        c.execute(f"PREPARE violations AS {' UNION ALL '.join(violations)} ORDER BY 1, 2, 3")
        keys = [f"SELECT _req, {lit(col.name)}, CAST({q(col.name)} AS VARCHAR) FROM {q('checked_' + t)} "
                f"WHERE len(_violations) = 0 AND {q(col.name)} IS NOT NULL"
                for t in self.request_tables for col in self.contracts[t].columns if col.role == "key"]
        c.execute(f"PREPARE keys AS {' UNION ALL '.join(keys)}")
        c.execute(f"PREPARE pseudonymised AS {' UNION ALL '.join(rows)}")
        c.execute(f"PREPARE ids AS SELECT {key}, _req FROM {q('checked_' + APPLICATION)} WHERE len(_violations) = 0")
        select = ", ".join(f"CAST({q(name)} AS {typ}) AS {q(name)}" if typ else q(name)
                           for name, typ in self.graph.columns)
        c.execute(f"PREPARE features AS SELECT {select} FROM {q(self.graph.mart)}")

    def _request_checks(self, t: str) -> list[str]:
        """What a request may not hold although silver accepts each row alone: a key twice in one request
        (silver would keep the first), a record of another applicant. Rows of (_req, table, _row, violation)."""
        table, checked = self.contracts[t], q("checked_" + t)
        pk = ", ".join(q(k) for k in table.primary_key)
        dup = lit(f"{table.primary_key[-1]}{_SEP}duplicate key: another record of this request has the same "
                  + ", ".join(table.primary_key))
        out = [f"SELECT _req, {lit(t)}, _row, {dup} FROM (SELECT _req, _row, row_number() OVER "
               f"(PARTITION BY _req, {pk} ORDER BY _row) AS n FROM {checked} WHERE len(_violations) = 0) WHERE n > 1"]
        if t != APPLICATION:
            for k in TABLES[APPLICATION].primary_key:
                if k in table.column_names:
                    other = lit(f"{k}{_SEP}not the application being decided (application.{k})")
                    out.append(f"SELECT r._req, {lit(t)}, r._row, {other} FROM {checked} r "
                               f"JOIN {q('checked_' + APPLICATION)} a USING (_req) WHERE len(r._violations) = 0 "
                               f"AND len(a._violations) = 0 AND r.{q(k)} IS DISTINCT FROM a.{q(k)}")
        return out

    def close(self) -> None:
        self.con.close()

    # -- one batch ----------------------------------------------------------------------------------
    def compute(self, batch: Sequence[RawDecision]) -> list[Decided | Rejected]:
        """Features (or the fields silver would refuse) of each request of ``batch``."""
        c = self.con
        c.execute("BEGIN TRANSACTION")
        try:
            for t in self.request_tables:
                rows = [[i, j, [row.get(n) for n in self.columns[t]]]
                        for i, request in enumerate(batch) for j, row in enumerate(request.rows.get(t, []))]
                if rows:
                    self._insert_raw(t, rows)
                    c.execute(f"EXECUTE {q('check_' + t)}")
            errors: dict[int, list[FieldError]] = {}
            for req, t, row, violation in c.execute("EXECUTE violations").fetchall():
                column, text = violation.split(_SEP, 1)
                errors.setdefault(req, []).append(FieldError(field_name(t, row, column), text))
            valid = [i for i in range(len(batch)) if i not in errors]
            rounds = self._rounds(valid)
            decided: dict[int, Decided | Rejected] = {}
            if len(rounds) == 1:
                if errors:  # a refused request's other records must not reach the graph either
                    for t in self.request_tables:
                        c.execute(f"EXECUTE {q('drop_' + t)}(?)", [sorted(errors)])
                decided.update(self._run())
        finally:
            c.execute("ROLLBACK")
        if len(rounds) > 1:  # requests sharing a key: each round alone (rare: the same applicant twice at once)
            for members in rounds:
                decided.update(zip(members, self.compute([batch[i] for i in members]), strict=True))
        return [Rejected(errors[i]) if i in errors else decided[i] for i in range(len(batch))]

    def _insert_raw(self, t: str, rows: list[list[Any]]) -> None:
        """One statement for a few rows; an Arrow table beyond (a bureau report has hundreds of monthly rows)."""
        if len(rows) <= _FEW_ROWS:
            self.con.execute(f"INSERT INTO {q('raw_' + t)} VALUES " + ", ".join(["(?, ?, ?)"] * len(rows)),
                             [x for r in rows for x in r])
            return
        frame = pa.table({"_req": pa.array([r[0] for r in rows], pa.int64()),
                          "_row": pa.array([r[1] for r in rows], pa.int64()),
                          "v": pa.array([r[2] for r in rows], pa.list_(pa.string()))})
        self.con.from_arrow(frame).insert_into(f"raw_{t}")

    def _rounds(self, valid: list[int]) -> list[list[int]]:
        """Requests that may share one run of the graph: no key value (applicant, bureau credit, ...) in two
        of them, else one's records would join the other's application. Usually one round."""
        if len(valid) == 1:
            return [valid]
        values: dict[int, set[tuple[str, str]]] = {i: set() for i in valid}
        for req, column, value in self.con.execute("EXECUTE keys").fetchall():
            if req in values:  # a key column names the same thing in every table (SK_ID_BUREAU)
                values[req].add((column, value))
        rounds: list[tuple[list[int], set[tuple[str, str]]]] = []
        for i in valid:
            for members, used in rounds:
                if not values[i] & used:
                    members.append(i)
                    used |= values[i]
                    break
            else:
                rounds.append(([i], set(values[i])))
        return [members for members, _ in rounds]

    def _run(self) -> dict[int, Decided]:
        """The graph over the checked requests (none sharing a key): features and pseudonymised rows."""
        c = self.con
        kept: dict[int, list[str]] = {}
        for req, t, rows in c.execute("EXECUTE pseudonymised").fetchall():
            kept.setdefault(req, []).append(f"{json.dumps(t)}:[{','.join(rows)}]")
        ids = dict(c.execute("EXECUTE ids").fetchall())
        cur = c.execute("EXECUTE features")
        cols = [d[0] for d in cur.description]
        at = cols.index(self.graph.key)
        out = {}
        for row in cur.fetchall():
            req = ids[row[at]]
            out[req] = Decided(dict(zip(cols, row, strict=True)), "{" + ",".join(kept.get(req, [])) + "}",
                               self.snapshot_id)
        return out


# ----------------------------------------------------------------------------- building one

def build_engine(settings: Settings, graph: FeatureGraph, snapshot_id: int | None = None,
                 lake: Any = None) -> OnlineEngine:
    """An engine whose history tables are the lake's at ``snapshot_id`` (the current snapshot when None)."""
    from ..quality.runner import policy_for
    from ..resources import Lake

    lake = lake or Lake(settings)
    with contextlib.closing(lake.connect_lake()) as con:
        snapshot = Lake.snapshot_id(con) if snapshot_id is None else snapshot_id
        history = _history_frames(con, graph.history_tables, TABLES[APPLICATION].primary_key[0], snapshot)
    return OnlineEngine(graph, settings.pii_key, lambda t: policy_for(t, settings), history, snapshot)


def lake_snapshot(settings: Settings) -> int | None:
    """The lake's current snapshot id (a replica compares it with its engine's to refresh the histories)."""
    from ..resources import Lake

    with contextlib.closing(Lake(settings).connect_lake()) as con:
        return Lake.snapshot_id(con)


# ----------------------------------------------------------------------------- request values

def raw_text(value: Any) -> Raw:
    """A JSON scalar as bronze keeps it: text (numbers in their shortest round-tripping form), null as null.
    Anything else is the caller's to refuse (``TypeError``)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError("expected a string, a number or null, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise TypeError("expected a string, a number or null")


def decision_time_now() -> str:
    """The decision time of a request that does not state one: now (UTC, seconds), as silver reads it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def request_columns(tables: Iterable[str] = REQUEST_TABLES) -> dict[str, set[str]]:
    """The raw columns a request may send per table (the contract's, drop and free text included)."""
    return {t: set(TABLES[t].column_names) for t in tables}


__all__ = ["APPLICATION", "HISTORY_REFRESH_S", "REQUEST_TABLES", "Decided", "FeatureGraph", "FieldError",
           "OnlineEngine", "OnlineError", "RawDecision", "Rejected", "build_engine", "compile_manifest",
           "decision_time_now", "field_name", "lake_snapshot", "raw_text", "request_columns", "silver_sql"]

"""``creditrisk simulate --format homecredit --out DIR``: the simulated world in the published Home Credit layout.

The inverse of ``creditrisk import homecredit`` (``creditrisk_assets/ingest/homecredit.py``), generic over the
contracts' ``homecredit:`` mappings: the published file and column names; absolute times become relative to
the DECISION_TIME of each row's application (dates: the day difference; timestamps: the day difference of
their dates; months: the month difference of the month starts). Application rows with a matured outcome go to
the outcome table's file (application_train.csv) with its label (TARGET) right after the key, as Kaggle has it;
the others (all of them when the outcome table is not written) to application_test.csv. Columns with
``homecredit: null`` (DECISION_TIME, the synthetic PII) are not written. History includes the post-decision
rows (positive days, as some real rows have). No anomalies: the export is clean. Beside the files, ``oracle_truth.parquet`` (SK_ID_CURR, TRUE_PD, TARGET; not a Kaggle
file) lets a round-trip test compare with the truth. Plain CSV: header row, ``,``, empty field = null.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ..contracts import TABLES, Column, Table
from ..quality.silver import q
from .config import SimulationConfig
from .engine import truth_table
from .tables import BUILDERS, HourlyTable
from .world import build_world

TRUTH_FILE = "oracle_truth.parquet"
_ROW = "_hc_row"  # the builder's row order, kept in the files


class ExportError(ValueError):
    """Options the export cannot honour; the message is one line naming what to fix."""


@dataclass
class ExportResult:
    out: Path
    files: dict[str, int]  # published file name → rows
    truth_file: Path
    id_base: int  # ``--id-base`` that lands simulated hour h in import hour h (with the same start / per hour)
    start: str
    per_hour: int
    outcome_delay_hours: int
    skipped: list[str] = field(default_factory=list)  # tables with a mapping the simulator does not build

    def import_command(self) -> str:
        return (f"creditrisk import homecredit --source {self.out} --start {self.start} "
                f"--per-hour {self.per_hour} --id-base {self.id_base} --outcome-delay-hours {self.outcome_delay_hours}")


def _hc_tables(kind: str) -> list[Table]:
    return [t for t in TABLES.values() if t.homecredit is not None and t.homecredit.anchor == kind]


def _relative(col: Column, value: str, decision: str) -> str:
    """SQL of the published relative value of an absolute ``value`` against ``decision`` (a timestamp)."""
    assert col.homecredit is not None
    day = f"CAST({decision} AS DATE)"
    if col.homecredit.relative == "days":
        return f"date_diff('day', {day}, CAST({value} AS DATE))"
    if col.homecredit.relative == "months":
        return f"date_diff('month', date_trunc('month', {day}), date_trunc('month', CAST({value} AS DATE)))"
    return value


def _published(table: Table, alias: str, decision: str, generated: set[str]) -> list[tuple[str, str]]:
    """(published column, SQL) of every mapped column of ``table`` the simulator generates, in contract order
    (a ``drop`` column it does not generate is left out, as in its landing files)."""
    return [(c.homecredit.column, _relative(c, f"{alias}.{q(c.name)}", decision))
            for c in table.columns if c.homecredit is not None and c.name in generated]


class _Anchors:
    """FROM clause and decision-time expression of each table's rows, following the contracts' anchors."""

    def __init__(self, con: duckdb.DuckDBPyConnection, decision_table: Table, generated: dict[str, set[str]]) -> None:
        self.con = con
        self.decision_table = decision_table
        self.generated = generated  # table → the columns the simulator generates
        key = decision_table.primary_key[0]
        con.execute(f"CREATE OR REPLACE TEMP TABLE _hc_decision AS SELECT {q(key)} AS _hc_key, "
                    f"{q(decision_table.event_time)} AS _hc_decision FROM {q(decision_table.name)}")

    def of(self, table: Table) -> tuple[str, str]:
        """(FROM ``<table> t`` with joins, SQL of the row's decision time)."""
        hc = table.homecredit
        assert hc is not None
        if hc.anchor in ("decision", "outcome"):
            key = table.primary_key[0]
            return (f"{q(table.name)} t LEFT JOIN _hc_decision d ON t.{q(key)} = d._hc_key", "d._hc_decision")
        if hc.anchor == "key":
            return (f"{q(table.name)} t LEFT JOIN _hc_decision d ON t.{q(str(hc.anchor_key))} = d._hc_key",
                    "d._hc_decision")
        parent = TABLES[str(hc.anchor_via)]
        src, decision = self.of(parent)
        key = q(str(hc.anchor_key))
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {q('_hc_map_' + table.name)} AS SELECT t.{key} AS _hc_key, "
                         f"min({decision}) AS _hc_decision FROM {src} GROUP BY 1")
        return (f"{q(table.name)} t LEFT JOIN {q('_hc_map_' + table.name)} d ON t.{key} = d._hc_key",
                "d._hc_decision")


def export_homecredit(cfg: SimulationConfig, out: Path, progress: bool = False) -> ExportResult:
    """Write ``cfg``'s world into ``out`` in the published layout (see the module doc)."""
    if cfg.anomalies:
        raise ExportError("--format homecredit writes clean data: drop --anomaly")
    (decision_table,) = _hc_tables("decision")
    outcomes = _hc_tables("outcome")
    mapped = [t for t in cfg.selected_tables if TABLES[t].homecredit is not None]
    skipped = [t for t in mapped if t not in BUILDERS]
    if cfg.tables is not None and skipped:
        raise ExportError(f"--tables {','.join(skipped)}: the simulator does not generate it yet")
    selected = [t for t in mapped if t in BUILDERS]
    outcome = next((t for t in outcomes if t.name in selected), None)
    if outcome is not None and decision_table.name not in selected:
        raise ExportError(f"{outcome.name} is written inside {' / '.join(outcome.homecredit.files)}: "  # type: ignore[union-attr]
                          f"add {decision_table.name} to --tables")
    needed = _with_parents([decision_table.name, *selected])
    world = build_world(cfg)
    built: dict[str, HourlyTable] = {name: BUILDERS[name](world) for name in needed}

    out.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    files: dict[str, int] = {}
    try:
        for name, ht in built.items():
            con.register(f"_arrow_{name}", ht.table.append_column(_ROW, pa.array(np.arange(ht.table.num_rows))))
            con.execute(f"CREATE TEMP TABLE {q(name)} AS SELECT * FROM {q('_arrow_' + name)}")
            con.unregister(f"_arrow_{name}")
        anchors = _Anchors(con, TABLES[decision_table.name],
                           {name: set(ht.table.column_names) for name, ht in built.items()})
        jobs = _file_queries(anchors, [TABLES[t] for t in selected], outcome)
        bar = tqdm(jobs, desc="export homecredit", unit="file", file=sys.stderr, disable=not progress)
        for file_name, sql in bar:
            files[file_name] = _copy_csv(con, sql, out / file_name)
        bar.close()
    finally:
        con.close()
    truth = truth_table(world).select(["SK_ID_CURR", "TRUE_PD", "TARGET"])
    pq.write_table(truth, out / TRUTH_FILE, compression="zstd")
    first_id = int(world.app.sk_id_curr[0]) if len(world.app) else 0
    return ExportResult(out, files, out / TRUTH_FILE, id_base=first_id,
                        start=cfg.start_datetime.strftime("%Y-%m-%dT%H:%M"), per_hour=cfg.rows_per_hour,
                        outcome_delay_hours=cfg.outcome_delay_hours, skipped=skipped)


def _with_parents(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        hc = TABLES[name].homecredit
        if hc is not None and hc.anchor == "via":
            out += [p for p in _with_parents([str(hc.anchor_via)]) if p not in out]
        if name not in out:
            out.append(name)
    return out


def _remove_stale(out: Path) -> None:
    """Published files (and the truth) of an earlier export into ``out``: an import would read them."""
    names = {f.lower() for t in TABLES.values() if t.homecredit is not None for f in t.homecredit.files}
    for p in out.iterdir():
        lower = p.name.lower()
        if p.is_file() and (lower in names or lower.removesuffix(".gz") in names or lower == TRUTH_FILE):
            p.unlink()


def _file_queries(anchors: _Anchors, tables: list[Table], outcome: Table | None) -> list[tuple[str, str]]:
    """(published file, SELECT) for every file to write."""
    jobs: list[tuple[str, str]] = []
    decision_table = anchors.decision_table
    for table in tables:
        hc = table.homecredit
        assert hc is not None
        if hc.anchor == "outcome":
            continue  # inside the decision table's file
        src, decision = anchors.of(table)
        _check_anchored(anchors.con, table, src, decision)
        cols = _published(table, "t", decision, anchors.generated[table.name])
        if hc.anchor != "decision":
            jobs.append((hc.files[0], _select(cols, src, "")))
            continue
        # the decision table: rows with a matured outcome → the outcome's file (label after the key), others → rest
        outcome_files = set(outcome.homecredit.files) if outcome is not None else set()  # type: ignore[union-attr]
        rest = [f for f in hc.files if f not in outcome_files] or [hc.files[-1]]
        if outcome is not None:
            key = decision_table.primary_key[0]
            own = {n for n, _ in cols}
            extra = [(n, s) for n, s in _published(outcome, "o", decision, anchors.generated[outcome.name])
                     if n not in own]
            keys = [(n, s) for n, s in cols if n in {table.column(k).homecredit.column  # type: ignore[union-attr]
                                                      for k in table.primary_key}]
            ordered = keys + extra + [c for c in cols if c not in keys]
            joined = f"{src} JOIN {q(outcome.name)} o ON t.{q(key)} = o.{q(outcome.primary_key[0])}"
            jobs.append((outcome.homecredit.files[0], _select(ordered, joined, "")))  # type: ignore[union-attr]
            anti = (f"WHERE NOT EXISTS (SELECT 1 FROM {q(outcome.name)} o "
                    f"WHERE o.{q(outcome.primary_key[0])} = t.{q(key)})")
            jobs.append((rest[0], _select(cols, src, anti)))
        else:
            jobs.append((rest[0], _select(cols, src, "")))
    return jobs


def _select(cols: list[tuple[str, str]], src: str, where: str) -> str:
    return f"SELECT {', '.join(f'{s} AS {q(n)}' for n, s in cols)} FROM {src} {where} ORDER BY t.{_ROW}"


def _check_anchored(con: duckdb.DuckDBPyConnection, table: Table, src: str, decision: str) -> None:
    row = con.execute(f"SELECT count(*) FROM {src} WHERE {decision} IS NULL").fetchone()
    if row and row[0]:
        raise RuntimeError(f"{table.name}: {row[0]} simulated rows have no application to anchor them (a bug)")


def _copy_csv(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> int:
    target = str(path).replace("'", "''")
    row = con.execute(f"COPY ({sql}) TO '{target}' (FORMAT csv, HEADER true, DELIMITER ',')").fetchone()
    return int(row[0]) if row else 0

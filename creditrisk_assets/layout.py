"""Where things live in the object store: one place for every key pattern.

Top-level areas: ``landing/`` (what sources deliver), ``bronze/`` (raw hourly snapshots, audit log, rejected
files), ``lake/`` (DuckLake data files), ``reports/`` (profiles), ``monitoring/`` (drift reports, latest drift),
``serving/`` (prediction log, batch scores), ``oracle/`` (the simulator's truth), ``imports/`` (import reports)."""

from __future__ import annotations

import datetime as dt
import re

HOUR_FMT = "%Y-%m-%d-%H:%M"  # Dagster's hourly partition key format

_LANDING_RE = re.compile(r"^landing/(?P<table>[a-z_]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<hour>\d{2})/(?P<name>[^/]+)$")


def partition_key(hour: dt.datetime) -> str:
    return hour.strftime(HOUR_FMT)


def parse_partition_key(key: str) -> dt.datetime:
    return dt.datetime.strptime(key, HOUR_FMT)


LANDING_PREFIX = "landing/"
BRONZE_PREFIX = "bronze/"
LAKE_DATA_PREFIX = "lake/"  # DuckLake's DATA_PATH inside the object store


def landing_table_prefix(table: str) -> str:
    return f"{LANDING_PREFIX}{table}/"


def landing_prefix(table: str, hour: dt.datetime) -> str:
    return f"{landing_table_prefix(table)}{hour:%Y-%m-%d}/{hour:%H}/"


def landing_file_key(table: str, hour: dt.datetime, landing_format: str) -> str:
    """The one file the simulator or an importer writes for ``table`` and ``hour``."""
    return landing_prefix(table, hour) + f"part-00000.{landing_format}"


def parse_landing_key(key: str) -> tuple[str, dt.datetime] | None:
    """``landing/<table>/<YYYY-MM-DD>/<HH>/<file>`` → (table, hour); None for other keys."""
    m = _LANDING_RE.match(key)
    if not m or m["name"].startswith("."):
        return None
    hour = dt.datetime.strptime(f"{m['date']} {m['hour']}", "%Y-%m-%d %H")
    return m["table"], hour


def bronze_table_prefix(table: str) -> str:
    return f"{BRONZE_PREFIX}{table}/"


def bronze_partition_prefix(table: str, hour: dt.datetime) -> str:
    return f"{bronze_table_prefix(table)}dt={hour:%Y-%m-%d}/hh={hour:%H}/"


BRONZE_AUDIT_PREFIX = f"{BRONZE_PREFIX}_audit/"


def bronze_audit_key(table: str, hour: dt.datetime) -> str:
    return f"{BRONZE_AUDIT_PREFIX}table_name={table}/dt={hour:%Y-%m-%d}/hh={hour:%H}/audit.parquet"


def bronze_rejected_file_key(table: str, hour: dt.datetime, name: str) -> str:
    return f"{BRONZE_PREFIX}_rejected_files/{table}/dt={hour:%Y-%m-%d}/hh={hour:%H}/{name}"


_BRONZE_RE = re.compile(r"^bronze/(?P<table>[a-z_]+)/dt=(?P<date>\d{4}-\d{2}-\d{2})/hh=(?P<hour>\d{2})/[^/]+\.parquet$")


def parse_bronze_key(key: str) -> tuple[str, dt.datetime] | None:
    m = _BRONZE_RE.match(key)
    if not m:
        return None
    return m["table"], dt.datetime.strptime(f"{m['date']} {m['hour']}", "%Y-%m-%d %H")


def report_key(kind: str, name: str) -> str:
    """Data-profile HTML reports live under ``reports/<kind>/`` (drift reports: ``drift_report_key``)."""
    return f"reports/{kind}/{name}"


MONITORING_REPORTS_PREFIX = "monitoring/reports/"
LATEST_DRIFT_KEY = "monitoring/latest_drift.json"  # the last complete drift window, read by the serving metrics


def drift_report_key(start: dt.datetime, end: dt.datetime, champion_version: str | int) -> str:
    """The Evidently HTML report of one drift window of one champion."""
    return f"{MONITORING_REPORTS_PREFIX}drift-{start:%Y%m%dT%H}-{end:%Y%m%dT%H}-champion-v{champion_version}.html"


PREDICTION_LOG_PREFIX = "serving/prediction_log/"
BATCH_SCORES_PREFIX = "serving/batch_scores/"


def prediction_log_prefix(hour: dt.datetime) -> str:
    """Raw prediction-log batches written by the serving replicas for one hour."""
    return f"{PREDICTION_LOG_PREFIX}dt={hour:%Y-%m-%d}/hh={hour:%H}/"


def prediction_log_segment_key(hour: dt.datetime, writer_id: str, segment: int) -> str:
    """One flushed batch of one serving replica's prediction log."""
    return f"{prediction_log_prefix(hour)}{writer_id}-{segment:06d}.parquet"


def batch_scores_key(stem: str, version: str | int) -> str:
    """Batch scores of one input (``stem``) by one model version."""
    return f"{BATCH_SCORES_PREFIX}{stem}-v{version}.parquet"


_HIVE_HOUR_RE = re.compile(r"(?:^|/)dt=(?P<date>\d{4}-\d{2}-\d{2})/hh=(?P<hour>\d{2})/")


def partition_hour_of_key(key: str) -> dt.datetime | None:
    """The hour an object belongs to: ``landing/<table>/<date>/<HH>/...`` or any ``.../dt=<date>/hh=<HH>/...``
    key (bronze, its audit log and rejected files, the raw prediction log); None for other keys."""
    landed = parse_landing_key(key)
    if landed is not None:
        return landed[1]
    m = _HIVE_HOUR_RE.search(key)
    if not m:
        return None
    return dt.datetime.strptime(f"{m['date']} {m['hour']}", "%Y-%m-%d %H")


ORACLE_PREFIX = "oracle/"
ORACLE_TRUTH_NAME = "truth.parquet"
ORACLE_MANIFEST_NAME = "manifest.json"


def oracle_prefix(run_name: str) -> str:
    """What one simulator run knows and the lake must not: ``oracle/<run name>/``."""
    return f"{ORACLE_PREFIX}{run_name}/"


def oracle_truth_key(run_name: str) -> str:
    """The true PD (and label) of every simulated application (parquet)."""
    return oracle_prefix(run_name) + ORACLE_TRUTH_NAME


def oracle_manifest_key(run_name: str) -> str:
    """The run's manifest: files, rows, injected anomalies, Bayes-optimal AUC (JSON)."""
    return oracle_prefix(run_name) + ORACLE_MANIFEST_NAME


#: outputs that Dagster passes between assets (the training set, the models, the evaluation), one object per
#: asset (and partition): the latest materialisation's, which any run process loads
ASSET_OUTPUTS_PREFIX = "dagster/asset_outputs/"


def asset_output_key(asset_path: list[str], partition: str | None = None) -> str:
    return f"{ASSET_OUTPUTS_PREFIX}{'/'.join(asset_path)}" + (f"/{partition}" if partition else "") + ".pickle"


IMPORTS_PREFIX = "imports/"


def import_prefix(source: str, import_id: str) -> str:
    """What one ``creditrisk import`` run wrote besides landing files: ``imports/<source>/<import id>/``."""
    return f"{IMPORTS_PREFIX}{source}/{import_id}/"


def import_report_key(source: str, import_id: str) -> str:
    """The run's report: rows read / written / rejected per table, with reasons (JSON)."""
    return import_prefix(source, import_id) + "report.json"


def import_rejected_key(source: str, import_id: str, table: str) -> str:
    """Rows an import could not land (cannot be placed in time), with the reason per row (CSV)."""
    return import_prefix(source, import_id) + f"rejected/{table}.csv"

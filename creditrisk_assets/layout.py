"""Where things live in the object store: one place for every key pattern."""

from __future__ import annotations

import datetime as dt
import re

HOUR_FMT = "%Y-%m-%d-%H:%M"  # Dagster's hourly partition key format

_LANDING_RE = re.compile(r"^landing/(?P<table>[a-z_]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<hour>\d{2})/(?P<name>[^/]+)$")


def partition_key(hour: dt.datetime) -> str:
    return hour.strftime(HOUR_FMT)


def parse_partition_key(key: str) -> dt.datetime:
    return dt.datetime.strptime(key, HOUR_FMT)


def landing_prefix(table: str, hour: dt.datetime) -> str:
    return f"landing/{table}/{hour:%Y-%m-%d}/{hour:%H}/"


def parse_landing_key(key: str) -> tuple[str, dt.datetime] | None:
    """``landing/<table>/<YYYY-MM-DD>/<HH>/<file>`` → (table, hour); None for other keys."""
    m = _LANDING_RE.match(key)
    if not m or m["name"].startswith("."):
        return None
    hour = dt.datetime.strptime(f"{m['date']} {m['hour']}", "%Y-%m-%d %H")
    return m["table"], hour


def bronze_partition_prefix(table: str, hour: dt.datetime) -> str:
    return f"bronze/{table}/dt={hour:%Y-%m-%d}/hh={hour:%H}/"


def bronze_audit_key(table: str, hour: dt.datetime) -> str:
    return f"bronze/_audit/table_name={table}/dt={hour:%Y-%m-%d}/hh={hour:%H}/audit.parquet"


def bronze_rejected_file_key(table: str, hour: dt.datetime, name: str) -> str:
    return f"bronze/_rejected_files/{table}/dt={hour:%Y-%m-%d}/hh={hour:%H}/{name}"


_BRONZE_RE = re.compile(r"^bronze/(?P<table>[a-z_]+)/dt=(?P<date>\d{4}-\d{2}-\d{2})/hh=(?P<hour>\d{2})/[^/]+\.parquet$")


def parse_bronze_key(key: str) -> tuple[str, dt.datetime] | None:
    m = _BRONZE_RE.match(key)
    if not m:
        return None
    return m["table"], dt.datetime.strptime(f"{m['date']} {m['hour']}", "%Y-%m-%d %H")


def report_key(kind: str, name: str) -> str:
    """HTML reports (profiles, drift) live under ``reports/<kind>/``."""
    return f"reports/{kind}/{name}"


def prediction_log_prefix(hour: dt.datetime) -> str:
    """Raw prediction-log batches written by the serving replicas for one hour."""
    return f"serving/prediction_log/dt={hour:%Y-%m-%d}/hh={hour:%H}/"


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


def import_prefix(source: str, import_id: str) -> str:
    """What one ``creditrisk import`` run wrote besides landing files: ``imports/<source>/<import id>/``."""
    return f"imports/{source}/{import_id}/"


def import_report_key(source: str, import_id: str) -> str:
    """The run's report: rows read / written / rejected per table, with reasons (JSON)."""
    return import_prefix(source, import_id) + "report.json"


def import_rejected_key(source: str, import_id: str, table: str) -> str:
    """Rows an import could not land (cannot be placed in time), with the reason per row (CSV)."""
    return import_prefix(source, import_id) + f"rejected/{table}.csv"

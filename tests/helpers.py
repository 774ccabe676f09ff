"""Helpers shared by tests: independent reference counts of landed files, Dagster runs."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from typing import Any

import dagster as dg
import pyarrow.parquet as pq

from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.gold.build import run_dbt
from creditrisk_assets.quality.runner import ingest_to_silver
from creditrisk_assets.resources import Lake, ObjectStore
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import SimulationConfig, simulate


def build_silver_hours(settings: Settings, store: ObjectStore, hours: list[dt.datetime], rows_per_hour: int,
                       seed: int) -> None:
    """Simulate ``hours`` (from 2026-10-01 00:00) and take them through silver, every row accounted for."""
    simulate(SimulationConfig(start="2026-10-01T00:00", hours=len(hours), rows_per_hour=rows_per_hour, seed=seed),
             store)
    runs = ingest_to_silver(store, Lake(settings), settings, hours, "t")
    assert all(r.accounting.balanced for r in runs.values())


def gold_features(settings: Settings) -> Any:
    """``lake.gold.applicant_features``, ordered by applicant (a pandas frame)."""
    con = Lake(settings).connect_lake()
    try:
        return con.execute("SELECT * FROM lake.gold.applicant_features ORDER BY sk_id_curr").df()
    finally:
        con.close()


def build_gold(settings: Settings, store: ObjectStore, hours: int = 40, rows_per_hour: int = 150,
               seed: int = 13) -> None:
    """Simulate ``hours`` of landing data, take it through silver and build gold with dbt."""
    start = dt.datetime(2026, 10, 1)
    simulate(SimulationConfig(start="2026-10-01T00:00", hours=hours, rows_per_hour=rows_per_hour, seed=seed,
                              outcome_delay_hours=6), store)
    ingest_to_silver(store, Lake(settings), settings, [start + dt.timedelta(hours=h) for h in range(hours)], "t")
    run_dbt(settings, ["run"])


def gold_and_champion(settings: Settings, store: ObjectStore, hours: int, gold_rows: int | None = None,
                      max_depth: int = 3) -> tuple[Any, Any, str]:
    """Gold over ``hours`` simulated hours and a small XGBoost registered and promoted champion in the settings'
    MLflow: (gold's first ``gold_rows`` applications by key, or all of them; the training set; the version)."""
    from creditrisk_assets.modeling import registry
    from creditrisk_assets.modeling.dataset import build_training_set
    from creditrisk_assets.modeling.train import train_xgboost

    build_gold(settings, store, hours=hours)
    with Lake(settings).connect_lake() as con:
        ts = build_training_set(con)
        limit = f" LIMIT {int(gold_rows)}" if gold_rows else ""
        gold = con.execute(f"SELECT * FROM lake.gold.applicant_features ORDER BY sk_id_curr{limit}").df()
    client = registry.connect(settings.resolved_mlflow_uri, settings.mlflow_artifact_location)
    model = train_xgboost(ts.part("train"), ts.part("valid"), ts.features, ts.categorical,
                          candidates=[{"max_depth": max_depth, "eta": 0.1}])
    logged = registry.log_model_run(client, model, example=ts.part("test"), metrics={"auc": 0.7}, params={},
                                    tags={"lineage.lake_snapshot_id": "1"}, artifacts={}, register=True)
    assert logged.version is not None
    registry.set_champion(client, logged.version, "test", "2026-10-02T00:00:00")
    return gold, ts, str(logged.version)


def reference_record_count(name: str, data: bytes) -> int | None:
    """Records in a landed file counted with Python's own parsers; None when unreadable."""
    try:
        if name.endswith(".gz"):
            data = gzip.decompress(data)
            name = name[:-3]
        if not data:
            return 0
        if name.endswith(".parquet"):
            return pq.read_metadata(io.BytesIO(data)).num_rows
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        if name.endswith(".csv"):
            return max(sum(1 for _ in csv.reader(io.StringIO(text))) - 1, 0)
        return sum(1 for line in text.split("\n") if line.strip())
    except Exception:  # noqa: BLE001 - unreadable by the reference parser too
        return None


def read_landed(key: str, data: bytes) -> list[dict[str, Any]]:
    """A landed file's rows as text, with Python's own parsers (independent of the importers' DuckDB)."""
    if key.endswith(".gz"):
        data = gzip.decompress(data)
    if ".parquet" in key:
        return pq.read_table(io.BytesIO(data)).to_pylist()
    text = data.decode("utf-8")
    if ".csv" in key:
        return [{k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(io.StringIO(text))]
    return [json.loads(line) for line in text.splitlines() if line]


def landed_records(store: ObjectStore, table: str) -> dict[str, int | None]:
    return {o.key: reference_record_count(o.key, store.get_bytes(o.key)) for o in store.list(f"landing/{table}/")}


def run_bronze(settings: Settings, first: str, last: str,
               instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).resolve_job_def("ingest")
    return job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )

"""No raw personal data past bronze: silver, quarantine, schema events, gold, reports, logs, metadata."""

from __future__ import annotations

import csv
import io
import logging

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from creditrisk_assets.dagster_resources import resources_for
from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.resources import Lake, ObjectStore
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import ANOMALY_KINDS, SimulationConfig, simulate

pytestmark = pytest.mark.integration
PII_COLUMNS = ("FULL_NAME", "EMAIL", "PHONE", "NATIONAL_ID", "ADDRESS")


def planted_pii(store: ObjectStore) -> set[str]:
    """Every raw PII value the simulator wrote into landing/application (any encoding)."""
    values: set[str] = set()
    for o in store.list("landing/application/"):
        data = store.get_bytes(o.key)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        for row in csv.DictReader(io.StringIO(text)):
            values |= {row[c].strip() for c in PII_COLUMNS if row.get(c) and len(row[c].strip()) >= 6}
    return values


def test_pii_never_passes_bronze(settings: Settings, folder_store: ObjectStore,
                                 caplog: pytest.LogCaptureFixture) -> None:
    anomalies = {k: 0.1 for k in ANOMALY_KINDS}
    simulate(SimulationConfig(start="2026-10-01T00:00", hours=3, rows_per_hour=25, seed=8, anomalies=anomalies),
             folder_store)
    pii = planted_pii(folder_store)
    assert len(pii) > 100  # the scan has something to find

    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    with caplog.at_level(logging.DEBUG):
        result = defs.resolve_job_def("ingest").execute_in_process(
            instance=instance, tags={"dagster/asset_partition_range_start": "2026-10-01-00:00",
                                     "dagster/asset_partition_range_end": "2026-10-01-02:00"})
        assert result.success
        assert dg.materialize([defs.get_assets_def(dg.AssetKey(["silver", "profile"]))], instance=instance,
                              resources=resources_for(settings)).success

    # bronze does hold the clear values (it is the raw layer): the scan would find them there
    con = Lake(settings).connect_lake()
    bronze_text = " ".join(str(v) for v in con.execute(
        f"SELECT * FROM read_parquet('{folder_store.uri('bronze/application')}/**/*.parquet', union_by_name=true)"
    ).fetchall())
    assert any(v in bronze_text for v in list(pii)[:50]), "control: raw PII is in bronze"

    texts: dict[str, str] = {}
    tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'lake'").fetchall()
    assert {("silver", "application"), ("silver", "quarantine"), ("gold", "applicant_features")} <= set(tables)
    for schema, table in tables:
        rows = con.execute(f'SELECT * FROM lake.{schema}."{table}"').fetchall()
        texts[f"lake.{schema}.{table}"] = "\n".join("\t".join("" if v is None else str(v) for v in r) for r in rows)
        cols = [d[0] for d in con.execute(f'SELECT * FROM lake.{schema}."{table}" LIMIT 0').description]
        assert not set(cols) & {*PII_COLUMNS, "DATE_OF_BIRTH", "_raw_line"}, (schema, table, cols)
    for o in folder_store.list("reports/"):
        texts[o.key] = folder_store.get_bytes(o.key).decode("utf-8", "replace")
    texts["dagster event log"] = "\n".join(serialize_value(e) for e in instance.all_logs(result.run_id))
    texts["python logs"] = "\n".join(r.getMessage() + " " + str(r.__dict__) for r in caplog.records)
    quarantined = con.execute("SELECT count(*) FROM lake.silver.quarantine WHERE table_name = 'application'").fetchone()[0]
    assert quarantined > 0  # quarantine payloads were scanned too

    leaks = {where: sorted(v for v in pii if v in text)[:3] for where, text in texts.items()}
    assert not any(leaks.values()), f"raw PII found: { {k: v for k, v in leaks.items() if v} }"

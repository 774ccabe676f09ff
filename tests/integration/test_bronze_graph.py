"""The real bronze asset graph on simulated data, on a folder store and on real S3 (SeaweedFS)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from creditrisk_assets.contracts import TABLE_NAMES
from creditrisk_assets.dagster_resources import resources_for
from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.ingest.bronze import read_audit_log
from creditrisk_assets.resources import Lake, ObjectStore
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import ANOMALY_KINDS, SimulationConfig, simulate
from tests.helpers import landed_records, run_bronze

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 10, 1)
FIRST, LAST = "2026-10-01-00:00", "2026-10-01-05:00"


def bronze_count(store: ObjectStore, lake: Lake, table: str) -> int:
    keys = [o.key for o in store.list(f"bronze/{table}/")]
    if not keys:
        return 0
    con = lake.connect()
    files = ", ".join(f"'{store.uri(k)}'" for k in keys)
    return int(con.execute(f"SELECT count(*) FROM read_parquet([{files}], union_by_name=true)").fetchone()[0])


def test_bronze_backfill_accounts_for_every_landed_record(backend: tuple[Settings, ObjectStore]) -> None:
    settings, store = backend
    anomalies = {k: 0.15 for k in ANOMALY_KINDS}
    sim = simulate(SimulationConfig(start="2026-10-01T00:00", hours=6, rows_per_hour=30, seed=11,
                                    anomalies=anomalies, run_name="it"), store)
    result = run_bronze(settings, FIRST, LAST)
    assert result.success
    mats = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert {("bronze", t) for t in TABLE_NAMES} | {("silver", t) for t in TABLE_NAMES} <= {tuple(e.asset_key.path) for e in mats}

    lake = Lake(settings)
    audit = read_audit_log(store, lake)
    landed = {t: landed_records(store, t) for t in TABLE_NAMES}
    assert sorted(audit["source_key"]) == sorted(k for t in landed.values() for k in t)  # every file audited
    assert audit["sha256"].str.len().eq(64).all()
    by_key = audit.set_index("source_key")
    for table, files in landed.items():
        expected = 0
        for key, n in files.items():
            row = by_key.loc[key]
            if row["status"] == "rejected":
                assert row["reason"], key
                assert n is None or key.endswith((".csv", ".jsonl")), (key, row["reason"])
                continue
            assert n is not None, f"{key}: bronze accepted a file the reference parser cannot read"
            assert row["rows"] + row["malformed_rows"] == n, (key, row.to_dict(), n)
            expected += n
        assert bronze_count(store, lake, table) == expected, table  # nothing lost, nothing invented

    injected = {a["kind"] for a in json.loads(store.get_bytes(sim.manifest_key))["anomalies"]}
    assert {"corrupt_file", "malformed_row", "empty_file", "wrong_encoding"} <= injected
    statuses = set(audit["status"])
    assert {"accepted", "accepted_with_warnings", "rejected", "empty"} <= statuses

    # idempotent: the same range again gives the same bronze, no duplicates
    before = {t: bronze_count(store, lake, t) for t in TABLE_NAMES}
    assert run_bronze(settings, FIRST, LAST).success
    assert {t: bronze_count(store, lake, t) for t in TABLE_NAMES} == before
    assert len(read_audit_log(store, lake)) == len(audit)


def test_landing_sensor_requests_new_and_changed_hours(folder_store: ObjectStore, settings: Settings) -> None:
    simulate(SimulationConfig(start="2026-10-01T00:00", hours=3, rows_per_hour=5, seed=3,
                              tables=["application"]), folder_store)
    defs = build_definitions(settings)
    sensor = defs.get_sensor_def("landing_sensor")
    resources = resources_for(settings)
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), resources=resources,
                                 definitions=defs) as ctx:
        first = sensor(ctx)
    assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in first.run_requests] == [("2026-10-01-00:00", "2026-10-01-02:00")]
    with dg.build_sensor_context(cursor=first.cursor, resources=resources, definitions=defs) as ctx:
        second = sensor(ctx)
    assert not second.run_requests
    folder_store.put_bytes("landing/application/2026-10-01/05/part-00000.csv", b"SK_ID_CURR\n1\n")
    with dg.build_sensor_context(cursor=second.cursor, resources=resources, definitions=defs) as ctx:
        third = sensor(ctx)
    assert [r.partition_key for r in third.run_requests] == ["2026-10-01-05:00"]


def test_a_fresh_landing_sensor_skips_hours_bronze_already_holds(folder_store: ObjectStore, settings: Settings) -> None:
    """The hand-over after `make demo`: the daemon's sensor starts with no cursor, but what the ingest runs
    put in bronze (the audit log) counts as seen, so only new or changed hours are requested."""
    simulate(SimulationConfig(start="2026-10-01T00:00", hours=3, rows_per_hour=5, seed=3,
                              tables=["application"]), folder_store)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    assert defs.resolve_job_def("ingest").execute_in_process(
        instance=instance, tags={"dagster/asset_partition_range_start": "2026-10-01-00:00",
                                 "dagster/asset_partition_range_end": "2026-10-01-01:00"}).success
    sensor = defs.get_sensor_def("landing_sensor")
    resources = resources_for(settings)
    with dg.build_sensor_context(instance=instance, resources=resources, definitions=defs) as ctx:
        first = sensor(ctx)
    assert [r.partition_key for r in first.run_requests] == ["2026-10-01-02:00"]  # hours 0-1 are in bronze
    # a replaced drop of an ingested hour is seen as changed (hour 2 is still new: nothing ingested it)
    key = next(o.key for o in folder_store.list("landing/application/2026-10-01/00/"))
    folder_store.put_bytes(key, folder_store.get_bytes(key) + b"\n")
    with dg.build_sensor_context(instance=instance, resources=resources, definitions=defs) as ctx:
        again = sensor(ctx)
    assert sorted(r.partition_key for r in again.run_requests) == ["2026-10-01-00:00", "2026-10-01-02:00"]


def test_48_hour_backfill_is_one_run_from_the_cli(tmp_path: Path, settings: Settings,
                                                 folder_store: ObjectStore) -> None:
    simulate(SimulationConfig(start="2026-10-01T00:00", hours=48, rows_per_hour=5, seed=5), folder_store)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "CREDITRISK_HOME": str(settings.home)}
    cmd = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "creditrisk_assets.definitions",
           "--select", "group:bronze", "--partition-range", "2026-10-01-00:00...2026-10-02-23:00"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
        done = instance.get_materialized_partitions(dg.AssetKey(["bronze", "application"]))
    assert len(done) == 48
    audit = read_audit_log(folder_store, Lake(settings))
    assert audit["partition"].nunique() == 48 and (audit["status"] == "accepted").all()


def test_accounting_check_fails_the_run_when_rows_are_lost(settings: Settings, folder_store: ObjectStore,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Break silver on purpose (lose one row after writing): the blocking check fails, gold does not run."""
    import creditrisk_assets.quality.runner as runner

    real_write = runner.write_silver

    def lossy_write(con, table, partitions):  # type: ignore[no-untyped-def]
        snapshot = real_write(con, table, partitions)
        if table.name == "application":
            con.execute("DELETE FROM lake.silver.application WHERE SK_ID_CURR = "
                        "(SELECT min(SK_ID_CURR) FROM lake.silver.application)")
        return snapshot

    monkeypatch.setattr(runner, "write_silver", lossy_write)
    simulate(SimulationConfig(start="2026-10-01T00:00", hours=2, rows_per_hour=10, seed=9), folder_store)
    job = build_definitions(settings).resolve_job_def("ingest")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                                    tags={"dagster/asset_partition_range_start": "2026-10-01-00:00",
                                          "dagster/asset_partition_range_end": "2026-10-01-01:00"})
    checks = {e.event_specific_data.asset_key.to_user_string(): e.event_specific_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == "row_accounting"}
    assert not checks["silver/application"].passed
    assert "1 row(s) of application are neither in silver nor in quarantine" in checks["silver/application"].description
    assert checks["silver/bureau"].passed
    assert not result.success  # blocking: the run stops before gold
    mats = {e.asset_key.to_user_string() for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert "gold/applicant_features" not in mats

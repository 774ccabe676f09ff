"""Faults against real servers: the S3 server dies mid-ingest; two backfills of the same hours overlap.

After each fault the data must be whole: every landed row written exactly once (bronze = silver +
quarantine per table and hour), no duplicate bronze object for a source file, no duplicate key in
silver or gold, and every DuckLake snapshot readable (each of its data files exists).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import duckdb
import pytest
from botocore.config import Config

from creditrisk_assets.contracts import TABLES
from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.ingest.bronze import MALFORMED_SUFFIX, read_audit_log
from creditrisk_assets.layout import parse_bronze_key, partition_key
from creditrisk_assets.quality import runner
from creditrisk_assets.quality.pii import silver_name
from creditrisk_assets.resources import Lake, ObjectStore, S3Store, object_store_from_settings
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import SimulationConfig, simulate
from tests.conftest import s3_settings
from tests.helpers import landed_records
from tests.servers import Server, restart_seaweedfs, start_seaweedfs

pytestmark = pytest.mark.integration

HOURS = 3
START = dt.datetime(2026, 10, 1)
FIRST, LAST = "2026-10-01-00:00", f"2026-10-01-{HOURS - 1:02d}:00"
PARTITIONS = [partition_key(START + dt.timedelta(hours=h)) for h in range(HOURS)]
ANOMALIES = {"malformed_row": 0.05, "duplicate_rows": 0.05, "wrong_type": 0.05, "corrupt_file": 0.05}
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
DEADLINE_S = 60.0


def silver_selection() -> list[dg.AssetKey]:
    """Landing → bronze → silver (+ quarantine and the row-accounting checks), no gold."""
    return ([dg.AssetKey(["bronze", t]) for t in TABLES] + [dg.AssetKey(["silver", t]) for t in TABLES]
            + [dg.AssetKey(["silver", "quarantine"])])


def run_ingest(settings: Settings, selection: list[dg.AssetKey] | None = None) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).resolve_job_def("ingest")
    return job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), run_config=QUIET, raise_on_error=False, asset_selection=selection,
        tags={"dagster/asset_partition_range_start": FIRST, "dagster/asset_partition_range_end": LAST})


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure of the run with its chain of causes."""
    out = []
    for e in result.all_events:
        if e.event_type_value == "STEP_FAILURE" and e.step_failure_data.error is not None:
            out.append(e.step_failure_data.error.to_string())
    return "\n".join(out)


def wait_for(what: str, ok: Callable[[], bool], timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


# ------------------------------------------------------------------------------------ the checks

def assert_whole(settings: Settings, store: ObjectStore, gold: bool = False) -> dict[str, int]:
    """Every landed row exactly once through bronze → silver/quarantine; every lake snapshot whole.

    Returns the silver row count of every table.
    """
    lake = Lake(settings)
    audit = read_audit_log(store, lake)
    by_key = audit.set_index("source_key")
    assert by_key.index.is_unique, "a landed file is audited twice"
    con = lake.connect_lake()
    try:
        counts: dict[str, int] = {}
        for name, table in TABLES.items():
            landed = landed_records(store, name)
            assert set(landed) == set(audit.loc[audit["table_name"] == name, "source_key"]), name
            bronze_keys = [o.key for o in store.list(f"bronze/{name}/") if parse_bronze_key(o.key)]
            # exactly one bronze object (plus its malformed lines, if any) per accepted source file
            main = [k for k in bronze_keys if not k.endswith(MALFORMED_SUFFIX)]
            expected = sorted(k for k in by_key.loc[by_key["table_name"] == name, "bronze_key"] if k)
            assert sorted(main) == expected, (name, sorted(main), expected)
            files = ", ".join(f"'{store.uri(k)}'" for k in bronze_keys)
            bronze = dict(con.execute(
                f"SELECT _partition, count(*) FROM read_parquet([{files}], union_by_name=true, hive_partitioning=false) "
                "GROUP BY 1").fetchall()) if bronze_keys else {}
            dup_sources = con.execute(
                f"SELECT _source_sha256, count(DISTINCT filename) FROM read_parquet([{files}], union_by_name=true, "
                f"hive_partitioning=false, filename=true) WHERE NOT ends_with(filename, '{MALFORMED_SUFFIX}') "
                "GROUP BY 1 HAVING count(DISTINCT filename) > 1").fetchall() if bronze_keys else []
            assert not dup_sources, (name, dup_sources)
            # nothing lost between landing and bronze (the reference parser counts the landed rows)
            for part in PARTITIONS:
                rows = audit[(audit["table_name"] == name) & (audit["partition"] == part)
                             & (audit["status"] != "rejected")]
                want = sum(landed[k] or 0 for k in rows["source_key"])
                assert int((rows["rows"] + rows["malformed_rows"]).sum()) == want, (name, part)
                assert bronze.get(part, 0) == want, (name, part, bronze.get(part, 0), want)
            silver = dict(con.execute(f'SELECT _partition, count(*) FROM lake.silver."{name}" GROUP BY 1').fetchall())
            quarantined = dict(con.execute("SELECT partition, count(*) FROM lake.silver.quarantine "
                                           "WHERE table_name = ? GROUP BY 1", [name]).fetchall())
            for part in PARTITIONS:  # every bronze row in exactly one of silver and quarantine
                assert bronze.get(part, 0) == silver.get(part, 0) + quarantined.get(part, 0), \
                    (name, part, bronze.get(part, 0), silver.get(part, 0), quarantined.get(part, 0))
            assert set(silver) | set(quarantined) <= set(PARTITIONS), name
            key = ", ".join(f'"{silver_name(c)}"' for c in table.columns if c.name in table.primary_key)
            dups = con.execute(f'SELECT {key}, count(*) FROM lake.silver."{name}" GROUP BY ALL '
                               "HAVING count(*) > 1 LIMIT 5").fetchall()
            assert not dups, (name, dups)
            counts[name] = sum(silver.values())
        assert counts["application"] > 0
        if gold:
            n, distinct = con.execute("SELECT count(*), count(DISTINCT sk_id_curr) "
                                      "FROM lake.gold.applicant_features").fetchone()  # type: ignore[misc]
            assert n == distinct > 0, (n, distinct)
            counts["gold.applicant_features"] = n
        assert_snapshots_whole(con, store, lake)
    finally:
        con.close()
    return counts


def assert_no_half_written_silver(settings: Settings, store: ObjectStore) -> None:
    """What a failed run left: each table and hour of silver is all there (= bronze) or not there at all."""
    lake = Lake(settings)
    con = lake.connect_lake()
    try:
        present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() "
                                             "WHERE database_name = 'lake' AND schema_name = 'silver'").fetchall()}
        for name in TABLES:
            keys = [o.key for o in store.list(f"bronze/{name}/") if parse_bronze_key(o.key)]
            if name not in present or not keys:
                continue
            files = ", ".join(f"'{store.uri(k)}'" for k in keys)
            bronze = dict(con.execute(f"SELECT _partition, count(*) FROM read_parquet([{files}], union_by_name=true, "
                                      "hive_partitioning=false) GROUP BY 1").fetchall())
            silver = dict(con.execute(f'SELECT _partition, count(*) FROM lake.silver."{name}" GROUP BY 1').fetchall())
            quarantined = dict(con.execute("SELECT partition, count(*) FROM lake.silver.quarantine "
                                           "WHERE table_name = ? GROUP BY 1", [name]).fetchall()) \
                if "quarantine" in present else {}
            for part in PARTITIONS:
                landed = silver.get(part, 0) + quarantined.get(part, 0)
                assert landed in (0, bronze.get(part, 0)), \
                    f"{name} {part}: half written: {silver.get(part, 0)} silver + {quarantined.get(part, 0)} " \
                    f"quarantined of {bronze.get(part, 0)} bronze rows"
        assert_snapshots_whole(con, store, lake, expect_files=False)  # a bronze failure: silver never began
    finally:
        con.close()


def assert_snapshots_whole(con: duckdb.DuckDBPyConnection, store: ObjectStore, lake: Lake,
                           expect_files: bool = True) -> None:
    """No half-written snapshot: every data and delete file of every snapshot of every table exists."""
    existing = {store.uri(o.key) for o in store.list("lake/")}
    snapshots = [r[0] for r in con.execute("SELECT snapshot_id FROM ducklake_snapshots('lake') ORDER BY 1").fetchall()]
    assert snapshots
    names = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'lake'").fetchall()
    missing = []
    checked = 0
    for schema, table in names:
        for snap in snapshots:
            try:
                rows = con.execute(f"SELECT data_file, delete_file FROM ducklake_list_files('lake', '{table}', "
                                   f"schema => '{schema}', snapshot_version => {snap})").fetchall()
            except duckdb.Error:  # the table did not exist yet at this snapshot
                continue
            for data_file, delete_file in rows:
                checked += 1
                missing += [f for f in (data_file, delete_file) if f and f not in existing]
    assert checked or not expect_files, "no lake data file listed"
    assert not missing, f"{len(missing)} lake file(s) referenced by a snapshot are missing: {missing[:5]}"


def simulate_hours(store: ObjectStore) -> None:
    simulate(SimulationConfig(start="2026-10-01T00:00", hours=HOURS, rows_per_hour=150, seed=21, anomalies=ANOMALIES,
                              run_name="faults"), store)


# ------------------------------------------------------------------------ 1. S3 killed mid-ingest

@pytest.fixture()
def own_seaweed(tmp_path: Path) -> Iterator[dict[str, Server]]:
    """A SeaweedFS of this test alone (it gets killed); whichever server is in the dict at the end is stopped."""
    servers = {"s3": start_seaweedfs(tmp_path / "s3")}
    try:
        yield servers
    finally:
        servers["s3"].stop(grace_s=2)


class KillingConnection:
    """A DuckDB connection that calls ``before`` once, right before it runs a statement starting with ``prefix``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, prefix: str, before: Callable[[], None]) -> None:
        self._con, self._prefix, self._before = con, prefix, before

    def execute(self, sql: str, *args: Any) -> Any:
        if self._before and sql.lstrip().startswith(self._prefix):
            before, self._before = self._before, None  # type: ignore[assignment]
            before()
        return self._con.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


@pytest.mark.parametrize("kill_during", ["bronze", "silver"])
def test_s3_killed_mid_ingest_fails_naming_the_endpoint_and_the_rerun_is_clean(
        tmp_path: Path, own_seaweed: dict[str, Server], monkeypatch: pytest.MonkeyPatch, kill_during: str) -> None:
    server = own_seaweed["s3"]
    bucket = server.extra["bucket"]
    settings = s3_settings(tmp_path, server, bucket)
    store = object_store_from_settings(settings)
    store.check()
    simulate_hours(store)
    probe = boto3.client("s3", endpoint_url=server.url, aws_access_key_id="test", aws_secret_access_key="test",
                         region_name="us-east-1", config=Config(connect_timeout=1, retries={"total_max_attempts": 1},
                                                                s3={"addressing_style": "path"}))

    def listed(prefix: str) -> list[str]:
        return [o["Key"] for o in probe.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]

    # the run pauses (in the thread that writes) right after its first write of the phase, until the kill
    reached, killed = threading.Event(), threading.Event()

    def pause() -> None:
        reached.set()
        assert killed.wait(DEADLINE_S), "the test never killed the server"

    if kill_during == "bronze":
        real_put = S3Store.put_file

        def put_file(self: S3Store, key: str, path: Path) -> None:
            real_put(self, key, path)
            if parse_bronze_key(key) and not reached.is_set():
                pause()

        monkeypatch.setattr(S3Store, "put_file", put_file)
        written = "bronze/"
    else:
        real_write = runner.write_silver
        tables: list[str] = []

        def write_silver(con: duckdb.DuckDBPyConnection, table: Any, partitions: list[str]) -> int:
            tables.append(table.name)
            if len(tables) == 2:
                # the first table is committed; the second dies inside its transaction, its silver rows
                # written, its quarantine not yet
                con = KillingConnection(con, "INSERT INTO lake.silver.quarantine", pause)  # type: ignore[assignment]
            return real_write(con, table, partitions)

        monkeypatch.setattr(runner, "write_silver", write_silver)
        written = "lake/silver/"

    results: list[dg.ExecuteInProcessResult] = []
    thread = threading.Thread(target=lambda: results.append(run_ingest(settings, silver_selection())), daemon=True)
    thread.start()
    assert reached.wait(DEADLINE_S), "the run never reached the point to kill at"
    wait_for(f"an object under {written}", lambda: bool(listed(written)))
    server.kill()
    killed.set()
    t0 = time.monotonic()
    thread.join(DEADLINE_S)
    assert not thread.is_alive(), "the run hangs on the dead S3 server"
    failed_after = time.monotonic() - t0
    assert results and not results[0].success
    text = failure_text(results[0])
    assert server.url.split("://", 1)[1] in text, text[-3000:]  # the error names the endpoint...
    assert bucket in text, text[-3000:]  # ...and the bucket
    assert failed_after < 30, f"the run took {failed_after:.1f}s to fail"

    # same data dir, same ports: the landed data is still there; the same ingest again
    monkeypatch.undo()
    server = own_seaweed["s3"] = restart_seaweedfs(server)
    store.check()
    assert_no_half_written_silver(settings, store)
    rerun = run_ingest(settings, silver_selection())
    assert rerun.success, failure_text(rerun)[-3000:]
    assert_whole(settings, store)


# ------------------------------------------------------------ 2. two overlapping backfills at once

def test_two_overlapping_backfills_of_the_same_hours_write_every_row_once(settings: Settings,
                                                                          folder_store: ObjectStore) -> None:
    """Two ``ingest`` runs (bronze → silver → gold) of the same hours, started together: no duplicate in
    silver or gold, accounting holds, and the result is what one run alone gives."""
    simulate_hours(folder_store)
    barrier = threading.Barrier(2, timeout=DEADLINE_S)
    results: dict[int, dg.ExecuteInProcessResult | BaseException] = {}

    def one(i: int) -> None:
        try:
            barrier.wait()
            results[i] = run_ingest(settings)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 3 * DEADLINE_S
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0))
    assert not any(t.is_alive() for t in threads), "a backfill hangs"
    for i in range(2):
        result = results[i]
        assert isinstance(result, dg.ExecuteInProcessResult), repr(result)
        assert result.success, failure_text(result)[-3000:]
    together = assert_whole(settings, folder_store, gold=True)
    con = Lake(settings).connect_lake()
    try:
        applications = con.execute("SELECT count(DISTINCT SK_ID_CURR) FROM lake.silver.application").fetchone()[0]  # type: ignore[index]
    finally:
        con.close()
    assert together["gold.applicant_features"] == applications

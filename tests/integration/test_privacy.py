"""Erasure (``forget``) and retention against a real lake: simulated silver + quarantine, dbt-built
gold, a prediction log written by the serving writer and loaded into the lake."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from creditrisk_assets.cli import main as cli_main
from creditrisk_assets.layout import partition_hour_of_key
from creditrisk_assets.privacy import apply_retention, forget
from creditrisk_assets.quality.pii import pseudonymise
from creditrisk_assets.quality.runner import ingest_to_silver
from creditrisk_assets.resources import Lake, ObjectStore, object_store_from_settings
from creditrisk_assets.settings import Settings
from serving.prediction_log import PredictionLogWriter, load_hours
from tests.helpers import build_gold

pytestmark = pytest.mark.integration
START = dt.datetime(2026, 10, 1)
SILVER = ("application", "bureau", "bureau_balance", "previous_application", "installments_payments",
          "credit_card_balance", "loan_outcome")


def landed_applications(store: ObjectStore) -> pd.DataFrame:
    frames = [pd.read_csv(io.BytesIO(store.get_bytes(o.key)), dtype=str)
              for o in store.list("landing/application/") if o.key.endswith(".csv")]
    return pd.concat(frames, ignore_index=True)


def applicant_counts(con: duckdb.DuckDBPyConnection, ids: list[int], bureau: list[int], h: str,
                     log_hashes: list[str], raw_hmacs: set[str]) -> dict[str, int]:
    """The applicant's rows per table, counted with simple, independent queries."""
    idl = ", ".join(map(str, ids))
    bl = ", ".join(map(str, bureau)) or "NULL"
    out = {}
    for t in SILVER:
        where = f"SK_ID_BUREAU IN ({bl})" if t == "bureau_balance" else f"SK_ID_CURR IN ({idl})"
        out[f"silver.{t}"] = con.execute(f"SELECT count(*) FROM lake.silver.{t} WHERE {where}").fetchone()[0]
    q = con.execute("SELECT table_name, payload FROM lake.silver.quarantine").fetchall()
    mine = 0
    for table, payload in q:
        p = json.loads(payload)
        if (p.get("NATIONAL_ID_HASH") == h or (table != "bureau_balance" and str(p.get("SK_ID_CURR")) in map(str, ids))
                or (table == "bureau_balance" and str(p.get("SK_ID_BUREAU")) in map(str, bureau))
                or (table == "application" and p.get("_raw_line_hmac") in raw_hmacs)):
            mine += 1
    out["silver.quarantine"] = mine
    out["gold.applicant_features"] = con.execute(
        f"SELECT count(*) FROM lake.gold.applicant_features WHERE sk_id_curr IN ({idl})").fetchone()[0]
    hl = ", ".join(f"'{x}'" for x in log_hashes)
    out["serving.prediction_log"] = con.execute(
        f"SELECT count(*) FROM lake.serving.prediction_log WHERE applicant_hash IN ({hl})").fetchone()[0]
    return out


def totals(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    tables = [f"silver.{t}" for t in SILVER] + ["silver.quarantine", "gold.applicant_features",
                                                 "serving.prediction_log"]
    return {t: con.execute(f"SELECT count(*) FROM lake.{t}").fetchone()[0] for t in tables}


def planted_quarantine(settings: Settings, store: ObjectStore, row: pd.Series, other: pd.Series,
                       bureau_id: int, hour: dt.datetime) -> str:
    """Land a late second file per table for ``hour`` that silver must quarantine: a conflicting
    copy of the applicant's application (and of another applicant's), an unparseable application
    line carrying their national id, a bureau row and a bureau-balance row with invalid values.
    Re-ingest that hour through the real bronze → silver path. Returns the malformed line."""
    apps = pd.DataFrame([row, other])
    apps["AMT_INCOME_TOTAL"] = "123456.5"  # same key, different values: duplicate_key
    text = apps.to_csv(index=False)
    bad = f"{row['SK_ID_CURR']},broken line,{row['NATIONAL_ID']}"
    store.put_bytes(f"landing/application/{hour:%Y-%m-%d}/{hour:%H}/part-00001.csv", (text + bad + "\n").encode())
    bureau = {"SK_ID_BUREAU": 990001, "SK_ID_CURR": int(row["SK_ID_CURR"]), "CREDIT_ACTIVE": "Bogus",
              "CREDIT_TYPE": "Car loan", "DATE_CREDIT": "2020-01-01", "DATE_CREDIT_ENDDATE": None,
              "CREDIT_DAY_OVERDUE": 0, "AMT_CREDIT_SUM": 1000.0, "AMT_CREDIT_SUM_DEBT": 0.0,
              "AMT_CREDIT_SUM_OVERDUE": 0.0, "CNT_CREDIT_PROLONG": 0, "REPORTED_AT": f"{hour:%Y-%m-%dT%H}:10:00"}
    store.put_bytes(f"landing/bureau/{hour:%Y-%m-%d}/{hour:%H}/part-00001.jsonl.gz",
                    gzip.compress((json.dumps(bureau) + "\n").encode()))
    bb = pa.table({"SK_ID_BUREAU": [bureau_id], "BALANCE_MONTH": [dt.date(2019, 1, 1)], "STATUS": ["Z"]})
    buf = io.BytesIO()
    pq.write_table(bb, buf)
    store.put_bytes(f"landing/bureau_balance/{hour:%Y-%m-%d}/{hour:%H}/part-00001.parquet", buf.getvalue())
    runs = ingest_to_silver(store, Lake(settings), settings, [hour], "planted")
    assert all(r.accounting.balanced for r in runs.values())
    return bad


def write_prediction_log(settings: Settings, store: ObjectStore, target_id: int, others: list[int]) -> list[dt.datetime]:
    """Hour A: the applicant and others (a file to rewrite); hour B: only the applicant (a file to delete)."""
    a, b = START + dt.timedelta(hours=20), START + dt.timedelta(hours=21)
    writer = PredictionLogWriter(store, ["ext_source_mean"], [], flush_rows=10_000, flush_s=3600)

    def row(app_id: int, at: dt.datetime, i: int) -> dict[str, object]:
        return {"request_id": f"r{app_id}-{i}", "logged_at": pd.Timestamp(at, tz="UTC") + pd.Timedelta(minutes=i),
                "applicant_hash": pseudonymise(str(app_id), settings.pii_key), "feature_source": "gold",
                "served_by": "champion", "model_version": "1", "pd": 0.1, "decision": "approve", "score": 640,
                "grade": 6, "reason_codes": "[]", "shadow_version": None, "shadow_pd": None, "latency_ms": 1.0,
                "ext_source_mean": 0.5}

    writer.log([row(target_id, a, i) for i in range(3)] + [row(o, a, 10 + k) for k, o in enumerate(others)])
    writer.flush()
    writer.log([row(target_id, b, i) for i in range(2)])
    assert writer.close() == 0
    con = Lake(settings).connect_lake()
    try:
        load_hours(con, store, [a, b])
    finally:
        con.close()
    return [a, b]


def raw_log_hashes(store: ObjectStore) -> list[str]:
    return [h for o in store.list("serving/prediction_log/")
            for h in pq.read_table(io.BytesIO(store.get_bytes(o.key)))["applicant_hash"].to_pylist()]


def lake_files_holding(settings: Settings, needles: set[str], ids: dict[str, set[int]]) -> list[str]:
    """Every Parquet file under the lake's data path (any snapshot's, live or not) in which a needle
    string appears in any cell, or an id in its id column (``ids``: lower-case column → ids)."""
    hits = []
    for path in sorted(Path(Lake(settings).data_path).rglob("*.parquet")):
        table = pq.read_table(path)
        for col in table.column_names:
            values = table[col].to_pylist()
            if any(isinstance(v, str) and any(n in v for n in needles) for v in values) or (
                    ids.get(col.lower(), set()) & {v for v in values if isinstance(v, int)}):
                hits.append(f"{path.name}:{col}")
    return hits


def test_forget_erases_one_applicant_everywhere_and_physically(
        settings: Settings, folder_store: ObjectStore, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    store = folder_store
    build_gold(settings, store, hours=12, rows_per_hour=60)
    landed = landed_applications(store)
    con = Lake(settings).connect_lake()
    # an applicant with history in every activity table (and a later control applicant)
    target_id, bureau_id = con.execute(
        """SELECT a.SK_ID_CURR, min(b.SK_ID_BUREAU) FROM lake.silver.application a
           JOIN lake.silver.bureau b USING (SK_ID_CURR) JOIN lake.silver.bureau_balance bb USING (SK_ID_BUREAU)
           WHERE a.SK_ID_CURR IN (SELECT SK_ID_CURR FROM lake.silver.installments_payments)
             AND a.SK_ID_CURR IN (SELECT SK_ID_CURR FROM lake.silver.credit_card_balance)
             AND a.SK_ID_CURR IN (SELECT SK_ID_CURR FROM lake.silver.previous_application)
             AND a.SK_ID_CURR IN (SELECT SK_ID_CURR FROM lake.silver.loan_outcome)
           GROUP BY 1 ORDER BY 1 LIMIT 1""").fetchone()
    con.close()
    row = landed[landed["SK_ID_CURR"] == str(target_id)].iloc[0]
    hour = pd.Timestamp(row["DECISION_TIME"]).floor("h").to_pydatetime()
    same_hour = pd.to_datetime(landed["DECISION_TIME"]).dt.floor("h") == pd.Timestamp(hour)
    other = landed[same_hour & (landed["SK_ID_CURR"] != str(target_id))].iloc[0]
    national_id = row["NATIONAL_ID"]
    h = pseudonymise(national_id, settings.pii_key)
    bad = planted_quarantine(settings, store, row, other, bureau_id, hour)
    others = [int(other["SK_ID_CURR"]), int(landed["SK_ID_CURR"].iloc[-1])]
    write_prediction_log(settings, store, target_id, others)
    store.put_bytes("serving/batch_scores/applicant_features-v1.parquet", _parquet(
        pa.table({"sk_id_curr": [target_id, *others], "pd": [0.1, 0.2, 0.3]})))

    con = Lake(settings).connect_lake()
    bureau = [r[0] for r in con.execute("SELECT SK_ID_BUREAU FROM lake.silver.bureau WHERE SK_ID_CURR = ?",
                                        [target_id]).fetchall()]
    log_hash = pseudonymise(str(target_id), settings.pii_key)
    raw_hmacs = {pseudonymise(bad, settings.pii_key)}
    before_mine = applicant_counts(con, [target_id], bureau + [990001], h, [log_hash], raw_hmacs)
    before_all = totals(con)
    pre_snapshot = con.execute("SELECT min(snapshot_id) FROM ducklake_snapshots('lake') "
                               "WHERE changes['tables_created'] IS NOT NULL").fetchone()[0]
    last_snapshot = Lake.snapshot_id(con)
    con.close()
    id_columns = {"sk_id_curr": {target_id}, "sk_id_bureau": set(bureau)}
    for t in SILVER:
        assert before_mine[f"silver.{t}"] > 0, t
    assert before_mine["silver.quarantine"] >= 4  # application duplicate + malformed line, bureau, bureau_balance
    assert before_mine["gold.applicant_features"] == 1 and before_mine["serving.prediction_log"] == 5
    assert lake_files_holding(settings, {h, log_hash}, id_columns)  # the scan can find them

    report = forget(settings, store, Lake(settings), national_id)

    assert report.applications == 1
    for name, n in before_mine.items():
        assert report.deleted[name] == n, name
    assert report.deleted["objects:serving/prediction_log/"] == 5
    assert report.deleted["objects:serving/batch_scores/"] == 1
    assert (report.raw_files_rewritten, report.raw_files_deleted) == (2, 1)  # hour A + batch scores; hour B
    con = Lake(settings).connect_lake()
    after_mine = applicant_counts(con, [target_id], bureau + [990001], h, [log_hash], raw_hmacs)
    after_all = totals(con)
    assert set(after_mine.values()) == {0}
    assert {t: before_all[t] - after_all[t] for t in before_all} == before_mine  # others untouched
    assert con.execute("SELECT count(*) FROM lake.silver.application WHERE NATIONAL_ID_HASH = ?", [h]).fetchone()[0] == 0
    # the other applicant's planted duplicate stays quarantined
    assert con.execute("SELECT count(*) FROM lake.silver.quarantine WHERE json_extract_string(payload, "
                       "'$.SK_ID_CURR') = ?", [str(other["SK_ID_CURR"])]).fetchone()[0] == 1
    # time travel to before the applicant's first row still works; to a snapshot holding their rows it does not
    assert con.execute(f"SELECT count(*) FROM lake.silver.application AT (VERSION => {pre_snapshot})").fetchone() == (0,)
    with pytest.raises(duckdb.Error, match="No snapshot"):
        con.execute(f"SELECT count(*) FROM lake.silver.application AT (VERSION => {last_snapshot})").fetchall()
    con.close()
    logged = raw_log_hashes(store)
    assert log_hash not in logged and len(logged) == len(others)
    scores = pq.read_table(io.BytesIO(store.get_bytes("serving/batch_scores/applicant_features-v1.parquet")))
    assert scores["sk_id_curr"].to_pylist() == others
    # physical: no data file under the lake's data path holds the pseudonyms or the ids any more
    assert report.residual_files == []
    assert lake_files_holding(settings, {h, log_hash}, id_columns) == []
    assert report.snapshots_expired > 0 and report.lake_files_removed > 0
    assert report.catalog_vacuumed
    catalog = Path(settings.resolved_lake_catalog.removeprefix("sqlite:")).read_bytes()
    if not report.catalog_stats_residue:  # else DuckLake's table-level min/max still holds one (reported)
        assert h.encode() not in catalog and log_hash.encode() not in catalog

    again = forget(settings, store, Lake(settings), national_id)
    assert again.total_rows == 0 and again.applications == 0
    assert (again.snapshots_expired, again.raw_files_rewritten, again.raw_files_deleted) == (0, 0, 0)
    unknown = forget(settings, store, Lake(settings), "NOT-A-REAL-ID-000")
    assert unknown.total_rows == 0 and unknown.applications == 0

    # the CLI, on another applicant: counts printed, never the id
    second = landed[landed["SK_ID_CURR"] == str(others[1])].iloc[0]["NATIONAL_ID"]
    monkeypatch.setenv("CREDITRISK_HOME", str(settings.home))
    assert cli_main(["forget", "--national-id", second]) == 0
    out = capsys.readouterr().out
    assert "applications found: 1" in out and "silver.application: 1 row(s) deleted" in out
    assert "serving.prediction_log: 1 row(s) deleted" in out
    assert second not in out and pseudonymise(second, settings.pii_key) not in out


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_retention_deletes_old_hours_only(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    store = object_store_from_settings(settings)
    store.check()
    now = dt.datetime(2026, 10, 11, 12, 30, tzinfo=dt.UTC)
    old, edge, new = dt.datetime(2026, 10, 1, 3), dt.datetime(2026, 10, 9, 11), dt.datetime(2026, 10, 9, 12)
    keys = []
    for hour in (old, edge, new):
        keys += [f"landing/application/{hour:%Y-%m-%d}/{hour:%H}/part-00000.csv",
                 f"bronze/application/dt={hour:%Y-%m-%d}/hh={hour:%H}/part-00000.parquet",
                 f"bronze/_audit/table_name=application/dt={hour:%Y-%m-%d}/hh={hour:%H}/audit.parquet"]
    for k in keys:
        store.put_bytes(k, b"x")
    store.put_bytes("oracle/default/truth.parquet", b"x")  # no hour: never touched
    writer = PredictionLogWriter(store, ["ext_source_mean"], [], flush_rows=10_000, flush_s=3600)
    writer.log([{"request_id": f"r{i}", "logged_at": pd.Timestamp(h, tz="UTC") + pd.Timedelta(minutes=i),
                 "applicant_hash": f"a{i}", "pd": 0.1, "ext_source_mean": 0.5}
                for h in (old, edge, new) for i in range(2)])
    assert writer.close() == 0
    con = Lake(settings).connect_lake()
    load_hours(con, store, [old, edge, new])
    con.close()
    before = {o.key for o in store.list("")}

    assert apply_retention(settings, store, now) == {}  # retention_days = 0: keep everything
    monkeypatch.setenv("CREDITRISK_HOME", str(settings.home))
    assert cli_main(["retention"]) == 0
    assert "nothing deleted" in capsys.readouterr().out
    assert {o.key for o in store.list("")} == before

    kept = dataclasses.replace(settings, retention_days=2)  # cutoff 2026-10-09 12:30: hour 11 ended before it
    out = apply_retention(kept, store, now)
    after = {o.key for o in store.list("")}
    gone = before - after
    assert gone and all(partition_hour_of_key(k) in (old, edge) for k in gone)
    assert {partition_hour_of_key(k) for k in after if partition_hour_of_key(k)} == {new}
    assert "oracle/default/truth.parquet" in after
    assert out["objects:landing/"] == 2 and out["objects:bronze/"] == 4 and out["objects:serving/prediction_log/"] == 2
    con = Lake(settings).connect_lake()
    logged = con.execute("SELECT min(logged_at) FROM lake.serving.prediction_log").fetchone()[0]
    assert con.execute("SELECT count(*) FROM lake.serving.prediction_log").fetchone()[0] == 2
    con.close()
    assert pd.Timestamp(logged) >= pd.Timestamp(new, tz="UTC")
    assert out["rows:serving.prediction_log"] == 4
    assert apply_retention(kept, store, now)["rows:serving.prediction_log"] == 0  # idempotent

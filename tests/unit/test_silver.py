"""Bronze → silver on hand-made files: typing, rules, dedup, schema policy, PII, accounting."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import duckdb
import pytest

from creditrisk_assets.contracts import APPLICATION, LOAN_OUTCOME, Table
from creditrisk_assets.ingest.bronze import ingest_partition
from creditrisk_assets.layout import bronze_partition_prefix, partition_key
from creditrisk_assets.quality.pii import pseudonymise
from creditrisk_assets.quality.silver import account_rows, build_silver, read_as_of, write_silver
from creditrisk_assets.resources import Lake, ObjectStore
from creditrisk_assets.settings import Settings

HOUR = dt.datetime(2026, 10, 1, 5)
KEY = "test-key"


def app_row(i: int, **over: str) -> dict[str, str]:
    row = {
        "SK_ID_CURR": str(100000 + i), "DECISION_TIME": "2026-10-01T05:10:00", "NAME_CONTRACT_TYPE": "Cash loans",
        "CODE_GENDER": "F", "FLAG_OWN_CAR": "N", "FLAG_OWN_REALTY": "Y", "CNT_CHILDREN": "1",
        "AMT_INCOME_TOTAL": "54000.5", "AMT_CREDIT": "200000", "AMT_ANNUITY": "12000", "AMT_GOODS_PRICE": "180000",
        "NAME_INCOME_TYPE": "Working", "NAME_EDUCATION_TYPE": "Higher education", "NAME_FAMILY_STATUS": "Married",
        "NAME_HOUSING_TYPE": "House / apartment", "DAYS_EMPLOYED": "-1200", "OCCUPATION_TYPE": "Laborers",
        "ORGANIZATION_TYPE": "Business Entity Type 3", "REGION_RATING_CLIENT": "2", "EXT_SOURCE_1": "",
        "EXT_SOURCE_2": "0.61", "EXT_SOURCE_3": "0.5", "FULL_NAME": f"Zoë Q{i} Example", "EMAIL": f"zoe{i}@mail.example",
        "PHONE": f"+44 7700 9{i:05d}", "NATIONAL_ID": f"QQ{i:06d}C", "DATE_OF_BIRTH": "1990-03-15",
        "ADDRESS": f"{i} Secret Lane, Hiddenville",
        # the optional feature columns of the published file (its drop columns are left out: a source without
        # them is normal)
        "NAME_TYPE_SUITE": "Spouse, partner", "REGION_POPULATION_RELATIVE": "0.018850",
        "DATE_REGISTRATION": "2011-04-02", "DATE_ID_PUBLISH": "2019-12-30", "OWN_CAR_AGE": "",
        "FLAG_EMP_PHONE": "1", "FLAG_WORK_PHONE": "0", "CNT_FAM_MEMBERS": "3.0", "REGION_RATING_CLIENT_W_CITY": "2",
        "HOUR_APPR_PROCESS_START": "11", "REG_CITY_NOT_LIVE_CITY": "0", "REG_CITY_NOT_WORK_CITY": "1",
        "TOTALAREA_MODE": "0.0149", "OBS_30_CNT_SOCIAL_CIRCLE": "2.0", "DEF_30_CNT_SOCIAL_CIRCLE": "0.0",
        "DEF_60_CNT_SOCIAL_CIRCLE": "0.0", "DATE_LAST_PHONE_CHANGE": "2026-09-30", "FLAG_DOCUMENT_3": "1",
        "AMT_REQ_CREDIT_BUREAU_YEAR": "",
    }
    row.update(over)
    return row


def csv_bytes(rows: list[dict[str, str]], drop: tuple[str, ...] = (), extra: dict[str, str] | None = None) -> bytes:
    cols = [c for c in rows[0] if c not in drop] + list(extra or {})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in rows:
        w.writerow([{**r, **(extra or {})}.get(c, "") for c in cols])
    return buf.getvalue().encode()


def land_and_run(store: ObjectStore, settings: Settings, table: Table, files: dict[str, bytes],
                 policy: str = "auto_correct", hour: dt.datetime = HOUR):
    for name, data in files.items():
        store.put_bytes(f"landing/{table.name}/{hour:%Y-%m-%d}/{hour:%H}/{name}", data)
    lake = Lake(settings)
    ingest_partition(store, lake, table.name, hour, run_id="b1")
    uris = [store.uri(o.key) for o in store.list(bronze_partition_prefix(table.name, hour))]
    con = lake.connect_lake()
    from creditrisk_assets.quality.silver import ensure_lake_tables

    ensure_lake_tables(con, table)
    res = build_silver(con, table, uris, [partition_key(hour)], policy, KEY, "s1")
    res.snapshot_id = write_silver(con, table, [partition_key(hour)])
    return res, con, uris


def quarantine(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    return con.execute("SELECT rule, reason, payload FROM lake.silver.quarantine WHERE table_name = ? "
                       "ORDER BY row_ordinal", [table]).fetchall()


def test_clean_rows_are_typed_and_pseudonymised(folder_store: ObjectStore, settings: Settings) -> None:
    rows = [app_row(i) for i in range(3)]
    res, con, _ = land_and_run(folder_store, settings, APPLICATION, {"part-0.csv": csv_bytes(rows)})
    assert (res.bronze_rows, res.silver_rows, res.quarantined_rows) == (3, 3, 0)
    silver = read_as_of(con, "application").sort_values("SK_ID_CURR")
    assert silver["SK_ID_CURR"].tolist() == [100000, 100001, 100002]
    assert silver["AMT_INCOME_TOTAL"].iloc[0] == 54000.5 and silver["AGE_YEARS"].tolist() == [36, 36, 36]
    assert silver["NATIONAL_ID_HASH"].iloc[0] == pseudonymise("QQ000000C", KEY)
    assert {"FULL_NAME", "ADDRESS", "NATIONAL_ID", "EMAIL", "PHONE", "DATE_OF_BIRTH"}.isdisjoint(silver.columns)
    assert silver["EXT_SOURCE_1"].isna().all()


def test_every_rule_quarantines_with_a_reason(folder_store: ObjectStore, settings: Settings) -> None:
    rows = [
        app_row(0),
        app_row(1, AMT_CREDIT="lots"),                    # type
        app_row(2, NAME_INCOME_TYPE="Pirate"),            # allowed values
        app_row(3, CNT_CHILDREN="45"),                    # range
        app_row(4, NAME_HOUSING_TYPE=""),                 # not null (personal columns are optional)
        app_row(5, DATE_OF_BIRTH="2020-01-01"),           # age range
        app_row(0),                                       # exact duplicate of row 0
        app_row(6), app_row(6, AMT_CREDIT="1000"),        # conflicting duplicate key
    ]
    data = csv_bytes(rows) + b"1,2,3\n"                   # malformed line (too few fields)
    res, con, _ = land_and_run(folder_store, settings, APPLICATION, {"part-0.csv": data})
    assert res.bronze_rows == 10 and res.silver_rows == 2 and res.quarantined_rows == 8
    got = quarantine(con, "application")
    rules = sorted(r[0] for r in got)
    assert rules == sorted(["type", "allowed_values", "range", "not_null", "range", "duplicate_row",
                            "duplicate_key", "malformed_row"])
    reasons = " | ".join(r[1] for r in got)
    for text in ("AMT_CREDIT is not a valid float", "NAME_INCOME_TYPE not an allowed value", "CNT_CHILDREN above 20",
                 "NAME_HOUSING_TYPE is missing", "age from DATE_OF_BIRTH", "MISSING COLUMNS"):
        assert text in reasons
    payloads = [json.loads(r[2]) for r in got]
    assert any("NATIONAL_ID_HASH" in p for p in payloads)
    assert all("FULL_NAME" not in p and "NATIONAL_ID" not in p for p in payloads)
    assert any("_raw_line_hmac" in p for p in payloads)  # malformed application line: no clear text kept


def test_duplicate_key_in_an_earlier_partition(folder_store: ObjectStore, settings: Settings) -> None:
    land_and_run(folder_store, settings, LOAN_OUTCOME, {"p.csv": b"SK_ID_CURR,TARGET,OUTCOME_TIME\n7,0,2026-10-01T05:00:00\n"})
    later = HOUR + dt.timedelta(hours=1)
    res, con, _ = land_and_run(folder_store, settings, LOAN_OUTCOME,
                               {"p.csv": b"SK_ID_CURR,TARGET,OUTCOME_TIME\n7,1,2026-10-01T06:00:00\n8,0,2026-10-01T06:00:00\n"},
                               hour=later)
    assert (res.silver_rows, res.quarantined_rows) == (1, 1)
    assert "already in silver partition 2026-10-01-05:00" in quarantine(con, "loan_outcome")[0][1]


@pytest.mark.parametrize("policy", ["alert", "auto_correct", "reject"])
def test_type_drift_is_coerced_only_when_lossless_and_policy_allows(folder_store: ObjectStore, settings: Settings,
                                                                   policy: str) -> None:
    rows = [app_row(0, AMT_INCOME_TOTAL="54000,5", DATE_OF_BIRTH="15/03/1990"), app_row(1, AMT_CREDIT="n/a")]
    res, con, _ = land_and_run(folder_store, settings, APPLICATION, {"p.csv": csv_bytes(rows)}, policy=policy)
    assert res.quarantined_rows + res.silver_rows == 2
    if policy == "auto_correct":
        assert res.silver_rows == 1
        assert read_as_of(con, "application")["AMT_INCOME_TOTAL"].tolist() == [54000.5]
        coerced = {e.column_name: e.rows_affected for e in res.schema_events if e.event == "type_coerced"}
        assert coerced == {"AMT_INCOME_TOTAL": 1, "DATE_OF_BIRTH": 1}
    else:
        assert res.silver_rows == 0 and res.quarantine_by_rule == {"type": 2}


@pytest.mark.parametrize("policy", ["alert", "auto_correct", "reject"])
def test_missing_required_column_quarantines_the_file(folder_store: ObjectStore, settings: Settings,
                                                      policy: str) -> None:
    files = {"a.csv": csv_bytes([app_row(0), app_row(1)], drop=("AMT_CREDIT",)), "b.csv": csv_bytes([app_row(2)])}
    res, con, _ = land_and_run(folder_store, settings, APPLICATION, files, policy=policy)
    assert (res.silver_rows, res.quarantined_rows) == (1, 2)
    assert {r[0] for r in quarantine(con, "application")} == {"schema"}
    (ev,) = [e for e in res.schema_events if e.event == "missing_required_column"]
    assert (ev.column_name, ev.action, ev.rows_affected) == ("AMT_CREDIT", "file quarantined", 2)


@pytest.mark.parametrize(("policy", "silver_rows"), [("alert", 2), ("auto_correct", 2), ("reject", 0)])
def test_missing_optional_column(folder_store: ObjectStore, settings: Settings, policy: str, silver_rows: int) -> None:
    files = {"a.csv": csv_bytes([app_row(0), app_row(1)], drop=("AMT_GOODS_PRICE",))}
    res, con, _ = land_and_run(folder_store, settings, APPLICATION, files, policy=policy)
    assert res.silver_rows == silver_rows and res.silver_rows + res.quarantined_rows == 2
    (ev,) = [e for e in res.schema_events if e.event == "missing_optional_column"]
    assert ev.column_name == "AMT_GOODS_PRICE"
    if silver_rows:
        assert read_as_of(con, "application")["AMT_GOODS_PRICE"].isna().all()


DROP_COLUMNS = [c.name for c in APPLICATION.columns if c.role == "drop"]


@pytest.mark.parametrize("policy", ["alert", "auto_correct", "reject"])
def test_drop_columns_make_no_schema_events_whether_absent_or_present(folder_store: ObjectStore, settings: Settings,
                                                                     policy: str) -> None:
    assert len(DROP_COLUMNS) > 50 and {"FULL_NAME", "ADDRESS", "APARTMENTS_MODE", "FLAG_DOCUMENT_2"} <= set(DROP_COLUMNS)
    without = csv_bytes([app_row(0), app_row(1)], drop=tuple(DROP_COLUMNS))  # none of the ~80 drop columns
    res, con, _ = land_and_run(folder_store, settings, APPLICATION, {"a.csv": without}, policy=policy)
    assert (res.silver_rows, res.quarantined_rows, res.schema_events) == (2, 0, [])
    con.close()

    # present, with values that would break their declared types: stay in bronze, unchecked, not coerced
    junk = {"APARTMENTS_AVG": "0,5", "FLAG_MOBIL": "n/a", "EMERGENCYSTATE_MODE": "Yes", "AMT_REQ_CREDIT_BUREAU_DAY": "x"}
    rows = [app_row(2, **junk), app_row(3, **junk, AMT_CREDIT="lots")]
    res, con, _ = land_and_run(folder_store, settings, APPLICATION, {"b.csv": csv_bytes(rows)}, policy=policy,
                               hour=HOUR + dt.timedelta(hours=1))
    assert res.schema_events == [] and (res.silver_rows, res.quarantined_rows) == (1, 1)
    assert res.quarantine_by_rule == {"type": 1}
    silver = read_as_of(con, "application")
    assert set(DROP_COLUMNS).isdisjoint(silver.columns)
    assert silver["NAME_TYPE_SUITE"].tolist() == ["Spouse, partner"] * 3 and silver["CNT_FAM_MEMBERS"].tolist() == [3.0] * 3
    ((payload,),) = con.execute("SELECT payload FROM lake.silver.quarantine").fetchall()
    assert "AMT_CREDIT" in json.loads(payload) and set(DROP_COLUMNS).isdisjoint(json.loads(payload))
    events = con.execute("SELECT count(*) FROM lake.silver.schema_events").fetchone()
    assert events == (0,)


def test_a_missing_feature_column_is_still_an_event(folder_store: ObjectStore, settings: Settings) -> None:
    files = {"a.csv": csv_bytes([app_row(0)], drop=(*DROP_COLUMNS, "DATE_REGISTRATION"))}
    res, con, _ = land_and_run(folder_store, settings, APPLICATION, files)
    assert [(e.event, e.column_name) for e in res.schema_events] == [("missing_optional_column", "DATE_REGISTRATION")]
    assert read_as_of(con, "application")["DATE_REGISTRATION"].isna().all()


@pytest.mark.parametrize(("policy", "silver_rows"), [("alert", 2), ("auto_correct", 2), ("reject", 0)])
def test_extra_column_is_recorded_not_copied(folder_store: ObjectStore, settings: Settings, policy: str,
                                             silver_rows: int) -> None:
    files = {"a.csv": csv_bytes([app_row(0), app_row(1)], extra={"LEGACY_SCORE": "0.3"})}
    res, con, _ = land_and_run(folder_store, settings, APPLICATION, files, policy=policy)
    assert res.silver_rows == silver_rows
    assert "LEGACY_SCORE" not in read_as_of(con, "application").columns
    events = con.execute("SELECT event, column_name, rows_affected FROM lake.silver.schema_events").fetchall()
    assert ("extra_column", "LEGACY_SCORE", 2) in events


def test_rerun_replaces_the_partition_and_snapshots_keep_history(folder_store: ObjectStore, settings: Settings) -> None:
    first, con, _ = land_and_run(folder_store, settings, LOAN_OUTCOME,
                                 {"p.csv": b"SK_ID_CURR,TARGET,OUTCOME_TIME\n1,0,2026-10-01T05:00:00\n"})
    con.close()
    second, con, uris = land_and_run(folder_store, settings, LOAN_OUTCOME,
                                     {"q.csv": b"SK_ID_CURR,TARGET,OUTCOME_TIME\n2,1,2026-10-01T05:30:00\n"})
    assert second.snapshot_id > first.snapshot_id
    assert sorted(read_as_of(con, "loan_outcome")["SK_ID_CURR"]) == [1, 2]  # replaced, not appended
    assert read_as_of(con, "loan_outcome", first.snapshot_id)["SK_ID_CURR"].tolist() == [1]
    acc = account_rows(con, LOAN_OUTCOME, uris, [partition_key(HOUR)])
    assert acc.balanced and acc.bronze_rows == 2


def test_accounting_fails_when_a_row_is_lost(folder_store: ObjectStore, settings: Settings) -> None:
    _, con, uris = land_and_run(folder_store, settings, LOAN_OUTCOME,
                                {"p.csv": b"SK_ID_CURR,TARGET,OUTCOME_TIME\n1,0,2026-10-01T05:00:00\n2,0,x\n"})
    assert account_rows(con, LOAN_OUTCOME, uris, [partition_key(HOUR)]).balanced
    con.execute("DELETE FROM lake.silver.loan_outcome WHERE SK_ID_CURR = 1")  # lose a row on purpose
    acc = account_rows(con, LOAN_OUTCOME, uris, [partition_key(HOUR)])
    assert not acc.balanced and acc.missing == 1


def test_control_characters_quarantine_only_their_lines(folder_store: ObjectStore, settings: Settings) -> None:
    lines = csv_bytes([app_row(i) for i in range(8)]).split(b"\r\n")
    lines[2] = lines[2].replace(b"Cash loans", b"Cash\x00loans")           # NUL in an unquoted field
    lines[4] = lines[4].replace(b"Secret Lane", b"Secret\x1b[2J Lane")     # ESC in the (free-text) address
    lines[6] = lines[6].replace(b"Zo\xc3\xab Q5 Example", b'"Zo\x07\x07, Q5"')  # BELs in a quoted field
    land = {"part-0.csv": b"\n".join(lines),
            "part-1.jsonl": b'{"SK_ID_CURR": 1, "TARGET": 0, "OUTCOME_TIME": "2026-10-01T05:00:00"}\n'
                            b'{"SK_ID_CURR": 2, "TARGET": 0, "OUTCOME_TIME": "2026-10-01T05:00:00\x00"}\n'
                            b'{"SK_ID_CURR": 3, "TARGET": 1, "OUTCOME_TIME": "2026-10-01T05:00:00"}\n'}
    res, con, uris = land_and_run(folder_store, settings, APPLICATION, {"part-0.csv": land["part-0.csv"]})
    assert (res.bronze_rows, res.silver_rows, res.quarantined_rows) == (8, 5, 3)
    assert res.quarantine_by_rule == {"control_character": 3}
    assert account_rows(con, APPLICATION, uris, [partition_key(HOUR)]).balanced
    assert sorted(read_as_of(con, "application")["SK_ID_CURR"]) == [100000, 100002, 100004, 100006, 100007]
    got = quarantine(con, "application")
    assert [r[1].split(" at ")[0] for r in got] == ["control_character: 0x00 (NUL)", "control_character: 0x1B (ESC)",
                                                    "control_character: 0x07 (BEL)"]
    assert "0x07 (BEL) x2" in got[2][1]
    assert all(set(json.loads(r[2])) == {"_raw_line_hmac", "_raw_line_chars"} for r in got)  # PII: no clear text
    con.close()

    res, con, uris = land_and_run(folder_store, settings, LOAN_OUTCOME, {"part-1.jsonl": land["part-1.jsonl"]})
    assert (res.bronze_rows, res.silver_rows, res.quarantined_rows) == (3, 2, 1)
    assert account_rows(con, LOAN_OUTCOME, uris, [partition_key(HOUR)]).balanced
    ((rule, reason, payload),) = quarantine(con, "loan_outcome")
    assert (rule, reason.split(" at ")[0]) == ("control_character", "control_character: 0x00 (NUL)")
    assert json.loads(payload)["_raw_line"].endswith('05:00:00\u2400"}')  # stored escaped, never a raw NUL


def test_a_contract_that_gained_a_column_migrates_an_existing_lake(folder_store: ObjectStore,
                                                                   settings: Settings) -> None:
    """A lake written before a contract gained a column: silver adds it (older rows null), no failed insert."""
    from dataclasses import replace

    older = replace(LOAN_OUTCOME, columns=tuple(c for c in LOAN_OUTCOME.columns if c.name != "TARGET"))
    rows = b"SK_ID_CURR,TARGET,OUTCOME_TIME\n1,0,2026-10-01T03:00:00\n"
    _, con, _ = land_and_run(folder_store, settings, older, {"part-0.csv": rows})
    assert "TARGET" not in [r[0] for r in con.execute("DESCRIBE lake.silver.loan_outcome").fetchall()]
    con.close()
    res, con, _ = land_and_run(folder_store, settings, LOAN_OUTCOME, {"part-0.csv": rows})
    assert res.silver_rows == 1
    assert con.execute("SELECT SK_ID_CURR, TARGET FROM lake.silver.loan_outcome").fetchall() == [(1, 0)]

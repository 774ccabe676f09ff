"""``creditrisk simulate --format homecredit`` → ``creditrisk import homecredit`` → silver, with a known truth.

Real parts only: the simulator's world exported in the published Kaggle layout, imported into a folder store,
then bronze and silver in DuckDB. Hand-made files (never real Kaggle rows) cover the edges: the 365243 sentinel,
values silver must quarantine, rows that cannot be placed in time, the published headers of the real files.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from creditrisk_assets.contracts import TABLES, Table
from creditrisk_assets.ingest.homecredit import (
    SENTINEL_DAYS,
    HomeCreditError,
    ImportOptions,
    ImportResult,
    import_homecredit,
    main,
)
from creditrisk_assets.layout import parse_landing_key
from creditrisk_assets.quality.runner import SilverRun, ingest_to_silver
from creditrisk_assets.resources import FolderStore, Lake, ObjectStore, object_store_from_settings
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import SimulationConfig
from creditrisk_assets.simulate.cli import main as simulate_main
from creditrisk_assets.simulate.homecredit import TRUTH_FILE, ExportResult, export_homecredit
from creditrisk_assets.simulate.tables import BUILDERS
from creditrisk_assets.simulate.world import build_world
from tests.helpers import read_landed

START = dt.datetime(2026, 10, 1)
PER_HOUR = 40
DELAY = 2
CFG = SimulationConfig(start="2026-10-01T00:00", hours=6, rows_per_hour=PER_HOUR, seed=11, outcome_delay_hours=DELAY)


# ------------------------------------------------------------------------------ helpers

def landed(store: ObjectStore, table: str) -> list[dict[str, Any]]:
    rows = []
    for o in store.list(f"landing/{table}/"):
        hour = parse_landing_key(o.key)[1]  # type: ignore[index]
        rows += [{**r, "_hour": hour} for r in read_landed(o.key, store.get_bytes(o.key))]
    return rows


def read_csv_rows(path: Path) -> list[dict[str, str | None]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:  # type: ignore[operator]
        return [{k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(fh)]


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(c, "") for c in header])


def expected_decision(sk_id_curr: int, id_base: int, per_hour: int = PER_HOUR, start: dt.datetime = START) -> dt.datetime:
    """The documented placement, computed here independently of the importer's SQL."""
    i = sk_id_curr - id_base
    return start + dt.timedelta(hours=i // per_hour, seconds=((i % per_hour) + 1) * 3600 // (per_hour + 1))


def home(tmp: Path) -> tuple[Settings, ObjectStore]:
    settings = Settings.from_env({"CREDITRISK_HOME": str(tmp / "home")})
    store = object_store_from_settings(settings)
    store.check()
    return settings, store


def silver(settings: Settings, store: ObjectStore, result: ImportResult) -> dict[str, SilverRun]:
    return ingest_to_silver(store, Lake(settings), settings, result.hours, "t")


def quarantine(settings: Settings) -> list[tuple[str, str, str]]:
    con = Lake(settings).connect_lake()
    try:
        return con.execute("SELECT table_name, rule, reason FROM lake.silver.quarantine ORDER BY ALL").fetchall()
    finally:
        con.close()


def schema_events(runs: dict[str, SilverRun], event: str) -> set[tuple[str, str]]:
    return {(name, e.column_name) for name, run in runs.items() for e in run.result.schema_events if e.event == event}


# ------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export_homecredit(CFG, tmp_path_factory.mktemp("kaggle") / "home-credit-default-risk")


@pytest.fixture(scope="module")
def world_tables() -> dict[str, list[dict[str, Any]]]:
    world = build_world(CFG)
    return {name: BUILDERS[name](world).table.to_pylist() for name in TABLES if name in BUILDERS}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory,
             exported: ExportResult) -> tuple[Settings, ObjectStore, ImportResult]:
    settings, store = home(tmp_path_factory.mktemp("import"))
    opts = ImportOptions(exported.out, START, per_hour=PER_HOUR, id_base=exported.id_base, outcome_delay_hours=DELAY)
    return settings, store, import_homecredit(opts, store)


@pytest.fixture(scope="module")
def silver_runs(imported: tuple[Settings, ObjectStore, ImportResult]) -> dict[str, SilverRun]:
    settings, store, result = imported
    return silver(settings, store, result)


# ------------------------------------------------------------------------------ export

def test_export_writes_the_published_layout(exported: ExportResult,
                                            world_tables: dict[str, list[dict[str, Any]]]) -> None:
    out = exported.out
    names = sorted(p.name for p in out.iterdir())
    published = sorted({f for t in TABLES.values() if t.homecredit and t.name in BUILDERS for f in t.homecredit.files})
    assert names == sorted([*published, TRUTH_FILE])
    train, test = read_csv_rows(out / "application_train.csv"), read_csv_rows(out / "application_test.csv")
    assert list(train[0])[:2] == ["SK_ID_CURR", "TARGET"] and "TARGET" not in test[0]
    matured = {r["SK_ID_CURR"] for r in world_tables["loan_outcome"]}
    assert {int(r["SK_ID_CURR"]) for r in train} == matured  # type: ignore[arg-type]
    assert len(train) + len(test) == len(world_tables["application"]) == CFG.hours * PER_HOUR
    headers = {p.name: next(csv.reader(open(p))) for p in out.glob("*.csv")}
    hidden = {c.name for t in TABLES.values() for c in t.columns if c.homecredit is None}  # DECISION_TIME, PII
    assert all(hidden.isdisjoint(h) for h in headers.values())
    assert "DAYS_BIRTH" in headers["application_train.csv"] and "DAYS_CREDIT" in headers["bureau.csv"]
    for name, rows in world_tables.items():
        if name not in ("application", "loan_outcome"):
            assert exported.files[TABLES[name].homecredit.files[0]] == len(rows) > 0  # type: ignore[union-attr]
    # post-decision history is exported as such: dated after the decision, so positive days
    days = [int(r["DAYS_INSTALMENT"]) for r in read_csv_rows(out / "installments_payments.csv")]  # type: ignore[arg-type]
    assert max(days) > 0 and min(days) < 0
    truth = pq.read_table(exported.truth_file).to_pylist()
    assert list(truth[0]) == ["SK_ID_CURR", "TRUE_PD", "TARGET"] and len(truth) == len(world_tables["application"])
    target = {r["SK_ID_CURR"]: r["TARGET"] for r in truth}
    assert all(int(r["TARGET"]) == target[int(r["SK_ID_CURR"])] for r in train)  # type: ignore[arg-type]
    assert exported.id_base == min(target)


# ------------------------------------------------------------------------------ round trip

def _days(value: dt.date, decision: dt.datetime) -> int:
    return (value - decision.date()).days


def _months(value: dt.date, decision: dt.datetime) -> int:
    return (value.year * 12 + value.month) - (decision.year * 12 + decision.month)


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _decisions(rows_by_table: dict[str, list[dict[str, Any]]], table: Table) -> list[dt.datetime]:
    """Each row's application decision time, found through the contract's anchor (world or landed rows)."""
    app = {int(r["SK_ID_CURR"]): r["DECISION_TIME"] for r in rows_by_table["application"]}
    app = {k: v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(v) for k, v in app.items()}
    hc = table.homecredit
    assert hc is not None
    rows = rows_by_table[table.name]
    if hc.anchor in ("decision", "outcome"):
        return [app[int(r[table.primary_key[0]])] for r in rows]
    if hc.anchor == "key":
        return [app[int(r[str(hc.anchor_key)])] for r in rows]
    parent = {int(r[str(hc.anchor_key)]): int(r["SK_ID_CURR"]) for r in rows_by_table[str(hc.anchor_via)]}
    return [app[parent[int(r[str(hc.anchor_key)])]] for r in rows]


def _comparable(rows_by_table: dict[str, list[dict[str, Any]]], table: Table, columns: list[str]) -> Counter:
    """Rows as tuples: relative columns as days / months from the row's decision, the others typed."""
    out: Counter = Counter()
    for row, decision in zip(rows_by_table[table.name], _decisions(rows_by_table, table), strict=True):
        values = []
        for name in columns:
            c, v = table.column(name), row.get(name)
            if v is None:
                values.append(None)
            elif c.homecredit is not None and c.homecredit.relative == "days":
                values.append(_days(_as_date(v), decision))
            elif c.homecredit is not None and c.homecredit.relative == "months":
                values.append(_months(_as_date(v), decision))
            elif c.dtype == "int":
                values.append(int(v))
            elif c.dtype == "float":
                values.append(float(v))
            else:
                values.append(str(v))
        out[tuple(values)] += 1
    return out


def test_round_trip_lands_every_exported_row_with_the_same_relative_values(
        imported: tuple[Settings, ObjectStore, ImportResult], exported: ExportResult,
        world_tables: dict[str, list[dict[str, Any]]]) -> None:
    _, store, result = imported
    landed_tables = {name: landed(store, name) for name in world_tables}
    for name, rows in world_tables.items():
        table, res = TABLES[name], result.tables[name]
        assert (res.read, res.written, res.rejected) == (len(rows), len(rows), {}), name
        assert len(landed_tables[name]) == len(rows), name
        # every exported value comes back: relative ones re-anchored exactly to the new decision times
        columns = [c.name for c in table.columns if c.homecredit is not None and c.name in rows[0]]
        assert _comparable(landed_tables, table, columns) == _comparable(world_tables, table, columns), name
    exported_rows = sum(exported.files.values())
    assert sum(r.written for n, r in result.tables.items() if n != "loan_outcome") == exported_rows


def test_decision_and_outcome_times_follow_the_documented_placement(
        imported: tuple[Settings, ObjectStore, ImportResult], exported: ExportResult) -> None:
    _, store, result = imported
    apps = landed(store, "application")
    for r in apps:
        decision = expected_decision(int(r["SK_ID_CURR"]), exported.id_base)
        assert r["DECISION_TIME"] == decision.strftime("%Y-%m-%dT%H:%M:%S")
        assert r["_hour"] == decision.replace(minute=0, second=0) and (decision.minute, decision.second) != (0, 0)
    # the simulator's hours come back as the same hours (id_base = its first SK_ID_CURR, same rows per hour)
    assert Counter(r["_hour"] for r in apps) == {START + dt.timedelta(hours=h): PER_HOUR for h in range(CFG.hours)}
    truth = {r["SK_ID_CURR"]: r["TARGET"] for r in pq.read_table(exported.truth_file).to_pylist()}
    for r in landed(store, "loan_outcome"):
        outcome = expected_decision(int(r["SK_ID_CURR"]), exported.id_base) + dt.timedelta(hours=DELAY)
        assert r["OUTCOME_TIME"] == outcome.strftime("%Y-%m-%dT%H:%M:%S") and r["_hour"] == outcome.replace(minute=0, second=0)
        assert int(r["TARGET"]) == truth[int(r["SK_ID_CURR"])]
    bureau = landed(store, "bureau")
    assert all(r["REPORTED_AT"].endswith("T00:00:00") for r in bureau)  # a day is the resolution
    app_hour = {r["SK_ID_CURR"]: r["_hour"] for r in apps}
    assert all(r["_hour"] == app_hour[r["SK_ID_CURR"]] for r in bureau)  # history lands with its application
    assert result.hours == sorted({r["_hour"] for t in TABLES for r in landed(store, t)})


def test_silver_accounts_for_every_imported_row_and_quarantines_none(
        imported: tuple[Settings, ObjectStore, ImportResult], silver_runs: dict[str, SilverRun]) -> None:
    settings, _, result = imported
    for name, res in result.tables.items():
        acc = silver_runs[name].accounting
        assert acc.balanced and acc.bronze_rows == res.written, name
        assert (acc.silver_rows, acc.quarantined_rows) == (res.written, 0), name
    assert quarantine(settings) == []
    # the published files have no PII and none of the new optional columns: silver fills them with null
    assert ("application", "NATIONAL_ID") in schema_events(silver_runs, "missing_optional_column")
    assert schema_events(silver_runs, "extra_column") == set()


def test_rerun_writes_the_same_landing_keys_and_rows(tmp_path: Path, exported: ExportResult,
                                                     imported: tuple[Settings, ObjectStore, ImportResult]) -> None:
    _, store, first = imported
    _, other = home(tmp_path)
    opts = ImportOptions(exported.out, START, per_hour=PER_HOUR, id_base=exported.id_base, outcome_delay_hours=DELAY)
    second = import_homecredit(opts, other, now=dt.datetime(2030, 1, 1))
    assert second.import_id != first.import_id and second.landing_keys == first.landing_keys

    def content(s: ObjectStore, key: str) -> list[dict[str, Any]]:
        return read_landed(key, s.get_bytes(key))

    assert all(content(store, k) == content(other, k) for k in first.landing_keys)


def test_any_subset_of_the_files_and_gzipped_files(tmp_path: Path, exported: ExportResult,
                                                   imported: tuple[Settings, ObjectStore, ImportResult]) -> None:
    _, full_store, _ = imported
    src = tmp_path / "subset"
    src.mkdir()
    shutil.copy(exported.out / "application_test.csv", src / "application_test.csv")
    with open(exported.out / "bureau.csv", "rb") as fh, gzip.open(src / "bureau.csv.gz", "wb") as gz:
        gz.write(fh.read())
    _, store = home(tmp_path)
    result = import_homecredit(ImportOptions(src, START, per_hour=PER_HOUR, id_base=exported.id_base), store)
    assert list(result.tables) == ["application", "bureau"]  # no application_train.csv: no outcomes
    assert result.tables["application"].written == len(read_csv_rows(src / "application_test.csv"))
    assert result.tables["bureau"].written == exported.files["bureau.csv"]
    # times come from SK_ID_CURR alone: the same as in the full import
    full = {r["SK_ID_CURR"]: r["DECISION_TIME"] for r in landed(full_store, "application")}
    assert all(full[r["SK_ID_CURR"]] == r["DECISION_TIME"] for r in landed(store, "application"))
    assert Counter(r["DATE_CREDIT"] for r in landed(store, "bureau")) == Counter(
        r["DATE_CREDIT"] for r in landed(full_store, "bureau"))


# ------------------------------------------------------------------------------ hand-made edges

def _first_row(path: Path) -> dict[str, str]:
    return {k: v or "" for k, v in read_csv_rows(path)[0].items()}


def test_sentinel_values_invalid_values_pass_through_and_the_label(tmp_path: Path, exported: ExportResult) -> None:
    app = _first_row(exported.out / "application_train.csv")
    header = [*app, "FLAG_DOCUMENT_99"]
    src = tmp_path / "src"
    src.mkdir()
    write_csv(src / "application_train.csv", header, [
        {**app, "SK_ID_CURR": "100001", "DAYS_EMPLOYED": str(SENTINEL_DAYS), "FLAG_DOCUMENT_99": "1", "TARGET": "1"},
        {**app, "SK_ID_CURR": "100002", "NAME_INCOME_TYPE": "Pirate", "FLAG_DOCUMENT_99": "0", "TARGET": "0"},
    ])
    bureau = _first_row(exported.out / "bureau.csv")
    bureau_header = [*bureau, *(c for c in ("DAYS_ENDDATE_FACT", "CREDIT_CURRENCY") if c not in bureau)]
    rows = [
        {"SK_ID_BUREAU": "1", "DAYS_CREDIT_ENDDATE": "365243", "DAYS_ENDDATE_FACT": "365243.0", "DAYS_CREDIT": "-497"},
        {"SK_ID_BUREAU": "2", "DAYS_CREDIT_ENDDATE": "-153.0", "DAYS_CREDIT_UPDATE": "-131"},
        {"SK_ID_BUREAU": "3", "DAYS_CREDIT_ENDDATE": "soon"},  # not a number of days: silver quarantines it
        {"SK_ID_BUREAU": "4", "CREDIT_TYPE": "Spaceship loan"},  # unknown category: silver quarantines it
        {"SK_ID_BUREAU": "5", "AMT_CREDIT_SUM": "lots"},  # bad number: silver quarantines it
        {"SK_ID_BUREAU": "6", "DAYS_CREDIT": "1234567"},  # more days than a credit history has
    ]
    write_csv(src / "bureau.csv", bureau_header,
              [{**bureau, "SK_ID_CURR": "100001", "CREDIT_CURRENCY": "currency 2", **r} for r in rows])
    settings, store = home(tmp_path)
    result = import_homecredit(ImportOptions(src, START, per_hour=PER_HOUR, id_base=100_001), store)
    assert {n: (r.read, r.written, r.rejected_rows) for n, r in result.tables.items()} == {
        "application": (2, 2, 0), "bureau": (6, 6, 0), "loan_outcome": (2, 2, 0)}
    decision = expected_decision(100_001, 100_001)
    apps = {r["SK_ID_CURR"]: r for r in landed(store, "application")}
    assert apps["100001"]["DAYS_EMPLOYED"] == "365243"  # kept raw: the contract's column is the published one
    assert apps["100001"]["FLAG_DOCUMENT_99"] == "1" and "TARGET" not in apps["100001"]  # passed through; label not
    assert set(landed(store, "loan_outcome")[0]) == {"SK_ID_CURR", "TARGET", "OUTCOME_TIME", "_hour"}
    assert result.tables["application"].passed_through == ["FLAG_DOCUMENT_99"]
    got = {r["SK_ID_BUREAU"]: r for r in landed(store, "bureau")}
    assert got["1"]["DATE_CREDIT_ENDDATE"] is None and got["1"]["DATE_ENDDATE_FACT"] is None
    assert got["1"]["DATE_CREDIT"] == str(decision.date() - dt.timedelta(days=497))
    assert got["2"]["DATE_CREDIT_ENDDATE"] == str(decision.date() - dt.timedelta(days=153))
    assert got["2"]["REPORTED_AT"] == f"{decision.date() - dt.timedelta(days=131)}T00:00:00"
    assert got["3"]["DATE_CREDIT_ENDDATE"] == "DAYS_CREDIT_ENDDATE=soon"
    assert got["6"]["DATE_CREDIT"] == "DAYS_CREDIT=1234567"
    assert result.tables["bureau"].sentinel_nulls == {"DATE_CREDIT_ENDDATE": 1, "DATE_ENDDATE_FACT": 1}

    runs = silver(settings, store, result)
    assert all(run.accounting.balanced for run in runs.values())
    reasons = {(t, rule, reason.split(";")[0]) for t, rule, reason in quarantine(settings)}
    assert reasons == {
        ("application", "allowed_values", "allowed_values: NAME_INCOME_TYPE not an allowed value"),
        ("bureau", "type", "type: DATE_CREDIT_ENDDATE is not a valid date"),
        ("bureau", "allowed_values", "allowed_values: CREDIT_TYPE not an allowed value"),
        ("bureau", "type", "type: AMT_CREDIT_SUM is not a valid float"),
        ("bureau", "type", "type: DATE_CREDIT is not a valid date"),
    }
    assert (runs["bureau"].accounting.silver_rows, runs["bureau"].accounting.quarantined_rows) == (2, 4)
    assert ("application", "FLAG_DOCUMENT_99") in schema_events(runs, "extra_column")


def test_rows_that_cannot_be_placed_are_rejected_with_their_reason(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ids = {"100002": None, "": "missing_id", "abc": "bad_id", "100003.5": "bad_id", "-7": "bad_id", "0": "bad_id",
           "99999": "id_below_base", "99999999999999999999": "bad_id", "9000000000000": "id_out_of_range"}
    write_csv(src / "application_train.csv", ["SK_ID_CURR", "TARGET", "AMT_CREDIT"],
              [{"SK_ID_CURR": i, "TARGET": "0", "AMT_CREDIT": "1000.0"} for i in ids])
    write_csv(src / "bureau.csv", ["SK_ID_CURR", "SK_ID_BUREAU", "DAYS_CREDIT"], [
        {"SK_ID_CURR": "100002", "SK_ID_BUREAU": "5000001", "DAYS_CREDIT": "-10"},
        {"SK_ID_CURR": "abc", "SK_ID_BUREAU": "5000002", "DAYS_CREDIT": "-10"},
        {"SK_ID_CURR": "100002", "SK_ID_BUREAU": "5000003", "DAYS_CREDIT": "-10"},
        {"SK_ID_CURR": "100004", "SK_ID_BUREAU": "5000003", "DAYS_CREDIT": "-20"},
        {"SK_ID_CURR": "100004", "SK_ID_BUREAU": "5000004", "DAYS_CREDIT": "-20"},
    ])
    write_csv(src / "bureau_balance.csv", ["SK_ID_BUREAU", "MONTHS_BALANCE", "STATUS"], [
        {"SK_ID_BUREAU": "5000001", "MONTHS_BALANCE": "-1", "STATUS": "C"},
        {"SK_ID_BUREAU": "5000004", "MONTHS_BALANCE": "0", "STATUS": "X"},
        {"SK_ID_BUREAU": "5000002", "MONTHS_BALANCE": "-1", "STATUS": "0"},  # its bureau row is rejected
        {"SK_ID_BUREAU": "5000003", "MONTHS_BALANCE": "-2", "STATUS": "0"},  # two applications own it
        {"SK_ID_BUREAU": "5999999", "MONTHS_BALANCE": "-1", "STATUS": "C"},  # not in bureau.csv
        {"SK_ID_BUREAU": "", "MONTHS_BALANCE": "-1", "STATUS": "C"},
    ])
    _, store = home(tmp_path)
    result = import_homecredit(ImportOptions(src, START, id_base=100_000), store)
    want_app = dict(Counter(r for r in ids.values() if r))
    for name in ("application", "loan_outcome"):
        r = result.tables[name]
        assert (r.read, r.written, r.rejected) == (9, 1, want_app) and r.balanced, name
    b, bb = result.tables["bureau"], result.tables["bureau_balance"]
    assert (b.read, b.written, b.rejected) == (5, 4, {"bad_id": 1})
    assert (bb.read, bb.written, bb.rejected) == (6, 2, {"parent_unplaced": 1, "ambiguous_parent": 1, "orphan": 1,
                                                          "missing_id": 1})
    assert all(r.balanced for r in result.tables.values())
    month = {r["SK_ID_BUREAU"]: r["BALANCE_MONTH"] for r in landed(store, "bureau_balance")}
    assert month == {"5000001": "2026-09-01", "5000004": "2026-10-01"}  # first day of the decision month + months
    rejected = read_landed("x.csv", store.get_bytes(bb.rejected_key))  # type: ignore[arg-type]
    assert list(rejected[0])[:3] == ["reason", "detail", "source_file"]
    orphan = next(r for r in rejected if r["reason"] == "orphan")
    assert orphan["SK_ID_BUREAU"] == "5999999" and orphan["source_file"] == "bureau_balance.csv"
    assert orphan["detail"] == "SK_ID_BUREAU is not in bureau.csv"
    app_rejected = read_landed("x.csv", store.get_bytes(result.tables["application"].rejected_key))  # type: ignore[arg-type]
    assert sorted(r["SK_ID_CURR"] or "" for r in app_rejected) == sorted(i for i, r in ids.items() if r)
    report = json.loads(store.get_bytes(result.report_key))
    assert report["tables"]["bureau_balance"]["rejected"]["orphan"] == 1
    assert report["tables"]["bureau_balance"]["reasons"]["orphan"] == "SK_ID_BUREAU is not in bureau.csv"
    assert all(t["balanced"] for t in report["tables"].values())


# The published headers of the real files (column names only; no real rows are used anywhere).
PUBLISHED = {
    "bureau.csv": "SK_ID_CURR SK_ID_BUREAU CREDIT_ACTIVE CREDIT_CURRENCY DAYS_CREDIT CREDIT_DAY_OVERDUE "
                  "DAYS_CREDIT_ENDDATE DAYS_ENDDATE_FACT AMT_CREDIT_MAX_OVERDUE CNT_CREDIT_PROLONG AMT_CREDIT_SUM "
                  "AMT_CREDIT_SUM_DEBT AMT_CREDIT_SUM_LIMIT AMT_CREDIT_SUM_OVERDUE CREDIT_TYPE DAYS_CREDIT_UPDATE "
                  "AMT_ANNUITY",
    "bureau_balance.csv": "SK_ID_BUREAU MONTHS_BALANCE STATUS",
    "previous_application.csv": "SK_ID_PREV SK_ID_CURR NAME_CONTRACT_TYPE AMT_ANNUITY AMT_APPLICATION AMT_CREDIT "
                                "AMT_DOWN_PAYMENT AMT_GOODS_PRICE WEEKDAY_APPR_PROCESS_START HOUR_APPR_PROCESS_START "
                                "FLAG_LAST_APPL_PER_CONTRACT NFLAG_LAST_APPL_IN_DAY RATE_DOWN_PAYMENT "
                                "RATE_INTEREST_PRIMARY RATE_INTEREST_PRIVILEGED NAME_CASH_LOAN_PURPOSE "
                                "NAME_CONTRACT_STATUS DAYS_DECISION NAME_PAYMENT_TYPE CODE_REJECT_REASON NAME_TYPE_SUITE "
                                "NAME_CLIENT_TYPE NAME_GOODS_CATEGORY NAME_PORTFOLIO NAME_PRODUCT_TYPE CHANNEL_TYPE "
                                "SELLERPLACE_AREA NAME_SELLER_INDUSTRY CNT_PAYMENT NAME_YIELD_GROUP PRODUCT_COMBINATION "
                                "DAYS_FIRST_DRAWING DAYS_FIRST_DUE DAYS_LAST_DUE_1ST_VERSION DAYS_LAST_DUE "
                                "DAYS_TERMINATION NFLAG_INSURED_ON_APPROVAL",
    "installments_payments.csv": "SK_ID_PREV SK_ID_CURR NUM_INSTALMENT_VERSION NUM_INSTALMENT_NUMBER DAYS_INSTALMENT "
                                 "DAYS_ENTRY_PAYMENT AMT_INSTALMENT AMT_PAYMENT",
    "credit_card_balance.csv": "SK_ID_PREV SK_ID_CURR MONTHS_BALANCE AMT_BALANCE AMT_CREDIT_LIMIT_ACTUAL "
                               "AMT_DRAWINGS_ATM_CURRENT AMT_DRAWINGS_CURRENT AMT_DRAWINGS_OTHER_CURRENT "
                               "AMT_DRAWINGS_POS_CURRENT AMT_INST_MIN_REGULARITY AMT_PAYMENT_CURRENT "
                               "AMT_PAYMENT_TOTAL_CURRENT AMT_RECEIVABLE_PRINCIPAL AMT_RECIVABLE AMT_TOTAL_RECEIVABLE "
                               "CNT_DRAWINGS_ATM_CURRENT CNT_DRAWINGS_CURRENT CNT_DRAWINGS_OTHER_CURRENT "
                               "CNT_DRAWINGS_POS_CURRENT CNT_INSTALMENT_MATURE_CUM NAME_CONTRACT_STATUS SK_DPD SK_DPD_DEF",
}
CREDIT_TYPES = ["Consumer credit", "Credit card", "Car loan", "Mortgage", "Microloan", "Loan for business development",
                "Another type of loan", "Unknown type of loan", "Loan for working capital replenishment",
                "Cash loan (non-earmarked)", "Real estate loan", "Loan for the purchase of equipment",
                "Loan for purchase of shares (margin lending)", "Mobile operator loan", "Interbank credit"]


def _fabricated(column: str) -> str:
    """A made-up, valid-looking value in the published files' style (decimals where they write 1.0)."""
    if column.startswith("SK_ID"):
        return {"SK_ID_CURR": "100001", "SK_ID_BUREAU": "5000001", "SK_ID_PREV": "2000001"}[column]
    if column.startswith(("DAYS_", "MONTHS_")):
        return "-30" if column in ("DAYS_CREDIT", "DAYS_DECISION", "MONTHS_BALANCE", "DAYS_CREDIT_UPDATE") else "-30.0"
    fixed = {"CREDIT_ACTIVE": "Closed", "CREDIT_CURRENCY": "currency 1", "CREDIT_TYPE": "Consumer credit",
             "STATUS": "X", "NAME_CONTRACT_TYPE": "Consumer loans", "WEEKDAY_APPR_PROCESS_START": "SATURDAY",
             "FLAG_LAST_APPL_PER_CONTRACT": "Y", "NAME_CASH_LOAN_PURPOSE": "XAP", "NAME_CONTRACT_STATUS": "Approved",
             "NAME_PAYMENT_TYPE": "Cash through the bank", "CODE_REJECT_REASON": "XAP",
             "NAME_TYPE_SUITE": "Spouse, partner", "NAME_CLIENT_TYPE": "Repeater", "NAME_GOODS_CATEGORY": "Mobile",
             "NAME_PORTFOLIO": "POS", "NAME_PRODUCT_TYPE": "XNA", "CHANNEL_TYPE": "Country-wide",
             "NAME_SELLER_INDUSTRY": "Connectivity", "NAME_YIELD_GROUP": "middle",
             "PRODUCT_COMBINATION": "POS mobile with interest", "HOUR_APPR_PROCESS_START": "15",
             "NFLAG_LAST_APPL_IN_DAY": "1", "SELLERPLACE_AREA": "35", "CNT_PAYMENT": "12.0",
             "NUM_INSTALMENT_NUMBER": "6", "NUM_INSTALMENT_VERSION": "1.0", "CREDIT_DAY_OVERDUE": "0",
             "CNT_CREDIT_PROLONG": "0", "SK_DPD": "0", "SK_DPD_DEF": "0", "CNT_DRAWINGS_CURRENT": "1",
             "RATE_DOWN_PAYMENT": "0.1", "RATE_INTEREST_PRIMARY": "0.18", "RATE_INTEREST_PRIVILEGED": "0.86",
             "NFLAG_INSURED_ON_APPROVAL": "0.0"}
    if column in fixed:
        return fixed[column]
    return "1.0" if column.startswith("CNT_") else "1234.5"


def test_the_published_headers_are_classified_and_real_extremes_pass(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    variants: dict[str, list[dict[str, str]]] = {
        "bureau.csv": [{"CREDIT_TYPE": t} for t in CREDIT_TYPES] + [
            {"AMT_CREDIT_SUM_DEBT": "-4705600.32", "AMT_CREDIT_SUM_LIMIT": "-586406.11", "AMT_CREDIT_SUM": "",
             "CREDIT_ACTIVE": "Bad debt", "CREDIT_CURRENCY": "currency 4", "DAYS_CREDIT_ENDDATE": "-42060.0",
             "DAYS_CREDIT_UPDATE": "372", "CREDIT_DAY_OVERDUE": "2792"}],
        "bureau_balance.csv": [{"MONTHS_BALANCE": str(-m), "STATUS": s} for m, s in enumerate("C X 0 1 2 3 4 5".split())],
        "previous_application.csv": [{"NAME_CONTRACT_TYPE": t} for t in ("Consumer loans", "Cash loans",
                                                                         "Revolving loans", "XNA")] + [
            {"AMT_DOWN_PAYMENT": "-0.9", "RATE_DOWN_PAYMENT": "-1.5e-05", "DAYS_FIRST_DRAWING": "365243.0",
             "DAYS_TERMINATION": "365243.0", "NAME_CONTRACT_STATUS": "Unused offer", "NAME_PORTFOLIO": "Cars",
             "PRODUCT_COMBINATION": "", "CODE_REJECT_REASON": "SCOFR", "CHANNEL_TYPE": "AP+ (Cash loan)"}],
        "installments_payments.csv": [{"NUM_INSTALMENT_NUMBER": str(n)} for n in (1, 2, 277)] + [
            {"NUM_INSTALMENT_NUMBER": "3", "DAYS_ENTRY_PAYMENT": "", "AMT_PAYMENT": "", "NUM_INSTALMENT_VERSION": "0.0"},
            {"NUM_INSTALMENT_NUMBER": "3", "AMT_PAYMENT": "17.5"}],  # a partial payment of instalment 3
        "credit_card_balance.csv": [{"MONTHS_BALANCE": str(-m), "NAME_CONTRACT_STATUS": s} for m, s in enumerate(
            ["Active", "Completed", "Signed", "Demand", "Sent proposal", "Refused", "Approved"], start=1)] + [
            {"MONTHS_BALANCE": "-96", "AMT_DRAWINGS_CURRENT": "-6211.62", "AMT_DRAWINGS_ATM_CURRENT": "-6827.31",
             "AMT_BALANCE": "-420250.18", "AMT_RECEIVABLE_PRINCIPAL": "-423305.82", "AMT_RECIVABLE": "-420250.18",
             "AMT_TOTAL_RECEIVABLE": "-420250.18", "SK_DPD": "3260", "SK_DPD_DEF": "3260",
             "CNT_INSTALMENT_MATURE_CUM": "120.0"}],
    }
    for file, header in PUBLISHED.items():
        columns = header.split()
        base = {c: _fabricated(c) for c in columns}
        rows = [{**base, **v} for v in variants[file]]
        if file == "bureau.csv":  # one bureau credit per row
            rows = [{**r, "SK_ID_BUREAU": str(5_000_001 + i)} for i, r in enumerate(rows)]
        if file == "previous_application.csv":
            rows = [{**r, "SK_ID_PREV": str(2_000_001 + i)} for i, r in enumerate(rows)]
        write_csv(src / file, columns, rows)
    settings, store = home(tmp_path)
    result = import_homecredit(ImportOptions(src, START, id_base=100_000), store)
    assert all(r.rejected_rows == 0 and r.balanced for r in result.tables.values())
    runs = silver(settings, store, result)
    assert all(run.accounting.balanced for run in runs.values())
    # every published column is classified by the contracts: nothing is left as an unexpected column
    assert schema_events(runs, "extra_column") == set()
    assert schema_events(runs, "missing_optional_column") == set()
    # the only quarantined row is the documented one: a partial payment repeats (SK_ID_PREV, NUM_INSTALMENT_NUMBER)
    assert [(t, rule) for t, rule, _ in quarantine(settings)] == [("installments_payments", "duplicate_key")]
    coerced = {(t, c) for t, c in schema_events(runs, "type_coerced")}
    assert coerced == {("previous_application", "CNT_PAYMENT")}  # 12.0, read losslessly as the int 12


# ------------------------------------------------------------------------------ CLIs

def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_import_cli_errors_are_one_line_naming_what_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path / "home"))
    assert main(["--source", str(tmp_path / "nowhere"), "--no-progress"]) == 2
    assert "no such folder" in _one_line_error(capsys)
    (tmp_path / "home-credit-default-risk.zip").write_bytes(b"PK\x03\x04")
    assert main(["--source", str(tmp_path / "home-credit-default-risk.zip")]) == 2
    assert "zip archive: unzip it" in _one_line_error(capsys)
    assert main(["--source", str(tmp_path)]) == 2
    assert "unzip home-credit-default-risk.zip" in _one_line_error(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hi")
    assert main(["--source", str(empty)]) == 2
    err = _one_line_error(capsys)
    assert "none of the Home Credit files" in err and "application_train.csv" in err and "bureau_balance.csv" in err
    (empty / "bureau_balance.csv").write_text("SK_ID_BUREAU,MONTHS_BALANCE,STATUS\n5000001,-1,C\n")
    assert main(["--source", str(empty)]) == 2
    assert "bureau_balance.csv needs bureau.csv" in _one_line_error(capsys)
    assert main(["--source", str(empty), "--tables", "bureau"]) == 2
    assert "bureau.csv is not in the source folder" in _one_line_error(capsys)
    assert main(["--source", str(empty), "--tables", "nope"]) == 2
    assert "expected a comma-separated subset" in _one_line_error(capsys)
    assert main(["--source", str(empty), "--per-hour", "0"]) == 2
    assert "--per-hour 0" in _one_line_error(capsys)
    assert main(["--source", str(empty), "--start", "2026-10-01T00:30"]) == 2
    assert "on the hour" in _one_line_error(capsys)
    (empty / "bureau_balance.csv").unlink()
    (empty / "bureau.csv").write_text("")  # an empty file: not a CSV
    assert main(["--source", str(empty)]) == 2
    assert "bureau.csv is empty" in _one_line_error(capsys)
    (empty / "bureau.csv").write_text("SK_ID_BUREAU,DAYS_CREDIT,days_credit\n5000001,-1,-1\n")
    assert main(["--source", str(empty)]) == 2
    assert "column DAYS_CREDIT, days_credit appears twice" in _one_line_error(capsys)
    (empty / "bureau.csv").write_text("SK_ID_BUREAU,DAYS_CREDIT\n5000001,-1\n")
    assert main(["--source", str(empty)]) == 2
    assert "bureau.csv has no SK_ID_CURR column" in _one_line_error(capsys)
    (empty / "bureau.csv").write_text("SK_ID_CURR,SK_ID_BUREAU\n100001,5000001\n100002,5000002,x,y\n")
    (empty / "bureau_balance.csv").write_text("SK_ID_BUREAU,MONTHS_BALANCE,STATUS\n5000001,-1,C\n")
    for tables in ([], ["--tables", "bureau_balance"]):  # a malformed file fails before anything lands
        assert main(["--source", str(empty), *tables]) == 2
        assert "bureau.csv: not a readable CSV" in _one_line_error(capsys)
    assert not any((tmp_path / "home").rglob("landing"))  # nothing landed by a failed import


def test_cli_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CREDITRISK_OBJECT_STORE", raising=False)
    monkeypatch.delenv("CREDITRISK_STORE_ROOT", raising=False)
    out = tmp_path / "kaggle"
    assert simulate_main(["--format", "homecredit", "--out", str(out), "--hours", "2", "--rows-per-hour", "10",
                          "--outcome-delay-hours", "1", "--tables", "application,loan_outcome,bureau",
                          "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "application_train.csv=" in lines[0] and "bureau.csv=" in lines[0]
    command = lines[-1].removeprefix("import with: creditrisk import homecredit ").split()
    assert sorted(p.name for p in out.iterdir()) == ["application_test.csv", "application_train.csv", "bureau.csv",
                                                     TRUTH_FILE]
    assert main([*command, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "application (application_train.csv, application_test.csv): read 20 · written 20 · rejected 0" in printed
    report_path = Path(printed.strip().splitlines()[-1].removeprefix("report: "))
    report = json.loads(report_path.read_text())
    assert report["options"]["id_base"] == 100_001 and report["options"]["outcome_delay_hours"] == 1
    assert all(t["balanced"] for t in report["tables"].values())
    store = FolderStore(tmp_path / "home" / "objectstore")
    assert len(store.list("landing/application/")) == 2  # the simulator's two hours


def test_simulate_cli_homecredit_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path / "home"))
    assert simulate_main(["--format", "homecredit", "--no-progress"]) == 2
    assert "needs --out DIR" in _one_line_error(capsys)
    assert simulate_main(["--format", "homecredit", "--out", str(tmp_path / "o"), "--anomaly", "empty_file=0.5"]) == 2
    assert "drop --anomaly" in _one_line_error(capsys)
    assert simulate_main(["--format", "homecredit", "--out", str(tmp_path / "o"), "--tables", "loan_outcome"]) == 2
    assert "add application to --tables" in _one_line_error(capsys)
    assert simulate_main(["--out", str(tmp_path / "o")]) == 2
    assert "--out is for --format homecredit" in _one_line_error(capsys)


def test_options_are_validated() -> None:
    with pytest.raises(HomeCreditError, match="must be within 1..3599"):
        ImportOptions(Path("."), START, per_hour=3600)
    with pytest.raises(HomeCreditError, match="--id-base -1"):
        ImportOptions(Path("."), START, id_base=-1)
    with pytest.raises(HomeCreditError, match="on the hour"):
        ImportOptions(Path("."), START.replace(minute=5))
    a = ImportOptions(Path("."), START).import_id(dt.datetime(2026, 10, 1, 12))
    b = ImportOptions(Path("."), START, per_hour=10).import_id(dt.datetime(2026, 10, 1, 12))
    assert a.startswith("20261001T120000Z-") and a != b

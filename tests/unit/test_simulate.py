"""The data simulator: determinism, ground truth, point-in-time history, outcomes, anomalies, drift, CLI."""

from __future__ import annotations

import ast
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import creditrisk_assets.simulate as simulate_package
from creditrisk_assets.contracts import TABLE_NAMES, TABLES
from creditrisk_assets.layout import parse_landing_key
from creditrisk_assets.resources import FolderStore, ObjectStore
from creditrisk_assets.simulate import (
    ANOMALY_KINDS,
    DRIFT_SCENARIOS,
    SimulationConfig,
    bayes_optimal_auc,
    simulate,
)
from creditrisk_assets.simulate.cli import main

START = dt.datetime(2026, 10, 1)
ACTIVITY = ("bureau", "bureau_balance", "previous_application", "installments_payments", "credit_card_balance",
            "pos_cash_balance")


# ------------------------------------------------------------------------------ helpers

def read_landed(store: ObjectStore, key: str) -> pd.DataFrame:
    """A clean landed file as text columns (independent of the simulator's own code)."""
    data = store.get_bytes(key)
    if key.endswith(".gz"):
        data = gzip.decompress(data)
    if key.endswith((".parquet", ".parquet.gz")):
        return pq.read_table(io.BytesIO(data)).to_pandas()
    if ".csv" in key:
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[""])
    return pd.DataFrame([json.loads(line) for line in data.decode("utf-8").splitlines()])


def load_table(store: ObjectStore, table: str) -> pd.DataFrame:
    frames = []
    for o in store.list(f"landing/{table}/"):
        frame = read_landed(store, o.key)
        frame["_hour"] = int((parse_landing_key(o.key)[1] - START).total_seconds() // 3600)  # type: ignore[index]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def manifest_of(store: ObjectStore, run: str = "default") -> dict:
    return json.loads(store.get_bytes(f"oracle/{run}/manifest.json"))


def truth_of(store: ObjectStore, run: str = "default") -> pd.DataFrame:
    return pq.read_table(io.BytesIO(store.get_bytes(f"oracle/{run}/truth.parquet"))).to_pandas()


def digests(store: ObjectStore) -> dict[str, str]:
    return {o.key: hashlib.sha256(store.get_bytes(o.key)).hexdigest() for o in store.list("")}


def brute_force_auc(p: np.ndarray) -> float:
    num = den = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if i == j:
                continue
            w = p[i] * (1 - p[j])
            den += w
            num += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    return num / den


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[FolderStore, SimulationConfig]:
    store = FolderStore(tmp_path_factory.mktemp("clean"))
    cfg = SimulationConfig(start="2026-10-01T00:00", hours=24, rows_per_hour=150, seed=7)
    simulate(cfg, store)
    return store, cfg


@pytest.fixture(scope="module")
def frames(clean_run: tuple[FolderStore, SimulationConfig]) -> dict[str, pd.DataFrame]:
    store, _ = clean_run
    return {t: load_table(store, t) for t in TABLE_NAMES}


# ------------------------------------------------------------------------- bayes AUC

@pytest.mark.parametrize("seed", range(6))
def test_bayes_optimal_auc_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.5, 4.0, size=int(rng.integers(2, 60)))
    if seed % 2:
        p = np.round(p, 1)  # many ties
    assert bayes_optimal_auc(p) == pytest.approx(brute_force_auc(p), abs=1e-12)


def test_bayes_optimal_auc_edge_cases() -> None:
    assert bayes_optimal_auc(np.full(10, 0.3)) == pytest.approx(0.5)
    assert bayes_optimal_auc(np.array([0.0, 0.0, 1.0, 1.0])) == pytest.approx(1.0)
    assert bayes_optimal_auc(np.array([0.1, 0.9])) == pytest.approx(0.81 / (0.81 + 0.01))
    big = np.random.default_rng(0).beta(1, 10, 200_000)
    assert 0.5 < bayes_optimal_auc(big) < 1.0  # O(n log n): instant on 200k


# ----------------------------------------------------------------------- determinism

def test_same_seed_gives_byte_identical_files_and_other_seed_differs(tmp_path: Path) -> None:
    anomalies = {k: 0.2 for k in ANOMALY_KINDS}
    runs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        store = FolderStore(tmp_path / name)
        simulate(SimulationConfig(hours=4, rows_per_hour=40, seed=seed, anomalies=anomalies), store)
        runs.append(digests(store))
    assert runs[0] == runs[1]
    assert len(runs[0]) > 20
    assert sum("landing/pos_cash_balance/" in k for k in runs[0]) == 4  # the eighth table, every hour
    common = set(runs[0]) & set(runs[2])
    assert all(runs[0][k] != runs[2][k] for k in common if "/landing/" in f"/{k}")


def test_only_landing_files_and_oracle_are_written(clean_run: tuple[FolderStore, SimulationConfig]) -> None:
    store, cfg = clean_run
    keys = [o.key for o in store.list("")]
    landing = [k for k in keys if k.startswith("landing/")]
    assert sorted(set(keys) - set(landing)) == ["oracle/default/manifest.json", "oracle/default/truth.parquet"]
    for key in landing:
        table, hour = parse_landing_key(key)  # type: ignore[misc]
        assert key.endswith("/part-00000." + TABLES[table].landing_format)
        assert START <= hour < START + dt.timedelta(hours=cfg.hours)
    assert {parse_landing_key(k)[0] for k in landing} == set(TABLE_NAMES)  # type: ignore[index]
    assert len(TABLE_NAMES) == 8 and "pos_cash_balance" in TABLE_NAMES


# ----------------------------------------------------------------- manifest and truth

def test_manifest_truth_and_counts(clean_run: tuple[FolderStore, SimulationConfig],
                                   frames: dict[str, pd.DataFrame]) -> None:
    store, cfg = clean_run
    m = manifest_of(store)
    truth = truth_of(store)
    assert m["seed"] == 7 and m["config"]["hours"] == 24 and m["pd_formula"]
    assert 0.7 < m["bayes_optimal_auc"]["overall"] < 0.9
    assert m["bayes_optimal_auc"]["overall"] == pytest.approx(bayes_optimal_auc(truth["TRUE_PD"].to_numpy()))
    assert len(truth) == cfg.hours * cfg.rows_per_hour and truth["SK_ID_CURR"].is_unique
    assert list(truth.columns) == ["SK_ID_CURR", "DECISION_TIME", "hour", "TRUE_PD", "TARGET", "drifted"]
    assert 0.065 < truth["TRUE_PD"].mean() < 0.095
    assert 0.06 < truth["TARGET"].mean() < 0.10
    assert m["base_default_rate"]["overall"]["mean_true_pd"] == pytest.approx(truth["TRUE_PD"].mean())
    # outcomes follow the PD: defaulters have a much higher mean PD
    assert truth.loc[truth.TARGET == 1, "TRUE_PD"].mean() > 2 * truth.loc[truth.TARGET == 0, "TRUE_PD"].mean()
    for table, per_hour in m["counts"].items():
        landed = frames[table].groupby("_hour").size()
        assert {(START + dt.timedelta(hours=int(h))).strftime("%Y-%m-%d-%H:%M"): int(n)
                for h, n in landed.items()} == per_hour, table
    assert sum(f["rows"] for f in m["files"]) == sum(len(f) for f in frames.values())
    assert m["tables"] == list(TABLE_NAMES) and m["rows"]["pos_cash_balance"] == len(frames["pos_cash_balance"]) > 0
    assert m["anomalies"] == []
    # volumes: ~100-150 activity rows per application
    per_app = sum(len(frames[t]) for t in ACTIVITY) / len(frames["application"])
    assert 90 < per_app < 160, per_app


def test_application_columns_are_realistic(frames: dict[str, pd.DataFrame]) -> None:
    app = frames["application"]
    assert app["SK_ID_CURR"].astype(int).is_unique and app["NATIONAL_ID"].is_unique
    assert app["NATIONAL_ID"].str.fullmatch(r"[A-Z]{2}\d{6}[A-D]").all()
    assert (~app["FULL_NAME"].map(str.isascii)).mean() > 0.1  # non-ASCII names are common
    assert app["EMAIL"].dropna().map(str.isascii).all() and app["EMAIL"].dropna().str.contains("@").all()
    decision = pd.to_datetime(app["DECISION_TIME"], format="%Y-%m-%dT%H:%M:%S")
    born = pd.to_datetime(app["DATE_OF_BIRTH"], format="%Y-%m-%d")
    age = decision.dt.year - born.dt.year - ((decision.dt.month * 100 + decision.dt.day)
                                            < (born.dt.month * 100 + born.dt.day))
    assert age.between(21, 70).all()
    assert (decision.dt.floor("h") == START + pd.to_timedelta(app["_hour"], unit="h")).all()
    missing = {c: app[c].isna().mean() for c in ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3")}
    assert 0.45 < missing["EXT_SOURCE_1"] < 0.55 and missing["EXT_SOURCE_2"] < 0.01
    assert 0.16 < missing["EXT_SOURCE_3"] < 0.24
    sentinel = app["DAYS_EMPLOYED"].astype(int) == 365243
    assert 0.05 < sentinel.mean() < 0.35
    assert set(app.loc[sentinel, "NAME_INCOME_TYPE"]) <= {"Pensioner", "Unemployed"}
    income, credit = app["AMT_INCOME_TOTAL"].astype(float), app["AMT_CREDIT"].astype(float)
    assert np.corrcoef(np.log(income), np.log(credit))[0, 1] > 0.3
    goods = app["AMT_GOODS_PRICE"].astype(float)
    assert np.corrcoef(credit[goods.notna()], goods.dropna())[0, 1] > 0.95


def test_files_carry_every_contract_column_but_unsimulated_drop_ones(
        clean_run: tuple[FolderStore, SimulationConfig], frames: dict[str, pd.DataFrame]) -> None:
    store, _ = clean_run
    m = manifest_of(store)
    for table, contract in TABLES.items():
        written = [c for c in frames[table].columns if c != "_hour"]
        absent = m["columns_not_simulated"].get(table, {}).get("absent", [])
        assert written == [c for c in contract.column_names if c not in absent], table
        assert all(contract.column(c).role == "drop" for c in absent), table
        for name in m["columns_not_simulated"].get(table, {}).get("null", []):
            assert not contract.column(name).required and frames[table][name].isna().all(), (table, name)
    app = TABLES["application"]
    features = [c.name for c in app.columns if c.role == "feature"]
    assert set(features) <= set(frames["application"].columns)
    assert not m["columns_not_simulated"].get("application", {}).get("null")  # every application feature simulated
    assert {"FULL_NAME", "ADDRESS"} <= set(frames["application"].columns)  # drop columns it does simulate: PII


def test_extra_application_columns_are_plausible(frames: dict[str, pd.DataFrame]) -> None:
    app = frames["application"]
    decision = pd.to_datetime(app["DECISION_TIME"]).dt.normalize()
    born = pd.to_datetime(app["DATE_OF_BIRTH"])
    for col, years in (("DATE_REGISTRATION", 70), ("DATE_ID_PUBLISH", 20), ("DATE_LAST_PHONE_CHANGE", 12)):
        date = pd.to_datetime(app[col])
        days = (decision - date).dt.days.dropna()
        assert (days >= 0).all() and days.max() < years * 365.25 and (date.dropna() > born[date.notna()]).all(), col
        assert days.median() > 100, col
    assert ((pd.to_datetime(app["DATE_LAST_PHONE_CHANGE"]) == decision).mean()) > 0.05  # changed on the day: common
    car = pd.to_numeric(app["OWN_CAR_AGE"])
    assert (car.notna() == (app["FLAG_OWN_CAR"] == "Y")).all() and car.dropna().between(0, 91).all()
    employed = app["DAYS_EMPLOYED"].astype(int) != 365243
    assert (app["FLAG_EMP_PHONE"].astype(int) == employed).all()
    assert (app.loc[~employed, ["FLAG_WORK_PHONE", "REG_CITY_NOT_WORK_CITY"]].astype(int) == 0).all().all()
    family = pd.to_numeric(app["CNT_FAM_MEMBERS"])
    assert (family.dropna() >= 1 + app.loc[family.notna(), "CNT_CHILDREN"].astype(int)).all()
    hour = app["HOUR_APPR_PROCESS_START"].astype(int)
    assert hour.between(0, 23).all() and hour.nunique() == 24
    for col, share in (("FLAG_DOCUMENT_3", (0.65, 0.77)), ("REG_CITY_NOT_LIVE_CITY", (0.04, 0.12)),
                       ("FLAG_WORK_PHONE", (0.15, 0.28))):
        assert share[0] < app[col].astype(int).mean() < share[1], col
    assert 0.4 < app["TOTALAREA_MODE"].isna().mean() < 0.56 and 0.1 < app["AMT_REQ_CREDIT_BUREAU_YEAR"].isna().mean() < 0.17
    obs, d30, d60 = (pd.to_numeric(app[c]) for c in ("OBS_30_CNT_SOCIAL_CIRCLE", "DEF_30_CNT_SOCIAL_CIRCLE",
                                                       "DEF_60_CNT_SOCIAL_CIRCLE"))
    assert (((d60 <= d30) & (d30 <= obs)) | obs.isna()).all()
    rating, city = app["REGION_RATING_CLIENT"].astype(int), app["REGION_RATING_CLIENT_W_CITY"].astype(int)
    assert ((city == rating) | (city == rating - 1)).all() and (city == rating).mean() > 0.85
    population = pd.to_numeric(app["REGION_POPULATION_RELATIVE"])
    assert population.groupby(rating).median().is_monotonic_decreasing
    assert app["NAME_TYPE_SUITE"].value_counts(normalize=True).index[0] == "Unaccompanied"


def _numeric(frame: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(frame[col])


def recompute_pd(f: dict[str, pd.DataFrame]) -> pd.Series:
    """TRUE_PD recomputed from the landed rows dated before each decision (the documented formula)."""
    app = f["application"].copy()
    app["SK_ID_CURR"] = app["SK_ID_CURR"].astype(int)
    app = app.set_index("SK_ID_CURR")
    decision = pd.to_datetime(app["DECISION_TIME"])
    e1, e2, e3 = (_numeric(app, f"EXT_SOURCE_{i}") for i in (1, 2, 3))
    s = np.where(e2.isna(), 0.35, -2.6 * (e2 - 0.55)) + np.where(e3.isna(), 0.30, -2.4 * (e3 - 0.52))
    s += np.where(e1.isna(), 0.05, -1.2 * (e1 - 0.5))
    s += np.where(e2.notna() & e3.notna(), 3.0 * np.maximum(0, 0.30 - np.fmin(e2, e3)), 0)
    income, credit, annuity = (_numeric(app, c) for c in ("AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY"))
    lev = np.log(credit / income)
    s += 0.3 * lev + np.where(annuity.isna(), 0, 1.5 * np.maximum(0, annuity / income - 0.4))
    age = (decision.dt.normalize() - pd.to_datetime(app["DATE_OF_BIRTH"])).dt.days / 365.25
    s += -0.012 * (age - 45) + 0.5 * np.maximum(0, (30 - age) / 10)
    days = _numeric(app, "DAYS_EMPLOYED")
    s += np.where(days == 365243, np.where(age < 55, 0.45, 0), -0.05 * np.minimum(-days / 365.25, 15))
    s += 0.2 * (_numeric(app, "REGION_RATING_CLIENT") - 2)

    def per_app(series: pd.Series, fill: float = 0) -> pd.Series:
        return series.reindex(app.index).fillna(fill)

    b = f["bureau"]
    overdue = per_app(b[_numeric(b, "CREDIT_DAY_OVERDUE") > 0].groupby(b["SK_ID_CURR"].astype(int)).size())
    bb = f["bureau_balance"].merge(b[["SK_ID_BUREAU", "SK_ID_CURR"]].astype(int), on="SK_ID_BUREAU")
    bucket = pd.to_numeric(bb["STATUS"].where(bb["STATUS"].isin(list("12345")), "0"))
    worst = per_app(bucket.groupby(bb["SK_ID_CURR"]).max()).astype(int)
    s += 0.45 * np.minimum(overdue, 3) + np.array([0, .2, .45, .7, .95, 1.2])[worst] + np.where(overdue > 0, 0.25 * lev, 0)

    prev = f["previous_application"]
    n_prev = per_app(prev.groupby(prev["SK_ID_CURR"].astype(int)).size())
    refused = per_app((prev["NAME_CONTRACT_STATUS"] == "Refused").groupby(prev["SK_ID_CURR"].astype(int)).sum())
    s += np.where(n_prev > 0, refused / n_prev.clip(lower=1), 0.15)

    inst = f["installments_payments"].copy()
    inst = inst[pd.to_datetime(inst["PAYMENT_DATE"]) < inst["SK_ID_CURR"].map(decision)]
    late = pd.to_datetime(inst["PAYMENT_DATE"]) > pd.to_datetime(inst["DUE_DATE"])
    n_inst = per_app(inst.groupby("SK_ID_CURR").size())
    n_late = per_app(late.groupby(inst["SK_ID_CURR"]).sum())
    s += np.where(n_inst > 0, 2.0 * np.sqrt(n_late / n_inst.clip(lower=1)), 0.10)

    cc = f["credit_card_balance"].copy()
    cc["SK_ID_CURR"] = cc["SK_ID_CURR"].astype(int)
    cc = cc[pd.to_datetime(cc["BALANCE_MONTH"]) < cc["SK_ID_CURR"].map(decision)]
    last = cc.sort_values("BALANCE_MONTH").groupby("SK_ID_PREV").tail(1)
    util = (_numeric(last, "AMT_BALANCE") / _numeric(last, "AMT_CREDIT_LIMIT_ACTUAL")).groupby(last["SK_ID_CURR"]).mean()
    u = per_app(util, np.nan)
    s += np.where(u.notna(), 0.9 * u.fillna(0) + np.maximum(0, u.fillna(0) - 0.9), 0)
    return pd.Series(1 / (1 + np.exp(-(-3.33 + 0.55 * s))), index=app.index)


def test_true_pd_is_the_documented_function_of_landed_history(clean_run: tuple[FolderStore, SimulationConfig],
                                                             frames: dict[str, pd.DataFrame]) -> None:
    store, _ = clean_run
    truth = truth_of(store).set_index("SK_ID_CURR")["TRUE_PD"]
    recomputed = recompute_pd(frames)
    np.testing.assert_allclose(recomputed.loc[truth.index].to_numpy(), truth.to_numpy(), rtol=0, atol=1e-9)


def test_gender_is_not_in_the_pd(clean_run: tuple[FolderStore, SimulationConfig],
                                 frames: dict[str, pd.DataFrame]) -> None:
    store, _ = clean_run
    truth = truth_of(store).set_index("SK_ID_CURR")
    gender = frames["application"].set_index(frames["application"]["SK_ID_CURR"].astype(int))["CODE_GENDER"]
    by = truth["TRUE_PD"].groupby(gender.reindex(truth.index)).mean()
    assert abs(by["F"] - by["M"]) < 0.01


# ----------------------------------------------------------------- point in time

def test_history_is_before_the_decision_except_marked_post_decision_rows(
        clean_run: tuple[FolderStore, SimulationConfig], frames: dict[str, pd.DataFrame]) -> None:
    store, cfg = clean_run
    m = manifest_of(store)
    app = frames["application"]
    decision = pd.to_datetime(app["DECISION_TIME"]).set_axis(app["SK_ID_CURR"].astype(int))
    app_hour = app["_hour"].set_axis(app["SK_ID_CURR"].astype(int))
    owner_of_bureau = frames["bureau"].set_index(frames["bureau"]["SK_ID_BUREAU"].astype(int))["SK_ID_CURR"].astype(int)
    first_post, last_post = m["post_decision"]["sk_id_prev_range"]
    for table in ACTIVITY:
        frame = frames[table]
        owner = (frame["SK_ID_BUREAU"].astype(int).map(owner_of_bureau) if table == "bureau_balance"
                 else frame["SK_ID_CURR"].astype(int))
        event = pd.to_datetime(frame[TABLES[table].event_time])
        is_post = (frame["SK_ID_PREV"].astype(int).between(first_post, last_post) if "SK_ID_PREV" in frame
                   else pd.Series(False, index=frame.index))
        before = event < owner.map(decision)
        assert before[~is_post].all(), table
        assert not before[is_post].any(), table
        assert (frame.loc[~is_post, "_hour"] == owner[~is_post].map(app_hour)).all(), table  # same hour
        lag = frame.loc[is_post, "_hour"] - owner[is_post].map(app_hour)
        assert lag.between(1, 6).all(), table
        if table in m["post_decision"]["rows_written"]:
            assert int(is_post.sum()) == m["post_decision"]["rows_written"][table] > 0
    # history goes back years, not days
    dates = pd.to_datetime(frames["previous_application"]["DECISION_DATE"])
    assert (START - dates).dt.days.max() > 3 * 365
    assert 0.2 < m["post_decision"]["applicants"] / (cfg.hours * cfg.rows_per_hour) < 0.4


def test_pos_cash_months_follow_the_previous_loans(clean_run: tuple[FolderStore, SimulationConfig],
                                                   frames: dict[str, pd.DataFrame]) -> None:
    store, _ = clean_run
    pos = frames["pos_cash_balance"].sort_values(["SK_ID_PREV", "BALANCE_MONTH"], key=lambda c: c.astype(
        int if c.name == "SK_ID_PREV" else str)).reset_index(drop=True)
    prev = frames["previous_application"].set_index(frames["previous_application"]["SK_ID_PREV"].astype(int))
    ids = pos["SK_ID_PREV"].astype(int)
    eligible = prev[(prev["NAME_CONTRACT_STATUS"] == "Approved") & (prev["NAME_CONTRACT_TYPE"] != "Revolving loans")]
    assert set(ids) == set(eligible.index)  # every approved cash / consumer loan, nothing else
    assert (pos["SK_ID_CURR"].astype(int) == ids.map(prev["SK_ID_CURR"].astype(int))).all()
    month, decided = pd.to_datetime(pos["BALANCE_MONTH"]), pd.to_datetime(ids.map(prev["DECISION_DATE"]))
    assert (month.dt.day == 1).all()
    j = (month.dt.year - decided.dt.year) * 12 + month.dt.month - decided.dt.month
    assert (j == pos.groupby(ids).cumcount()).all()  # consecutive months from the month of the loan's decision
    term, future = pd.to_numeric(pos["CNT_INSTALMENT"]), pd.to_numeric(pos["CNT_INSTALMENT_FUTURE"])
    known = term.notna()
    assert (future.isna() == ~known).all() and 0.9 < known.mean() < 1
    assert (term[known] == pd.to_numeric(ids.map(prev["CNT_PAYMENT"]))[known]).all()
    assert (future[known] == term[known] - j[known]).all()
    status = pos["NAME_CONTRACT_STATUS"]
    done = status == "Completed"
    assert (done[known] == (future[known] == 0)).all() and (~ids.duplicated(keep="last"))[done].all()
    assert set(status) <= set(TABLES["pos_cash_balance"].column("NAME_CONTRACT_STATUS").allowed or ())
    assert 0.85 < (status == "Active").mean() < 0.97 and "Signed" in set(status) and "Demand" in set(status)
    inst = frames["installments_payments"]
    paid = inst[inst["SK_ID_PREV"].astype(int).isin(eligible.index)].groupby(inst["SK_ID_PREV"].astype(int)).size()
    assert (paid <= ids.value_counts().reindex(paid.index) - 1).all()  # instalment k is due in month k + 1
    dpd, dpd_def = pos["SK_DPD"].astype(int), pos["SK_DPD_DEF"].astype(int)
    assert (dpd_def <= dpd).all() and (dpd[done] == 0).all() and 0.01 < (dpd > 0).mean() < 0.1
    truth = truth_of(store).set_index("SK_ID_CURR")["TRUE_PD"]
    share = (dpd > 0).groupby(pos["SK_ID_CURR"].astype(int)).mean()
    risky = truth.reindex(share.index) > truth.median()
    assert share[risky].mean() > 1.5 * share[~risky].mean()  # past due more often: tied to the latent risk
    late = pd.to_datetime(inst["PAYMENT_DATE"]) > pd.to_datetime(inst["DUE_DATE"])
    late_loans = set(inst.loc[late, "SK_ID_PREV"].astype(int))
    with_late = ids.isin(late_loans)
    assert (dpd > 0)[with_late].mean() > 2 * (dpd > 0)[~with_late].mean()  # and to the loan's late instalments


def test_post_decision_rows_leak_the_outcome(clean_run: tuple[FolderStore, SimulationConfig],
                                            frames: dict[str, pd.DataFrame]) -> None:
    store, _ = clean_run
    first, last = manifest_of(store)["post_decision"]["sk_id_prev_range"]
    target = truth_of(store).set_index("SK_ID_CURR")["TARGET"]
    inst = frames["installments_payments"]
    post = inst[inst["SK_ID_PREV"].astype(int).between(first, last)]
    bad_payment = post["PAYMENT_DATE"].isna() | (pd.to_datetime(post["PAYMENT_DATE"]) > pd.to_datetime(post["DUE_DATE"]))
    by_target = bad_payment.groupby(post["SK_ID_CURR"].astype(int).map(target)).mean()
    assert by_target[1] > by_target[0] + 0.5


# -------------------------------------------------------------------------- outcomes

def test_outcomes_land_in_their_hour_and_not_after_the_window(clean_run: tuple[FolderStore, SimulationConfig],
                                                              frames: dict[str, pd.DataFrame]) -> None:
    store, cfg = clean_run
    out = frames["loan_outcome"]
    truth = truth_of(store).set_index("SK_ID_CURR")
    ids = out["SK_ID_CURR"].astype(int)
    outcome_time = pd.to_datetime(out["OUTCOME_TIME"])
    decision = truth.loc[ids, "DECISION_TIME"].to_numpy()
    assert (outcome_time.to_numpy() - decision == np.timedelta64(cfg.outcome_delay_hours, "h")).all()
    assert (outcome_time.dt.floor("h") == START + pd.to_timedelta(out["_hour"], unit="h")).all()
    assert (out["TARGET"].astype(int).to_numpy() == truth.loc[ids, "TARGET"].to_numpy()).all()
    matured = truth["hour"] + cfg.outcome_delay_hours < cfg.hours
    assert sorted(ids) == sorted(truth.index[matured])
    assert manifest_of(store)["outcomes"]["not_matured"] == int((~matured).sum()) > 0


# ------------------------------------------------------------------------- anomalies

@pytest.fixture(scope="module")
def anomalous_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[FolderStore, dict]:
    store = FolderStore(tmp_path_factory.mktemp("anomalies"))
    rates = {k: 0.25 for k in ANOMALY_KINDS} | {"duplicate_rows": 0.03, "malformed_row": 0.03, "wrong_type": 0.03}
    simulate(SimulationConfig(hours=8, rows_per_hour=40, seed=3, anomalies=rates, run_name="anom"), store)
    return store, manifest_of(store, "anom")


def _text(store: ObjectStore, key: str) -> str:
    data = store.get_bytes(key)
    data = gzip.decompress(data) if key.endswith(".gz") else data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _affected(manifest: dict, key: str) -> set[str]:
    return {a["kind"] for a in manifest["anomalies"] if a["key"] == key}


def test_every_anomaly_kind_is_injected_and_recorded(anomalous_run: tuple[FolderStore, dict]) -> None:
    store, m = anomalous_run
    assert {a["kind"] for a in m["anomalies"]} == set(ANOMALY_KINDS)
    keys = {o.key for o in store.list("landing/")}
    for a in m["anomalies"]:
        assert a["key"] in keys and a["table"] in TABLES and a["rows"] >= 0
        assert set(a) >= {"table", "key", "kind", "rows", "column", "details"}


def test_anomaly_signatures(anomalous_run: tuple[FolderStore, dict]) -> None:
    store, m = anomalous_run
    for a in m["anomalies"]:
        key, kind, kinds = a["key"], a["kind"], _affected(m, a["key"])
        data = store.get_bytes(key)
        if kind == "empty_file":
            assert data == b"" and kinds == {"empty_file"}
        elif kind == "corrupt_file":
            if key.endswith(".gz"):
                with pytest.raises((EOFError, OSError, zlib.error)):
                    gzip.decompress(data)
            elif key.endswith(".parquet"):
                with pytest.raises(Exception):  # noqa: B017 - any reader error
                    pq.read_table(io.BytesIO(data))
            else:
                text = _text(store, key)
                assert not text.endswith("\n")
                last = text.split("\n")[-1]
                if key.endswith(".csv"):
                    header = next(csv.reader([text.split("\n")[0]]))
                    assert len(next(csv.reader([last]))) < len(header)
                else:
                    with pytest.raises(json.JSONDecodeError):
                        json.loads(last)
        elif kind == "wrong_encoding":
            with pytest.raises(UnicodeDecodeError):
                (gzip.decompress(data) if key.endswith(".gz") else data).decode("utf-8")
            assert not (gzip.decompress(data) if key.endswith(".gz") else data).decode("latin-1").isascii()
        elif "corrupt_file" in kinds:
            continue  # the content checks below need the whole file
        elif kind == "missing_column":
            cols = _columns(store, key)
            contract = TABLES[a["table"]]
            absent = m["columns_not_simulated"].get(a["table"], {}).get("absent", [])
            assert a["column"] not in cols and contract.column(a["column"]).role != "drop"
            assert len(cols) == len(contract.columns) - len(absent) - 1 + ("extra_column" in kinds)
            assert a["details"]["required"] == contract.column(a["column"]).required
        elif kind == "extra_column":
            assert a["column"] in _columns(store, key) and a["column"] not in TABLES[a["table"]].column_names
        elif kind == "malformed_row":
            lines = _text(store, key).split("\n")
            offset = 1 if ".csv" in key else 0
            for ordinal in a["details"]["row_ordinals"]:
                line = lines[ordinal - 1 + offset]
                if ".csv" in key:
                    assert len(next(csv.reader([line]))) != len(next(csv.reader([lines[0]])))
                else:
                    with pytest.raises(json.JSONDecodeError):
                        json.loads(line)
        elif kind == "duplicate_rows":
            rows = _rows(store, key)
            for src, dup in zip(a["details"]["row_ordinals"], a["details"]["duplicate_ordinals"], strict=True):
                assert rows[src - 1] == rows[dup - 1]
        elif kind == "wrong_type":
            _check_wrong_type(store, a)


def _columns(store: ObjectStore, key: str) -> list[str]:
    if ".parquet" in key:
        return pq.read_schema(io.BytesIO(store.get_bytes(key))).names
    text = _text(store, key)
    if ".csv" in key:
        return next(csv.reader([text.split("\n")[0]]))
    return list(json.loads(text.split("\n")[0]))


def _rows(store: ObjectStore, key: str) -> list:
    if ".parquet" in key:
        return pq.read_table(io.BytesIO(store.get_bytes(key))).to_pylist()
    lines = _text(store, key).rstrip("\n").split("\n")
    return lines[1:] if ".csv" in key else lines


def _check_wrong_type(store: ObjectStore, a: dict) -> None:
    key, col = a["key"], a["column"]
    dtype = TABLES[a["table"]].column(col).dtype
    if ".parquet" in key:
        assert str(pq.read_schema(io.BytesIO(store.get_bytes(key))).field(col).type) == "string"
        assert dtype in ("int", "float")
        return
    lines = _text(store, key).split("\n")
    header = next(csv.reader([lines[0]])) if ".csv" in key else None
    broken = {o for b in manifest_of(store, "anom")["anomalies"] if b["key"] == key and b["kind"] == "malformed_row"
              for o in b["details"]["row_ordinals"]}
    checked = 0
    for ordinal in a["details"]["row_ordinals"]:
        if ordinal in broken:
            continue
        if header is not None:
            value = next(csv.reader([lines[ordinal]]))[header.index(col)]
        else:
            value = json.loads(lines[ordinal - 1])[col]
        assert isinstance(value, str), (key, col, value)
        checked += 1
        if dtype in ("int", "float"):
            with pytest.raises(ValueError):
                float(value)
        else:
            with pytest.raises(ValueError):
                dt.datetime.fromisoformat(value)
    assert checked or broken


def test_no_anomalies_without_rates_and_parsers_accept_clean_files(
        clean_run: tuple[FolderStore, SimulationConfig]) -> None:
    store, _ = clean_run
    for o in store.list("landing/"):
        text_or_table = read_landed(store, o.key)
        assert len(text_or_table) > 0 and o.size > 0


# ------------------------------------------------------------------------------ drift

def _drift_run(tmp_path: Path, drift: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    store = FolderStore(tmp_path / drift)
    simulate(SimulationConfig(hours=8, rows_per_hour=250, seed=2, drift=drift, drift_start_hour=4,
                              tables=["application"], run_name=drift), store)
    return load_table(store, "application"), truth_of(store, drift), manifest_of(store, drift)


def test_drift_scenarios_change_the_data_after_the_drift_hour(tmp_path: Path) -> None:
    assert DRIFT_SCENARIOS == ("none", "income_shift", "product_mix", "default_rate")
    base_app, base_truth, base_m = _drift_run(tmp_path, "none")
    assert not base_truth["drifted"].any() and base_m["bayes_optimal_auc"]["post_drift"] is None

    app, truth, m = _drift_run(tmp_path, "income_shift")
    assert (truth["drifted"] == (truth["hour"] >= 4)).all()
    assert m["bayes_optimal_auc"]["pre_drift"] is not None and m["bayes_optimal_auc"]["post_drift"] is not None
    after = app["_hour"] >= 4
    income = app["AMT_INCOME_TOTAL"].astype(float)
    assert income[after].median() < 0.8 * income[~after].median()
    np.testing.assert_array_equal(income[~after], base_app["AMT_INCOME_TOTAL"].astype(float)[~after])

    app, truth, _ = _drift_run(tmp_path, "product_mix")
    revolving = app["NAME_CONTRACT_TYPE"] == "Revolving loans"
    after = app["_hour"] >= 4
    assert revolving[after].mean() > revolving[~after].mean() + 0.2
    assert app.loc[after, "EXT_SOURCE_3"].isna().mean() > app.loc[~after, "EXT_SOURCE_3"].isna().mean() + 0.15

    _, truth, _ = _drift_run(tmp_path, "default_rate")
    pre, post = truth[~truth.drifted], truth[truth.drifted]
    assert post["TRUE_PD"].mean() > 1.5 * pre["TRUE_PD"].mean()
    np.testing.assert_allclose(pre["TRUE_PD"], base_truth.loc[base_truth["hour"] < 4, "TRUE_PD"])


def test_table_subset_writes_only_those_tables_with_the_same_rows(
        tmp_path: Path, clean_run: tuple[FolderStore, SimulationConfig]) -> None:
    full, cfg = clean_run
    store = FolderStore(tmp_path / "subset")
    result = simulate(SimulationConfig(start=cfg.start, hours=cfg.hours, rows_per_hour=cfg.rows_per_hour,
                                       seed=cfg.seed, tables=["application", "bureau_balance",
                                                              "installments_payments", "loan_outcome"]), store)
    subset = {"application", "bureau_balance", "installments_payments", "loan_outcome"}
    assert set(result.rows) == subset  # the others (pos_cash_balance too) are not written and change nothing
    assert {parse_landing_key(k)[0] for k in result.files} == subset  # type: ignore[index]
    for key in result.files:
        assert store.get_bytes(key) == full.get_bytes(key)
    assert store.get_bytes(result.truth_key) == full.get_bytes(result.truth_key)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="drift"):
        SimulationConfig(drift="sideways")
    with pytest.raises(ValueError, match="unknown anomaly"):
        SimulationConfig(anomalies={"gremlins": 0.1})
    with pytest.raises(ValueError, match="within"):
        SimulationConfig(anomalies={"empty_file": 1.5})
    with pytest.raises(ValueError, match="unknown table"):
        SimulationConfig(tables=["applications"])
    with pytest.raises(ValueError, match="on the hour"):
        SimulationConfig(start="2026-10-01T00:30")
    cfg = SimulationConfig(drift="income_shift", hours=10)
    assert cfg.effective_drift_start == 5
    with pytest.raises(AttributeError):
        cfg.hours = 3  # type: ignore[misc]


# -------------------------------------------------------------------------------- CLI

def test_cli_writes_into_the_configured_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CREDITRISK_OBJECT_STORE", raising=False)
    monkeypatch.delenv("CREDITRISK_STORE_ROOT", raising=False)
    code = main(["--hours", "3", "--start", "2026-10-01T00:00", "--rows-per-hour", "20", "--seed", "9",
                 "--drift", "income_shift", "--drift-start-hour", "2", "--anomaly", "empty_file=0.2",
                 "--anomaly", "malformed_row=0.05", "--outcome-delay-hours", "1",
                 "--tables", "application,loan_outcome", "--run-name", "cli", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Bayes-optimal AUC" in out and "oracle/cli/manifest.json" in out
    store = FolderStore(tmp_path / "home" / "objectstore")
    m = manifest_of(store, "cli")
    assert m["config"]["anomalies"] == {"malformed_row": 0.05, "empty_file": 0.2}
    assert m["drift"]["start_hour"] == 2 and m["tables"] == ["application", "loan_outcome"]
    assert len(store.list("landing/application/")) == 3 and len(store.list("landing/loan_outcome/")) == 2
    assert "Müller" not in capsys.readouterr().err  # no PII in logs


def test_cli_rejects_bad_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit):
        main(["--anomaly", "gremlins=0.5"])
    with pytest.raises(SystemExit):
        main(["--tables", "nope"])
    assert main(["--start", "2026-10-01T00:30", "--no-progress"]) == 2


# ---------------------------------------------------------------------------- imports

def _imports_of_the_package(path: Path, package: str) -> list[str]:
    """The import statements in ``path`` (a module of ``package``) that go through the package's ``__init__``."""
    module_package = package.split(".")
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = module_package[:len(module_package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names = {f"{target}.{a.name}" for a in node.names}
            if target == package or package in names:  # from . import x / from ..simulate import x / from .. import simulate
                found.append(f"line {node.lineno}: from {'.' * node.level}{node.module or ''} import "
                             + ", ".join(a.name for a in node.names))
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name == package or a.name.startswith(package + ".")]
    return found


def test_no_simulator_module_imports_the_package_init() -> None:
    """``simulate/__init__`` only re-exports from its submodules; a submodule importing from the package (even
    ``from . import pii``) closes an import cycle through ``__init__``."""
    package = simulate_package.__name__
    root = Path(simulate_package.__file__).parent
    modules = sorted(p for p in root.glob("*.py") if p.name != "__init__.py")
    assert len(modules) > 10
    offending = {p.name: found for p in modules if (found := _imports_of_the_package(p, package))}
    assert not offending
    assert _imports_of_the_package(root / "__init__.py", package) == []  # only relative re-exports of submodules

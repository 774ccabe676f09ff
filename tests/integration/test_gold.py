"""Gold built by real dbt on real DuckDB/DuckLake from simulated silver."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from creditrisk_assets.gold.build import BuildWindow, run_dbt
from creditrisk_assets.gold.lookup import FeatureCache, latest_features
from creditrisk_assets.resources import Lake, ObjectStore
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import SimulationConfig, simulate
from tests.helpers import build_silver_hours, gold_features, run_bronze

pytestmark = pytest.mark.integration
START = dt.datetime(2026, 10, 1)
HOURS = [START + dt.timedelta(hours=h) for h in range(3)]
FULL = BuildWindow("2026-10-01 00:00:00", "2026-10-01 03:00:00")


def build_silver(settings: Settings, store: ObjectStore, seed: int = 21) -> None:
    build_silver_hours(settings, store, HOURS, rows_per_hour=20, seed=seed)


gold = gold_features


@pytest.fixture()
def silver_built(settings: Settings, folder_store: ObjectStore) -> Settings:
    build_silver(settings, folder_store)
    return settings


def test_dbt_build_passes_and_features_cover_every_application(silver_built: Settings) -> None:
    out = run_dbt(silver_built, ["build"], FULL)
    assert "Completed successfully" in out
    features = gold(silver_built)
    con = Lake(silver_built).connect_lake()
    apps = con.execute("SELECT count(*) FROM lake.silver.application").fetchone()[0]
    assert len(features) == apps == features["sk_id_curr"].nunique()
    assert features.shape[1] >= 42  # id + decision time + >= 40 features
    no_history = features[features["has_bureau_history"] == 0]
    assert (no_history["bureau_credit_count"] == 0).all() and no_history["bureau_debt_credit_ratio"].isna().all()
    # POS / cash loans: most applicants have some; without, counts are 0 and means null
    pos = features.set_index("sk_id_curr")
    assert 0.5 < pos["has_pos_cash_history"].mean() < 0.95
    none = pos[pos["has_pos_cash_history"] == 0]
    assert (none[["pos_loan_count", "pos_months_count", "pos_dpd_max", "pos_active_remaining_instalments"]] == 0).all().all()
    assert none[["pos_dpd_mean", "pos_dpd_month_share", "pos_history_months"]].isna().all().all()
    some = pos[pos["has_pos_cash_history"] == 1]
    assert (some["pos_months_count"] >= some["pos_loan_count"]).all() and (some["pos_loan_count"] > 0).all()
    assert (some["pos_active_loan_count"] + some["pos_completed_loan_count"] <= some["pos_loan_count"]).all()
    silver_pos = con.execute("""SELECT p.SK_ID_CURR, count(*) AS n FROM lake.silver.pos_cash_balance p
                                JOIN lake.silver.application a USING (SK_ID_CURR)
                                WHERE p.BALANCE_MONTH < a.DECISION_TIME GROUP BY 1""").df().set_index("SK_ID_CURR")["n"]
    assert (pos["pos_months_count"] == silver_pos.reindex(pos.index).fillna(0)).all()
    # the new application features: days before the decision, family size, flags
    for col in ("days_registration", "days_id_publish", "days_last_phone_change"):
        assert features[col].notna().all() and (features[col] >= 0).all(), col
    np.testing.assert_allclose(features["income_per_family_member"] * features["cnt_fam_members"],
                               features["amt_income_total"], rtol=1e-12)
    assert set(features["flag_document_3"]) == {0, 1} and features["name_type_suite"].notna().any()


def test_incremental_hour_by_hour_equals_full_rebuild(silver_built: Settings) -> None:
    for h in HOURS:
        run_dbt(silver_built, ["run"], BuildWindow.between(h, h + dt.timedelta(hours=1)))
    incremental = gold(silver_built)
    run_dbt(silver_built, ["run", "--full-refresh"])
    full = gold(silver_built)
    assert len(full) > 0
    pd.testing.assert_frame_equal(incremental, full)


def test_rows_dated_after_the_decision_do_not_change_features(silver_built: Settings) -> None:
    run_dbt(silver_built, ["run"], FULL)
    before = gold(silver_built)
    con = Lake(silver_built).connect_lake()
    target = con.execute("SELECT SK_ID_CURR, DECISION_TIME FROM lake.silver.application ORDER BY 1 LIMIT 5").df()

    def plant(offset: str) -> None:
        """Activity for the five applicants, dated ``offset`` relative to their decision time."""
        for i, (sk, when) in enumerate(target.itertuples(index=False)):
            t = f"(TIMESTAMP '{when}' + INTERVAL '{offset}')"
            con.execute(f"""INSERT INTO lake.silver.bureau BY NAME SELECT {900000 + i} AS SK_ID_BUREAU, {sk} AS SK_ID_CURR,
                'Active' AS CREDIT_ACTIVE, 'Microloan' AS CREDIT_TYPE, CAST({t} AS DATE) AS DATE_CREDIT,
                5000 AS CREDIT_DAY_OVERDUE, 1e6 AS AMT_CREDIT_SUM, 1e6 AS AMT_CREDIT_SUM_DEBT,
                9e5 AS AMT_CREDIT_SUM_OVERDUE, 9 AS CNT_CREDIT_PROLONG, {t} AS REPORTED_AT, 'planted' AS _partition""")
            con.execute(f"""INSERT INTO lake.silver.installments_payments BY NAME SELECT {800000 + i} AS SK_ID_PREV,
                {sk} AS SK_ID_CURR, 1 AS NUM_INSTALMENT_NUMBER, CAST({t} AS DATE) - 90 AS DUE_DATE,
                CAST({t} AS DATE) AS PAYMENT_DATE, 100.0 AS AMT_INSTALMENT, 1.0 AS AMT_PAYMENT, 'planted' AS _partition""")
            con.execute(f"""INSERT INTO lake.silver.credit_card_balance BY NAME SELECT {700000 + i} AS SK_ID_PREV,
                {sk} AS SK_ID_CURR, CAST({t} AS DATE) AS BALANCE_MONTH, 9e5 AS AMT_BALANCE,
                1e3 AS AMT_CREDIT_LIMIT_ACTUAL, 0.0 AS AMT_DRAWINGS_CURRENT, 0.0 AS AMT_PAYMENT_CURRENT,
                999 AS SK_DPD, 'planted' AS _partition""")
            con.execute(f"""INSERT INTO lake.silver.pos_cash_balance BY NAME SELECT {500000 + i} AS SK_ID_PREV,
                {sk} AS SK_ID_CURR, CAST({t} AS DATE) AS BALANCE_MONTH, 12.0 AS CNT_INSTALMENT,
                7.0 AS CNT_INSTALMENT_FUTURE, 'Demand' AS NAME_CONTRACT_STATUS, 4999 AS SK_DPD, 4999 AS SK_DPD_DEF,
                'planted' AS _partition""")
            con.execute(f"""INSERT INTO lake.silver.previous_application BY NAME SELECT {600000 + i} AS SK_ID_PREV,
                {sk} AS SK_ID_CURR, 'Cash loans' AS NAME_CONTRACT_TYPE, 1e5 AS AMT_APPLICATION, 0.0 AS AMT_CREDIT,
                'Refused' AS NAME_CONTRACT_STATUS, CAST({t} AS DATE) AS DECISION_DATE, 'planted' AS _partition""")

    plant("1 day")  # the future: must be invisible
    con.close()
    run_dbt(silver_built, ["run", "--full-refresh"], FULL)
    pd.testing.assert_frame_equal(before, gold(silver_built))

    con = Lake(silver_built).connect_lake()
    plant("-3 day")  # the past: the same rows dated before the decision do change features
    con.close()
    run_dbt(silver_built, ["run", "--full-refresh"], FULL)
    after = gold(silver_built).set_index("sk_id_curr").loc[target["SK_ID_CURR"]]
    assert (after["bureau_max_days_overdue"] == 5000).all() and (after["cc_dpd_max"] == 999).all()
    assert (after["pos_dpd_max"] == 4999).all() and (after["pos_active_loan_count"] >= 1).all()


def test_online_lookup(silver_built: Settings) -> None:
    run_dbt(silver_built, ["run"], FULL)
    con = Lake(silver_built).connect_lake()
    some = int(con.execute("SELECT min(sk_id_curr) FROM lake.gold.applicant_features").fetchone()[0])
    row = latest_features(con, some)
    assert row is not None and row["sk_id_curr"] == some and "credit_income_ratio" in row
    assert latest_features(con, 1) is None
    cache = FeatureCache.load(con, Lake.snapshot_id(con))
    assert len(cache) == con.execute("SELECT count(*) FROM lake.gold.applicant_features").fetchone()[0]
    assert cache.get(some)["credit_income_ratio"] == pytest.approx(row["credit_income_ratio"])
    assert cache.get(1) is None


def test_gold_in_dagster_lineage_and_failing_dbt_test_fails_its_check(settings: Settings,
                                                                     folder_store: ObjectStore) -> None:
    simulate(SimulationConfig(start="2026-10-01T00:00", hours=2, rows_per_hour=10, seed=4), folder_store)
    result = run_bronze(settings, "2026-10-01-00:00", "2026-10-01-01:00")
    assert result.success
    mats = {e.asset_key.to_user_string() for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert {"gold/applicant_features", "gold/stg_application", "silver/application"} <= mats
    snapshot_meta = [e.event_specific_data.materialization.metadata for e in result.all_events
                     if e.event_type_value == "ASSET_MATERIALIZATION"
                     and e.asset_key.to_user_string() == "gold/applicant_features"]
    assert snapshot_meta and snapshot_meta[0]["silver_snapshot_id"].value > 0
    # lineage: gold staging depends on the silver asset
    from creditrisk_assets.definitions import build_definitions

    graph = build_definitions(settings).resolve_asset_graph()
    assert dg.AssetKey(["silver", "application"]) in graph.get(dg.AssetKey(["gold", "stg_application"])).parent_keys

    con = Lake(settings).connect_lake()  # a row silver would never let through, planted behind its back
    con.execute("""INSERT INTO lake.silver.application BY NAME SELECT * REPLACE (999999 AS SK_ID_CURR,
                   'Pirate' AS NAME_INCOME_TYPE) FROM lake.silver.application LIMIT 1""")
    con.close()
    job = build_definitions(settings).resolve_job_def("ingest")
    bad = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
                                 tags={"dagster/asset_partition_range_start": "2026-10-01-00:00",
                                       "dagster/asset_partition_range_end": "2026-10-01-01:00"},
                                 asset_selection=[dg.AssetKey(["gold", "stg_application"])])
    failed = [e.event_specific_data for e in bad.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
              and not e.event_specific_data.passed]
    assert failed, "the accepted_values test on stg_application.name_income_type should fail"
    assert any("stg_application" in f.check_name and "name_income_type" in f.check_name for f in failed)

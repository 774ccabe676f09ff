"""Gold for >= 100k applications and >= 5M activity rows: dbt vs the same SQL run directly vs pandas.

Setup (not timed): simulate, land, bronze, silver through the project's own functions.
Timed, same run, same silver snapshot:
  (a) dbt   — ``dbt run --full-refresh`` of the gold project (models only; tests are not features);
  (b) SQL   — the SQL dbt compiled for the same models, executed directly in one DuckDB connection;
  (c) pandas — the same features computed with pandas from the same silver tables.
Prints seconds, the ratios pandas/dbt (goal >= 5x) and dbt/SQL (goal <= 1.3x), and checks that the
three agree on a sample of features.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import Any

import numpy as np
import pandas as pd

from bench.common import silver_setup
from creditrisk_assets.contracts import TABLES
from creditrisk_assets.gold.build import BuildWindow, run_dbt, target_dir

CHECK = ["bureau_credit_count", "bureau_worst_dpd_bucket", "prev_refused_count", "inst_late_count",
         "cc_months_count", "credit_income_ratio"]


def pandas_features(silver: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The applicant_features mart, in pandas (same point-in-time rules as the dbt models)."""
    app = silver["application"]
    a = app[["SK_ID_CURR", "DECISION_TIME"]]
    out = pd.DataFrame({"sk_id_curr": app["SK_ID_CURR"], "decision_time": app["DECISION_TIME"]})
    out["credit_income_ratio"] = app["AMT_CREDIT"] / app["AMT_INCOME_TOTAL"]
    out["annuity_income_ratio"] = app["AMT_ANNUITY"] / app["AMT_INCOME_TOTAL"]
    ext = app[["EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"]]
    out["ext_source_mean"], out["ext_source_min"] = ext.mean(axis=1), ext.min(axis=1)
    out["ext_source_missing_count"] = ext.isna().sum(axis=1)
    out = out.set_index("sk_id_curr")

    b = silver["bureau"].merge(a, on="SK_ID_CURR")
    b = b[b["REPORTED_AT"] < b["DECISION_TIME"]]
    g = b.groupby("SK_ID_CURR")
    bureau = pd.DataFrame({
        "bureau_credit_count": g.size(),
        "bureau_active_count": g["CREDIT_ACTIVE"].apply(lambda s: (s == "Active").sum()),
        "bureau_overdue_count": g["CREDIT_DAY_OVERDUE"].apply(lambda s: (s > 0).sum()),
        "bureau_max_days_overdue": g["CREDIT_DAY_OVERDUE"].max(),
        "bureau_total_debt": g["AMT_CREDIT_SUM_DEBT"].sum(),
        "bureau_debt_credit_ratio": g["AMT_CREDIT_SUM_DEBT"].sum() / g["AMT_CREDIT_SUM"].sum().replace(0, np.nan),
    })
    bb = silver["bureau_balance"].merge(b[["SK_ID_BUREAU", "SK_ID_CURR", "DECISION_TIME"]], on="SK_ID_BUREAU")
    bb = bb[pd.to_datetime(bb["BALANCE_MONTH"]) < bb["DECISION_TIME"]]
    bb["dpd"] = pd.to_numeric(bb["STATUS"].where(bb["STATUS"].isin(list("12345"))), errors="coerce").fillna(0)
    gb = bb.groupby("SK_ID_CURR")
    balance = pd.DataFrame({"bureau_worst_dpd_bucket": gb["dpd"].max(),
                            "bureau_dpd_month_share": gb["dpd"].apply(lambda s: (s > 0).mean())})
    p = silver["previous_application"].merge(a, on="SK_ID_CURR")
    p = p[pd.to_datetime(p["DECISION_DATE"]) < p["DECISION_TIME"]]
    gp = p.groupby("SK_ID_CURR")
    prev = pd.DataFrame({"prev_application_count": gp.size(),
                         "prev_refused_count": gp["NAME_CONTRACT_STATUS"].apply(lambda s: (s == "Refused").sum())})
    prev["prev_refusal_rate"] = prev["prev_refused_count"] / prev["prev_application_count"]
    i = silver["installments_payments"].merge(a, on="SK_ID_CURR")
    event = pd.to_datetime(i["PAYMENT_DATE"].fillna(i["DUE_DATE"]))
    i = i[event < i["DECISION_TIME"]].copy()
    paid = pd.to_datetime(i["PAYMENT_DATE"]).fillna(i["DECISION_TIME"].dt.normalize())
    i["days_late"] = (paid - pd.to_datetime(i["DUE_DATE"])).dt.days.clip(lower=0)
    gi = i.groupby("SK_ID_CURR")
    inst = pd.DataFrame({"inst_count": gi.size(), "inst_late_count": gi["days_late"].apply(lambda s: (s > 0).sum()),
                         "inst_days_late_mean": gi["days_late"].mean(), "inst_days_late_max": gi["days_late"].max()})
    c = silver["credit_card_balance"].merge(a, on="SK_ID_CURR")
    c = c[pd.to_datetime(c["BALANCE_MONTH"]) < c["DECISION_TIME"]].copy()
    c["util"] = c["AMT_BALANCE"] / c["AMT_CREDIT_LIMIT_ACTUAL"].replace(0, np.nan)
    gc = c.groupby("SK_ID_CURR")
    cards = pd.DataFrame({"cc_months_count": gc.size(), "cc_utilisation_mean": gc["util"].mean(),
                          "cc_dpd_max": gc["SK_DPD"].max()})
    out = out.join([bureau, balance, prev, inst, cards])
    counts = [c for c in out.columns if c.endswith("_count") or c in ("bureau_worst_dpd_bucket", "cc_dpd_max")]
    out[counts] = out[counts].fillna(0)
    return out.reset_index()


def compiled_sql(settings: Any) -> list[tuple[str, str, str]]:
    """(kind, relation, select) for every model, in dependency order, from dbt's compiled SQL (the models and
    their order from the manifest of the same invocation)."""
    nodes = json.loads((target_dir(settings) / "manifest.json").read_text())["nodes"]
    models = {u: n for u, n in nodes.items() if n["resource_type"] == "model"}
    order: list[str] = []

    def visit(unique_id: str) -> None:
        if unique_id in order:
            return
        for parent in models[unique_id]["depends_on"]["nodes"]:
            if parent in models:
                visit(parent)
        order.append(unique_id)

    for unique_id in sorted(models):
        visit(unique_id)
    base = target_dir(settings) / "compiled" / "creditrisk"
    out = []
    for unique_id in order:
        node = models[unique_id]
        kind = "table" if node["config"]["materialized"] in ("table", "incremental") else "view"
        out.append((kind, node["name"], (base / node["original_file_path"]).read_text()))
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    settings, store, lake, hours, _, setup_s = silver_setup("features", argv, hours=100, rows_per_hour=1000, seed=3)
    con = lake.connect_lake()
    counts = {t: con.execute(f'SELECT count(*) FROM lake.silver."{t}"').fetchone()[0] for t in TABLES}
    con.close()
    activity = sum(v for k, v in counts.items() if k not in ("application", "loan_outcome"))
    print(f"  data: {counts['application']:,} applications, {activity:,} activity rows in silver "
          f"(setup {setup_s:.0f}s)")

    window = BuildWindow.between(hours[0], hours[-1] + dt.timedelta(hours=1))
    run_dbt(settings, ["compile"], window)  # compiled SQL for (b); also warms dbt's partial parse
    t0 = time.perf_counter()
    run_dbt(settings, ["run", "--full-refresh"], window)
    dbt_s = time.perf_counter() - t0

    con = lake.connect_lake(threads=2)
    con.execute(f"ATTACH '{settings.resolved_lake_dir / 'dbt.duckdb'}' AS dbt")
    statements = []
    for kind, name, sql in compiled_sql(settings):
        target = f"lake.gold.{name}_rawsql" if kind == "table" else f"dbt.main.{name}_rawsql"
        sql = re.sub(r'"dbt"\."main"\."(\w+)"', r'"dbt"."main"."\1_rawsql"', sql)
        statements.append(f"CREATE OR REPLACE {kind.upper()} {target} AS {sql}")
    t0 = time.perf_counter()
    for s in statements:
        con.execute(s)
    sql_s = time.perf_counter() - t0

    silver = {t: con.execute(f'SELECT * FROM lake.silver."{t}"').df() for t in TABLES}
    t0 = time.perf_counter()
    pdf = pandas_features(silver)
    pandas_s = time.perf_counter() - t0

    dbt_out = con.execute("SELECT * FROM lake.gold.applicant_features ORDER BY sk_id_curr").df().set_index("sk_id_curr")
    sql_out = con.execute("SELECT * FROM lake.gold.applicant_features_rawsql ORDER BY sk_id_curr").df().set_index("sk_id_curr")
    pd.testing.assert_frame_equal(dbt_out, sql_out)
    pdf = pdf.set_index("sk_id_curr").loc[dbt_out.index]
    for col in CHECK:
        np.testing.assert_allclose(pdf[col].astype(float).fillna(-1), dbt_out[col].astype(float).fillna(-1),
                                   rtol=1e-9, err_msg=col)
    con.close()
    n = len(dbt_out)
    print(f"  (a) dbt run --full-refresh         {dbt_s:8.2f} s  {n / dbt_s:>10,.0f} applications/s")
    print(f"  (b) compiled SQL directly in DuckDB {sql_s:8.2f} s  {n / sql_s:>10,.0f} applications/s")
    print(f"  (c) pandas (baseline)               {pandas_s:8.2f} s  {n / pandas_s:>10,.0f} applications/s")
    print(f"  ratio pandas/dbt: {pandas_s / dbt_s:.2f}x (goal >= 5x);  dbt/SQL overhead: {dbt_s / sql_s:.2f}x "
          f"(goal <= 1.3x);  features agree on {', '.join(CHECK)}")
    return {"applications": n, "activity_rows": activity, "dbt_s": dbt_s, "sql_s": sql_s, "pandas_s": pandas_s}


if __name__ == "__main__":
    main()

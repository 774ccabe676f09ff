"""Published-format data: the project's champion against a plain logistic regression on the raw columns.

Setup (timed, reported, not the point): the simulator's world written in the published Home Credit layout
(`creditrisk simulate --format homecredit`), imported (`creditrisk import homecredit`), bronze → silver →
gold (dbt) → the point-in-time training set. Then, on the same applications and the same time split:
(a) the project's champion: the better out-of-time AUC of its logistic baseline and XGBoost on the 98 gold
features (as `ml/evaluation` picks it); (b) what a data scientist would try first: scikit-learn's
`LogisticRegression` on the raw `application_train.csv` columns (median imputation, scaling, one-hot
categories), nothing else. Prints both AUCs, the lift (goal: champion >= baseline + 0.01) and the oracle
(Bayes-optimal) AUC of the same test applications, per seed (three worlds by default: on ~2,700 out-of-time
applications one AUC carries ~0.01 of sampling noise, the size of the goal) and their mean.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import pandas as pd
import pyarrow.parquet as pq
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bench.common import scratch
from creditrisk_assets.gold.build import run_dbt
from creditrisk_assets.ingest.homecredit import ImportOptions, import_homecredit
from creditrisk_assets.modeling.dataset import TARGET, build_training_set
from creditrisk_assets.modeling.train import train_baseline, train_xgboost
from creditrisk_assets.quality.runner import ingest_to_silver
from creditrisk_assets.resources import FolderStore, Lake
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import SimulationConfig
from creditrisk_assets.simulate.homecredit import export_homecredit

GOAL_LIFT = 0.01


def raw_logistic(frame: pd.DataFrame, seed: int = 0) -> Pipeline:
    """The plain baseline: every raw column as it is in the file, numbers imputed + scaled, text one-hot."""
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    text = [c for c in frame.columns if c not in numeric]
    prepare = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore")), text)])
    return Pipeline([("prepare", prepare), ("logit", LogisticRegression(max_iter=2000, random_state=seed))])


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(prog="bench/realdata.py")
    ap.add_argument("--hours", type=int, default=72)
    ap.add_argument("--rows-per-hour", type=int, default=300)
    ap.add_argument("--seeds", default="17,18,19", help="comma-separated simulator seeds (one world each)")
    args = ap.parse_args(argv)
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        print(f"  --- seed {seed}", flush=True)
        results.append(one_world(args.hours, args.rows_per_hour, seed))
    mean = {k: sum(r[k] for r in results) / len(results) for k in results[0]}
    met = sum(r["lift"] >= GOAL_LIFT for r in results)
    print(f"  mean over {len(results)} seeds: champion {mean['champion_auc']:.4f}, raw baseline "
          f"{mean['raw_baseline_auc']:.4f}, lift {mean['lift']:+.4f} (goal >= +{GOAL_LIFT}: "
          f"{'OK' if mean['lift'] >= GOAL_LIFT else 'MISSED'}; met by {met} of {len(results)} seeds), "
          f"oracle {mean['oracle_auc']:.4f}")
    return mean


def one_world(hours: int, rows_per_hour: int, seed: int) -> dict[str, float]:
    """Export → import → silver → gold → training set for one simulated world; both models; the figures."""
    work = scratch("realdata")
    settings = Settings.from_env({"CREDITRISK_HOME": str(work / "home")})
    store, lake = FolderStore(settings.resolved_store_root), Lake(settings)
    start = dt.datetime(2026, 10, 1)
    cfg = SimulationConfig(start=start.strftime("%Y-%m-%dT%H:%M"), hours=hours, rows_per_hour=rows_per_hour,
                           seed=seed, run_name="realdata")

    t0 = time.perf_counter()
    exported = export_homecredit(cfg, work / "kaggle")
    t_export = time.perf_counter() - t0
    imported = import_homecredit(ImportOptions(source=exported.out, start=start, per_hour=exported.per_hour,
                                               id_base=exported.id_base,
                                               outcome_delay_hours=exported.outcome_delay_hours), store)
    t_import = time.perf_counter() - t0 - t_export
    ingest_to_silver(store, lake, settings, imported.hours, "bench")
    run_dbt(settings, ["run", "--full-refresh"])
    con = lake.connect_lake()
    try:
        ts = build_training_set(con, snapshot_id=Lake.snapshot_id(con))
    finally:
        con.close()
    t_setup = time.perf_counter() - t0
    rows = {name: t.read for name, t in imported.tables.items()}
    print(f"  published files: {sum(exported.files.values()):,} rows in {len(exported.files)} files "
          f"(export {t_export:.0f}s, import {t_import:.0f}s); {rows['application']:,} applications")
    train, valid, test = ts.part("train"), ts.part("valid"), ts.part("test")
    print(f"  training set: {len(ts.frame):,} matured applications ({len(train):,} / {len(valid):,} / {len(test):,} "
          f"train / valid / out-of-time test), {len(ts.features)} features (setup {t_setup:.0f}s)")

    # (a) the project's champion: the better out-of-time AUC of its two models
    models = {"baseline": train_baseline(train, ts.features, ts.categorical, valid=valid),
              "xgboost": train_xgboost(train, valid, ts.features, ts.categorical, trials=6, time_budget_s=300)}
    aucs = {kind: float(roc_auc_score(test[TARGET], m.predict_pd(test))) for kind, m in models.items()}
    champion_kind = max(aucs, key=lambda k: aucs[k])

    # (b) plain logistic regression on the raw application columns, same applications, same split
    raw = pd.read_csv(exported.out / "application_train.csv")
    split = ts.frame.set_index("sk_id_curr")["split"]
    raw = raw[raw["SK_ID_CURR"].isin(split.index)].assign(split=lambda f: f["SK_ID_CURR"].map(split))
    x_cols = [c for c in raw.columns if c not in ("SK_ID_CURR", TARGET, "split")]
    plain = raw_logistic(raw[x_cols]).fit(raw.loc[raw["split"] == "train", x_cols], raw.loc[raw["split"] == "train", TARGET])
    raw_test = raw[raw["split"] == "test"]
    plain_auc = float(roc_auc_score(raw_test[TARGET], plain.predict_proba(raw_test[x_cols])[:, 1]))

    truth = pq.read_table(exported.truth_file).to_pandas().set_index("SK_ID_CURR")
    oracle = float(roc_auc_score(test[TARGET], truth.loc[test["sk_id_curr"], "TRUE_PD"].to_numpy()))
    lift = aucs[champion_kind] - plain_auc
    print(f"  raw-column logistic regression ({len(x_cols)} columns)      out-of-time AUC {plain_auc:.4f}")
    for kind, auc in aucs.items():
        mark = "  <- champion" if kind == champion_kind else ""
        print(f"  project {kind:<9} ({len(ts.features)} gold features)          out-of-time AUC {auc:.4f}{mark}")
    print(f"  oracle (Bayes-optimal) on the same test applications     AUC {oracle:.4f}")
    print(f"  lift champion - raw baseline: {lift:+.4f} AUC (goal >= +{GOAL_LIFT}) "
          f"{'OK' if lift >= GOAL_LIFT else 'MISSED'}; champion gap to oracle {oracle - aucs[champion_kind]:.4f}")
    return {"champion_auc": aucs[champion_kind], "raw_baseline_auc": plain_auc, "lift": lift, "oracle_auc": oracle}


if __name__ == "__main__":
    main()

"""Training step vs a bare ``xgboost.train`` with the same parameters, same feature matrix, same run.

Setup (not timed): simulate, land, bronze, silver, gold (dbt), training set at a pinned snapshot.
Timed: (a) the project's XGBoost training with the chosen parameters (one trial: the search is
measured separately), (b) ``xgboost.train`` on DMatrix objects built from the same frames. Prints
the ratio (goal <= 1.2x) and each model's out-of-time AUC gap to the Bayes-optimal AUC of the
same test applications (goal <= 0.01).
"""

from __future__ import annotations

import time

import pandas as pd
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from bench.common import silver_setup
from creditrisk_assets.gold.build import run_dbt
from creditrisk_assets.modeling.dataset import TARGET, build_training_set
from creditrisk_assets.modeling.train import XGB_BASE, train_baseline, train_xgboost
from creditrisk_assets.resources import Lake
from creditrisk_assets.simulate import bayes_optimal_auc


def main(argv: list[str] | None = None) -> dict[str, float]:
    settings, store, lake, hours, sim, setup_s = silver_setup("train", argv, hours=60, rows_per_hour=1000, seed=5)
    t0 = time.perf_counter()
    run_dbt(settings, ["run", "--full-refresh"])
    con = lake.connect_lake()
    ts = build_training_set(con, snapshot_id=Lake.snapshot_id(con))
    con.close()
    train, valid, test = ts.part("train"), ts.part("valid"), ts.part("test")
    print(f"  data: {len(ts.frame):,} matured applications ({len(train):,} train / {len(valid):,} valid / "
          f"{len(test):,} test), {len(ts.features)} features (setup {setup_s + time.perf_counter() - t0:.0f}s)")

    search = train_xgboost(train, valid, ts.features, ts.categorical, trials=6, time_budget_s=300)
    chosen = {k: search.params[k] for k in ("max_depth", "eta", "min_child_weight", "subsample",
                                             "colsample_bytree", "lambda")}
    rounds = search.params["best_iteration"] + 1

    def project() -> float:
        t = time.perf_counter()
        train_xgboost(train, valid, ts.features, ts.categorical, candidates=[chosen], num_boost_round=rounds,
                      early_stopping_rounds=rounds + 1)
        return time.perf_counter() - t

    def bare() -> float:
        t = time.perf_counter()
        x_train = train[ts.features].astype({c: "category" for c in ts.categorical})
        x_valid = valid[ts.features].astype({c: "category" for c in ts.categorical})
        dtrain = xgb.DMatrix(x_train, label=train[TARGET], enable_categorical=True)
        dvalid = xgb.DMatrix(x_valid, label=valid[TARGET], enable_categorical=True)
        booster = xgb.train({**XGB_BASE, **chosen}, dtrain, num_boost_round=rounds, evals=[(dvalid, "valid")], verbose_eval=False)
        roc_auc_score(valid[TARGET], booster.predict(dvalid))  # the project scores validation once too
        return time.perf_counter() - t

    bare_s = min(bare() for _ in range(3))
    proj_s = min(project() for _ in range(3))
    base = train_baseline(train, ts.features, ts.categorical)
    truth = pd.read_parquet(store.uri(f"oracle/{sim.manifest_key.split('/')[1]}/truth.parquet"))
    true_pd = test.merge(truth[["SK_ID_CURR", "TRUE_PD"]], left_on="sk_id_curr", right_on="SK_ID_CURR")["TRUE_PD"]
    oracle = bayes_optimal_auc(true_pd.to_numpy())
    auc_x = roc_auc_score(test[TARGET], search.predict_pd(test))
    auc_b = roc_auc_score(test[TARGET], base.predict_pd(test))
    print(f"  search: {len(search.search)} trials in {search.train_seconds:.1f}s, best {chosen} x {rounds} rounds")
    print(f"  (a) project training step {proj_s:6.2f} s   (b) bare xgboost.train {bare_s:6.2f} s   "
          f"ratio {proj_s / bare_s:.2f}x (goal <= 1.2x)")
    print(f"  out-of-time AUC: xgboost {auc_x:.4f}, logistic {auc_b:.4f}; Bayes-optimal on the same test "
          f"{oracle:.4f}; gap xgboost {oracle - auc_x:+.4f}, logistic {oracle - auc_b:+.4f} (goal <= 0.01)")
    return {"ratio": proj_s / bare_s, "gap_xgboost": oracle - auc_x, "gap_logistic": oracle - auc_b}


if __name__ == "__main__":
    main()

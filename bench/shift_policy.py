"""Quality after a population shift: recency sample weights / a training window vs the current policy.

The demo's scenario (``creditrisk_assets.demo``: 72 hours x 300 applications, the demo's anomalies,
``product_mix`` from hour 48, outcomes 12 hours after the decision) and the same world without the shift.
Setup per world (not timed): simulate, landing → bronze → silver (``ingest_to_silver``), gold (dbt), the
point-in-time training set at the end of the window (``build_training_set``: what the demo's retrain sees).
Then for every policy, on the same training set and the same out-of-time test split: the logistic baseline
and XGBoost trained with ``dataset.recency_weights`` on the train split (validation and test untouched),
and per model the out-of-time AUC, the Bayes-optimal AUC of the same test applications and the gap (as the
model card reports it). The current policy (every train row, unweighted) is the same-run baseline.

The gap the card reports compares a realised AUC (one draw of ~200 defaults) with an expectation, so it
carries the test set's label noise (± ~0.015 here). The ``noise-free`` gap also reported replaces the
model's realised AUC by its expected AUC given the true PDs of the same applications: what the model's
ranking is worth, without the luck of the draw. Goal: the post-shift champion within 0.01 of the oracle,
without a worse no-shift gap.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bench.common import WORK, scratch
from creditrisk_assets.demo import DEMO_ANOMALIES
from creditrisk_assets.gold.build import run_dbt
from creditrisk_assets.layout import oracle_truth_key
from creditrisk_assets.modeling.dataset import TARGET, TrainingSet, build_training_set, recency_weights
from creditrisk_assets.modeling.evaluate import oracle_gap
from creditrisk_assets.modeling.train import train_baseline, train_xgboost
from creditrisk_assets.quality.runner import ingest_to_silver
from creditrisk_assets.resources import FolderStore, Lake
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import SimulationConfig, bayes_optimal_auc, simulate

GOAL_GAP = 0.01
HURT_TOLERANCE = 0.002  # a no-shift gap worse than the baseline's by more than this hurts
START = dt.datetime(2026, 10, 1)
#: policy → (half-life hours, window hours); 0 is off. The first is the current policy (the baseline).
POLICIES = {"current": (0.0, 0.0), "half-life 48 h": (48.0, 0.0), "half-life 24 h": (24.0, 0.0),
            "half-life 12 h": (12.0, 0.0), "window 24 h": (0.0, 24.0)}
QUICK_POLICIES = ("current", "half-life 24 h", "window 24 h")
MODELS = ("logistic", "xgboost")


@dataclass
class World:
    scenario: str
    seed: int
    ts: TrainingSet
    true_pd: pd.Series  # indexed like ts.frame
    shift_start: dt.datetime | None


def build_world(scenario: str, seed: int, hours: int, rows_per_hour: int, drift_hour: int, reuse: bool) -> World:
    """Simulate → silver → gold → the training set of the demo's retrain (every matured label)."""
    name = f"shift_policy/{scenario}-{seed}-{hours}h-{rows_per_hour}-{drift_hour}"
    built = WORK / name / "built"
    work = scratch(name, fresh=not (reuse and built.exists()))
    settings = Settings.from_env({"CREDITRISK_HOME": str(work / "home")})
    store, lake = FolderStore(settings.resolved_store_root), Lake(settings)
    drifted = scenario != "none"
    if not built.exists():
        cfg = SimulationConfig(start=START.strftime("%Y-%m-%dT%H:%M"), hours=hours, rows_per_hour=rows_per_hour,
                               seed=seed, anomalies=DEMO_ANOMALIES, drift=scenario,
                               drift_start_hour=drift_hour if drifted else None, run_name="shift")
        simulate(cfg, store)
        truth = pd.read_parquet(store.uri(oracle_truth_key(cfg.run_name)))
        truth[["SK_ID_CURR", "TRUE_PD"]].to_parquet(work / "truth.parquet")
        ingest_to_silver(store, lake, settings, [START + dt.timedelta(hours=h) for h in range(hours)], "bench")
        run_dbt(settings, ["run", "--full-refresh"])
        built.touch()
    con = lake.connect_lake()
    try:
        ts = build_training_set(con, snapshot_id=Lake.snapshot_id(con))
    finally:
        con.close()
    truth = pd.read_parquet(work / "truth.parquet").set_index("SK_ID_CURR")["TRUE_PD"]
    true_pd = pd.Series(truth.loc[ts.frame["sk_id_curr"].to_numpy()].to_numpy(), index=ts.frame.index)
    return World(scenario, seed, ts, true_pd, START + dt.timedelta(hours=drift_hour) if drifted else None)


def expected_auc(score: np.ndarray, true_pd: np.ndarray) -> float:
    """Expected AUC of ranking by ``score`` when each label is Bernoulli(``true_pd``) (the ratio of expected
    pair counts, as ``bayes_optimal_auc``, which is this with ``score = true_pd``); ties count one half."""
    order = np.argsort(score, kind="mergesort")
    s, p = np.asarray(score, dtype=float)[order], np.asarray(true_pd, dtype=float)[order]
    q = 1.0 - p
    _, first = np.unique(s, return_index=True)
    p_group, q_group = np.add.reduceat(p, first), np.add.reduceat(q, first)
    q_below = np.cumsum(q_group) - q_group
    numerator = np.sum(p_group * q_below) + 0.5 * (np.sum(p_group * q_group) - np.sum(p * q))
    return float(numerator / (p.sum() * q.sum() - np.sum(p * q)))


def auc_se(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil's standard error of an AUC on this many defaults / non-defaults: the label noise."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    return math.sqrt((auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc))
                     / (positives * negatives))


def run_policy(world: World, policy: str, trials: int) -> dict[str, float | int | str]:
    ts = world.ts
    train, valid, test = ts.part("train"), ts.part("valid"), ts.part("test")
    half_life, window = POLICIES[policy]
    weights = None if (half_life, window) == (0.0, 0.0) else recency_weights(train["decision_time"], half_life, window)
    models = {"logistic": train_baseline(train, ts.features, ts.categorical, valid=valid, sample_weight=weights),
              "xgboost": train_xgboost(train, valid, ts.features, ts.categorical, trials=trials, time_budget_s=300,
                                       sample_weight=weights)}
    y, true_pd = test[TARGET].to_numpy(), world.true_pd.loc[test.index].to_numpy()
    oracle = bayes_optimal_auc(true_pd)
    w = np.ones(len(train)) if weights is None else weights
    row: dict[str, float | int | str] = {
        "scenario": world.scenario, "seed": world.seed, "policy": policy, "oracle": oracle,
        "effective_train_rows": round(float(w.sum() ** 2 / np.square(w).sum()))}
    for kind, model in models.items():
        p = model.predict_pd(test)
        row[f"auc_{kind}"] = float(roc_auc_score(y, p))
        row[f"gap_{kind}"] = float(oracle_gap(float(row[f"auc_{kind}"]), oracle))  # type: ignore[arg-type]
        row[f"clean_gap_{kind}"] = oracle - expected_auc(p, true_pd)
    champion = max(MODELS, key=lambda k: float(row[f"auc_{k}"]))  # as ml/evaluation picks it
    row["champion"] = champion
    row["gap_champion"], row["clean_gap_champion"] = row[f"gap_{champion}"], row[f"clean_gap_{champion}"]
    return row


def describe_world(world: World) -> str:
    frame, test = world.ts.frame, world.ts.part("test")
    after = (lambda part: int((part["decision_time"] >= world.shift_start).sum())) if world.shift_start else (lambda part: 0)
    y = test[TARGET].to_numpy()
    se = auc_se(bayes_optimal_auc(world.true_pd.loc[test.index].to_numpy()), int(y.sum()), int(len(y) - y.sum()))
    splits = ", ".join(f"{s} {len(world.ts.part(s)):,} ({after(world.ts.part(s)):,} post-shift)"
                       for s in ("train", "valid", "test"))
    return (f"{len(frame):,} matured applications ({splits}); "
            f"{int(y.sum())} test defaults: label noise of one test AUC ±{se:.3f}")


def print_table(rows: list[dict[str, float | int | str]]) -> None:
    print("\n| scenario | seed | policy | effective train rows | AUC logistic | AUC XGBoost | oracle | gap logistic "
          "| gap XGBoost | gap champion | noise-free gap logistic | noise-free gap XGBoost |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scenario']} | {r['seed']} | {r['policy']} | {int(r['effective_train_rows']):,} | "
              f"{float(r['auc_logistic']):.4f} | {float(r['auc_xgboost']):.4f} | {float(r['oracle']):.4f} | "
              f"{float(r['gap_logistic']):+.4f} | {float(r['gap_xgboost']):+.4f} | "
              f"{float(r['gap_champion']):+.4f} ({r['champion']}) | {float(r['clean_gap_logistic']):+.4f} | "
              f"{float(r['clean_gap_xgboost']):+.4f} |")


def summarise(rows: list[dict[str, float | int | str]], policies: list[str]) -> dict[tuple[str, str], dict[str, float]]:
    frame = pd.DataFrame(rows)
    cols = ["gap_logistic", "gap_xgboost", "gap_champion", "clean_gap_logistic", "clean_gap_xgboost", "clean_gap_champion"]
    mean = frame.groupby(["scenario", "policy"])[cols].mean()
    print(f"\nmean over seeds {sorted(set(frame['seed']))}:")
    print("| scenario | policy | gap logistic | gap XGBoost | gap champion | noise-free logistic | noise-free XGBoost "
          "| noise-free champion |")
    print("|---|---|---|---|---|---|---|---|")
    out = {}
    for scenario in dict.fromkeys(frame["scenario"]):
        for policy in policies:
            m = mean.loc[(scenario, policy)]
            out[(str(scenario), policy)] = {c: float(m[c]) for c in cols}
            print(f"| {scenario} | {policy} | " + " | ".join(f"{m[c]:+.4f}" for c in cols) + " |")
    return out


def verdict(mean: dict[tuple[str, str], dict[str, float]], policies: list[str], shifted: str) -> None:
    base = policies[0]
    print(f"\ngoal: post-shift champion gap <= {GOAL_GAP} (mean over seeds), no-shift gap not worse than "
          f"`{base}` by > {HURT_TOLERANCE}")
    for policy in policies:
        for key in ("gap_champion", "clean_gap_champion"):
            post = mean[(shifted, policy)][key]
            hurt = ("none", policy) in mean and mean[("none", policy)][key] > mean[("none", base)][key] + HURT_TOLERANCE
            print(f"  {policy:<16} {'noise-free ' if key.startswith('clean') else 'card      '} gap after the shift "
                  f"{post:+.4f} ({post - mean[(shifted, base)][key]:+.4f} vs {base}): "
                  f"{'MET' if post <= GOAL_GAP else 'missed'}{', hurts no-shift' if hurt else ''}")


def main(argv: list[str] | None = None) -> list[dict[str, float | int | str]]:
    ap = argparse.ArgumentParser(prog="bench/shift_policy.py", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="7,8", help="comma-separated simulator seeds (7: the demo's)")
    ap.add_argument("--drift", default="product_mix", help="the shifted scenario (the demo's)")
    ap.add_argument("--hours", type=int, default=72)
    ap.add_argument("--rows-per-hour", type=int, default=300)
    ap.add_argument("--drift-hour", type=int, default=48)
    ap.add_argument("--trials", type=int, default=1,
                    help="XGBoost search trials (the pipeline: 6; 1 = its first, default configuration)")
    ap.add_argument("--policies", default="", help=f"comma-separated subset of: {', '.join(POLICIES)}")
    ap.add_argument("--quick", action="store_true", help=f"seed 7 only, policies {', '.join(QUICK_POLICIES)}")
    ap.add_argument("--reuse", action="store_true", help="reuse worlds built by an earlier run (bench/.work)")
    args = ap.parse_args(argv)
    seeds = [7] if args.quick else [int(s) for s in args.seeds.split(",")]
    chosen = [p.strip() for p in args.policies.split(",") if p.strip()]
    policies = list(QUICK_POLICIES if args.quick else chosen or POLICIES)
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        ap.error(f"unknown policies {unknown}: expected some of {', '.join(POLICIES)}")
    if policies[0] != "current":
        policies.insert(0, "current")  # the same-run baseline
    rows = []
    for seed in seeds:
        for scenario in (args.drift, "none"):
            t0 = time.perf_counter()
            world = build_world(scenario, seed, args.hours, args.rows_per_hour, args.drift_hour, args.reuse)
            print(f"  --- {scenario}, seed {seed}: {describe_world(world)} (setup {time.perf_counter() - t0:.0f}s)",
                  flush=True)
            for policy in policies:
                t0 = time.perf_counter()
                rows.append(run_policy(world, policy, args.trials))
                r = rows[-1]
                print(f"      {policy:<16} gap logistic {float(r['gap_logistic']):+.4f} xgboost "
                      f"{float(r['gap_xgboost']):+.4f}; noise-free {float(r['clean_gap_logistic']):+.4f} / "
                      f"{float(r['clean_gap_xgboost']):+.4f} ({time.perf_counter() - t0:.0f}s)", flush=True)
    print_table(rows)
    verdict(summarise(rows, policies), policies, args.drift)
    return rows


if __name__ == "__main__":
    main()

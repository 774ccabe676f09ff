"""Round trip with a known truth: the simulator's world in the published Home Credit layout, imported
(`creditrisk import homecredit`), through the real asset graph (bronze → silver → gold by dbt), trained;
the out-of-time AUC matches the native path within noise, and every imported row is accounted for."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from creditrisk_assets.contracts import TABLES
from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.ingest.homecredit import ImportOptions, import_homecredit
from creditrisk_assets.layout import partition_key
from creditrisk_assets.modeling.dataset import TARGET, TrainingSet, build_training_set
from creditrisk_assets.modeling.train import train_baseline, train_xgboost
from creditrisk_assets.resources import Lake, object_store_from_settings
from creditrisk_assets.settings import Settings
from creditrisk_assets.simulate import SimulationConfig, simulate
from creditrisk_assets.simulate.homecredit import export_homecredit

pytestmark = pytest.mark.integration

START = dt.datetime(2026, 10, 1)
HOURS, PER_HOUR, SEED, DELAY = 36, 160, 31, 6
#: paired comparison on the same applications and labels: the two paths differ only in how times are
#: carried (relative days / months re-anchored), so their AUCs differ far less than the sampling error
#: of one AUC (~0.02 on ~850 out-of-time applications)
AUC_TOLERANCE = 0.015


@dataclass
class PathResult:
    ts: TrainingSet
    aucs: dict[str, float]  # out-of-time AUC per model kind
    checks: dict[str, bool]  # silver row_accounting per table
    counts: dict[str, tuple[int, int, int]]  # table → (bronze, silver, quarantined) from the check metadata


def _config() -> SimulationConfig:
    return SimulationConfig(start=START.strftime("%Y-%m-%dT%H:%M"), hours=HOURS, rows_per_hour=PER_HOUR, seed=SEED,
                            outcome_delay_hours=DELAY)


def _settings(tmp: Path) -> Settings:
    return Settings.from_env({"CREDITRISK_HOME": str(tmp / "home")})


def _through_the_graph(settings: Settings, last_hour: dt.datetime) -> PathResult:
    """The `ingest` job (bronze, silver + row accounting, gold by dbt) over every landed hour, then training."""
    job = build_definitions(settings).resolve_job_def("ingest")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, tags={
        "dagster/asset_partition_range_start": partition_key(START),
        "dagster/asset_partition_range_end": partition_key(last_hour)})
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    checks, counts = {}, {}
    for ev in result.get_asset_check_evaluations():
        if ev.check_name == "row_accounting":
            table = ev.asset_key.path[-1]
            checks[table] = ev.passed
            md = {k: v.value for k, v in ev.metadata.items()}
            counts[table] = (int(md["bronze_rows"]), int(md["silver_rows"]), int(md["quarantined_rows"]))
    con = Lake(settings).connect_lake()
    try:
        ts = build_training_set(con, snapshot_id=Lake.snapshot_id(con))
    finally:
        con.close()
    train, valid, test = ts.part("train"), ts.part("valid"), ts.part("test")
    models = {"baseline": train_baseline(train, ts.features, ts.categorical, valid=valid),
              "xgboost": train_xgboost(train, valid, ts.features, ts.categorical, trials=1, time_budget_s=120)}
    aucs = {kind: float(roc_auc_score(test[TARGET], m.predict_pd(test))) for kind, m in models.items()}
    return PathResult(ts, aucs, checks, counts)


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> PathResult:
    settings = _settings(tmp_path_factory.mktemp("native"))
    simulate(_config(), object_store_from_settings(settings))
    return _through_the_graph(settings, START + dt.timedelta(hours=HOURS - 1))


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> tuple[PathResult, dict, Path]:
    tmp = tmp_path_factory.mktemp("homecredit")
    exported = export_homecredit(_config(), tmp / "kaggle")
    settings = _settings(tmp)
    store = object_store_from_settings(settings)
    imported = import_homecredit(ImportOptions(source=exported.out, start=START, per_hour=exported.per_hour,
                                               id_base=exported.id_base, outcome_delay_hours=DELAY), store)
    accounting = {name: (t.read, t.written, t.rejected_rows, t.balanced) for name, t in imported.tables.items()}
    landed = {name: sum(n for k, n in imported.landing_keys.items() if k.startswith(f"landing/{name}/"))
              for name in imported.tables}
    path = _through_the_graph(settings, imported.hours[-1])
    return path, {"accounting": accounting, "landed": landed, "files": exported.files}, exported.truth_file


def test_every_published_file_is_imported_and_balanced(round_trip: tuple[PathResult, dict, Path]) -> None:
    path, report, _ = round_trip
    expected = {t for t in TABLES if TABLES[t].homecredit is not None}
    assert set(report["accounting"]) == expected, "every table with a Home Credit mapping is imported"
    for name, (read, written, rejected, balanced) in report["accounting"].items():
        assert balanced and read == written + rejected, name
        assert rejected == 0, f"{name}: a clean export has nothing that cannot be placed in time"
        assert report["landed"][name] == written, f"{name}: landing files hold exactly the written rows"
    assert report["accounting"]["pos_cash_balance"][0] > 0, "POS_CASH_balance is the eighth source"


def test_every_imported_row_is_in_silver_or_quarantine(round_trip: tuple[PathResult, dict, Path]) -> None:
    path, report, _ = round_trip
    assert set(path.checks) == set(TABLES) and all(path.checks.values())
    for name, (bronze, silver, quarantined) in path.counts.items():
        if name in report["landed"]:
            assert bronze == report["landed"][name], f"{name}: every landed row reached bronze"
        assert bronze == silver + quarantined, name
        # the only rows of a clean export silver may refuse are dated after the outcome window is known
        assert quarantined == 0, f"{name}: {quarantined} clean rows quarantined"


def test_round_trip_auc_matches_the_native_path(native: PathResult,
                                                round_trip: tuple[PathResult, dict, Path]) -> None:
    path, _, truth_file = round_trip
    native_ids = set(native.ts.frame["sk_id_curr"])
    assert set(path.ts.frame["sk_id_curr"]) == native_ids, "the same matured applications on both paths"
    assert path.ts.features == native.ts.features, "the same features survive on both paths"
    for kind in ("baseline", "xgboost"):
        gap = abs(path.aucs[kind] - native.aucs[kind])
        assert gap <= AUC_TOLERANCE, f"{kind}: round trip {path.aucs[kind]:.4f} vs native {native.aucs[kind]:.4f}"
    truth = pq.read_table(truth_file).to_pandas().set_index("SK_ID_CURR")
    test = path.ts.part("test")
    oracle = float(roc_auc_score(test[TARGET], truth.loc[test["sk_id_curr"], "TRUE_PD"].to_numpy()))
    assert np.array_equal(truth.loc[test["sk_id_curr"], "TARGET"].to_numpy(), test[TARGET].to_numpy()), \
        "labels survive the round trip unchanged"
    assert max(path.aucs.values()) > 0.5 + 0.5 * (oracle - 0.5), "the model learns real signal after the trip"
    print(pd.DataFrame({"native": native.aucs, "round_trip": path.aucs}).assign(oracle=oracle).to_string())



def test_every_feature_survives_the_round_trip(native: PathResult, round_trip: tuple[PathResult, dict, Path]) -> None:
    """Relative days / months re-anchored on the same decision hour give the same features (floats to 1e-9:
    sums may add in another order); only the second within the hour of the decision time differs."""
    path, _, _ = round_trip
    a = native.ts.frame.set_index("sk_id_curr").sort_index()
    b = path.ts.frame.set_index("sk_id_curr").sort_index()
    assert (a["decision_time"].dt.floor("h") == b["decision_time"].dt.floor("h")).all()
    differ = {}
    for f in native.ts.features:
        x, y = a[f], b[f]
        if f in native.ts.categorical:
            same = (x.isna() & y.isna()) | (x == y)
        else:
            same = pd.Series(np.isclose(x.astype(float), y.astype(float), rtol=1e-9, atol=1e-12, equal_nan=True),
                             index=x.index)
        if not same.all():
            differ[f] = int((~same).sum())
    assert not differ, f"features that changed in the round trip (rows): {differ}"

"""What runs by itself under ``make dev``: the automation conditions on the assets, evaluated as the
daemon's automation sensor would (``dg.evaluate_automation_conditions`` at chosen times, on a real
ephemeral instance), the sensor that evaluates them, and the freshness policies."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import dagster as dg
import pytest

from creditrisk_assets.assets.monitoring import DRIFT_AUTOMATION, PERFORMANCE_AUTOMATION
from creditrisk_assets.assets.serving import COLLECT_CRON, PREDICTION_LOG_AUTOMATION
from creditrisk_assets.assets.silver import PROFILE_AUTOMATION
from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.sensors import AUTOMATION_SENSOR, WATCHED_FOR_STALENESS
from creditrisk_assets.settings import Settings

PREDICTION_LOG = dg.AssetKey(["serving", "prediction_log"])
DRIFT = dg.AssetKey(["monitoring", "drift"])
PERFORMANCE = dg.AssetKey(["monitoring", "performance"])
PROFILE = dg.AssetKey(["silver", "profile"])
GOLD = dg.AssetKey(["gold", "applicant_features"])
#: 10:03 UTC, two minutes before a collection tick
T0 = dt.datetime(2026, 10, 2, 10, 3, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def defs(tmp_path_factory: pytest.TempPathFactory) -> dg.Definitions:
    return build_definitions(Settings.from_env({"CREDITRISK_HOME": str(tmp_path_factory.mktemp("automation"))}))


class Ticks:
    """Successive evaluations of every automation condition (what each tick of the sensor does)."""

    def __init__(self, defs: dg.Definitions) -> None:
        self.defs, self.instance, self.cursor = defs, dg.DagsterInstance.ephemeral(), None

    def at(self, minutes: int) -> dict[str, set[str | None]]:
        """Evaluate at T0 + ``minutes``: the requested partitions per asset (None: unpartitioned)."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor,
                                                   evaluation_time=T0 + dt.timedelta(minutes=minutes))
        self.cursor = result.cursor
        graph = self.defs.resolve_asset_graph()
        return {k.to_user_string(): set(result.get_requested_partitions(k))
                for k in graph.get_all_asset_keys() if result.get_num_requested(k)}

    def materialised(self, key: dg.AssetKey, partition: str | None = None) -> None:
        self.instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def test_conditions_sit_on_the_automated_assets(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    conditioned = {k: graph.get(k).automation_condition for k in graph.get_all_asset_keys()
                   if graph.get(k).automation_condition is not None}
    assert conditioned == {PREDICTION_LOG: PREDICTION_LOG_AUTOMATION, DRIFT: DRIFT_AUTOMATION,
                           PERFORMANCE: PERFORMANCE_AUTOMATION, PROFILE: PROFILE_AUTOMATION}
    assert COLLECT_CRON in (DRIFT_AUTOMATION.get_label() or "")  # monitoring ticks with the collection


def test_the_automation_sensor_runs_by_default_and_covers_every_condition(defs: dg.Definitions) -> None:
    sensor = defs.resolve_sensor_def(AUTOMATION_SENSOR)
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING  # Dagster's own default one starts stopped
    graph = defs.resolve_asset_graph()
    assert sensor.asset_selection is not None
    assert {PREDICTION_LOG, DRIFT, PERFORMANCE, PROFILE} <= sensor.asset_selection.resolve(graph)
    automation = [s.name for s in defs.get_repository_def().sensor_defs
                  if isinstance(s, dg.AutomationConditionSensorDefinition)]
    assert automation == [AUTOMATION_SENSOR]  # Dagster added no second, stopped, default sensor


def test_no_job_or_schedule_is_left_for_the_demo_alone(defs: dg.Definitions) -> None:
    jobs = {j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")}
    assert jobs == {"ingest", "train_and_promote", "retrain_and_deploy", "deploy_champion", "monitor"}
    assert [s.name for s in defs.get_repository_def().schedule_defs] == []  # scheduled_retrain only with its cron


def test_the_prediction_log_is_collected_every_hour_then_drift_runs(defs: dg.Definitions) -> None:
    ticks = Ticks(defs)
    assert ticks.at(0) == {}  # first evaluation: nothing is owed yet
    # 10:05 passed: the hour that just closed and the open one, in one request
    assert ticks.at(3) == {"serving/prediction_log": {"2026-10-02-09:00", "2026-10-02-10:00"}}
    assert ticks.at(4) == {}  # handled: not again until the next tick
    ticks.materialised(PREDICTION_LOG, "2026-10-02-09:00")
    ticks.materialised(PREDICTION_LOG, "2026-10-02-10:00")
    assert ticks.at(5) == {"monitoring/drift": {None}}  # collected since the tick: monitoring follows
    assert ticks.at(6) == {}
    # 11:05: the next two hours; drift waits for them, whether gold moved or not
    assert ticks.at(63) == {"serving/prediction_log": {"2026-10-02-10:00", "2026-10-02-11:00"}}
    assert ticks.at(64) == {}
    ticks.materialised(PREDICTION_LOG, "2026-10-02-11:00")
    assert ticks.at(65) == {"monitoring/drift": {None}}


def test_performance_follows_the_ingest_after_a_tick(defs: dg.Definitions) -> None:
    ticks = Ticks(defs)
    ticks.at(0)
    ticks.at(3)  # the 10:05 tick
    ticks.materialised(GOLD, "2026-10-02-09:00")
    assert "monitoring/performance" not in ticks.at(4)  # the loan outcomes are not in yet
    ticks.materialised(dg.AssetKey(["silver", "loan_outcome"]), "2026-10-02-09:00")
    assert ticks.at(5)["monitoring/performance"] == {None}
    assert "monitoring/performance" not in ticks.at(6)


def test_the_silver_profile_follows_every_silver_update(defs: dg.Definitions) -> None:
    ticks = Ticks(defs)
    assert "silver/profile" not in ticks.at(-30)
    ticks.materialised(dg.AssetKey(["silver", "application"]), "2026-10-02-08:00")  # other hours never landed
    assert ticks.at(-29) == {"silver/profile": {None}}
    assert ticks.at(-28) == {}
    ticks.materialised(dg.AssetKey(["silver", "bureau"]), "2026-10-02-08:00")
    assert ticks.at(-27) == {"silver/profile": {None}}


def test_freshness_policies_on_gold_the_prediction_log_and_drift(tmp_path: Path) -> None:
    defs = build_definitions(Settings.from_env({"CREDITRISK_HOME": str(tmp_path),
                                                "CREDITRISK_FRESHNESS_MAX_LAG_HOURS": "4"}))
    graph = defs.resolve_asset_graph()
    policies = {k: graph.get(k).freshness_policy for k in graph.get_all_asset_keys()
                if graph.get(k).freshness_policy is not None}
    assert set(policies) == set(WATCHED_FOR_STALENESS) == {GOLD, PREDICTION_LOG, DRIFT}
    assert all(p == dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=4),
                                                   warn_window=dt.timedelta(hours=2)) for p in policies.values())
    # the superseded last-update freshness checks are gone
    assert not [c for k in graph.get_all_asset_keys() for c in graph.get(k).check_keys if "freshness" in c.name]


def test_building_the_definitions_warns_of_no_deprecation(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # whatever filter the package or pytest installed
        build_definitions(Settings.from_env({"CREDITRISK_HOME": str(tmp_path)}))
    deprecated = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
                  if issubclass(w.category, DeprecationWarning | FutureWarning | dg.PreviewWarning)]
    assert not deprecated, deprecated

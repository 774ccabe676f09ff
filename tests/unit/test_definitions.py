"""The one Definitions loads, and its asset graph matches the reviewed snapshot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from creditrisk_assets.definitions import build_definitions
from creditrisk_assets.settings import Settings

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "asset_graph.json"


def freshness(policy: dg.FreshnessPolicy | None) -> str | None:
    """``fail <window>[, warn <window>]`` of a time-window freshness policy."""
    if policy is None:
        return None
    windows = {"fail": getattr(policy, "fail_window", None), "warn": getattr(policy, "warn_window", None)}
    return ", ".join(f"{name} {w.to_timedelta()}" for name, w in windows.items() if w is not None) or repr(policy)


def graph_snapshot(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    nodes = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        nodes[key.to_user_string()] = {
            "group": node.group_name,
            "partitioned": node.partitions_def is not None,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
            "automation": node.automation_condition.get_label() if node.automation_condition else None,
            "freshness": freshness(node.freshness_policy),
        }
    return nodes


def test_definitions_load_and_validate(tmp_path: Path) -> None:
    defs = build_definitions(Settings.from_env({"CREDITRISK_HOME": str(tmp_path)}))
    dg.Definitions.validate_loadable(defs)
    assert {j.name for j in defs.resolve_all_job_defs()} >= {"ingest", "monitor"}
    assert defs.resolve_sensor_def("landing_sensor")
    # everything that runs by itself under `make dev` is on by default: nothing to switch on in the UI
    repo = defs.get_repository_def()
    assert {s.name for s in repo.sensor_defs if s.default_status != dg.DefaultSensorStatus.RUNNING} == set()
    assert {s.name for s in repo.schedule_defs if s.default_status != dg.DefaultScheduleStatus.RUNNING} == set()


def test_asset_graph_matches_snapshot(tmp_path: Path) -> None:
    got = graph_snapshot(build_definitions(Settings.from_env({"CREDITRISK_HOME": str(tmp_path)})))
    for key, node in got.items():  # house rule: key prefix = group = layer
        assert key.split("/")[0] == node["group"], key
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(SNAPSHOT.read_text()), "asset graph changed: review, then UPDATE_SNAPSHOTS=1 pytest"

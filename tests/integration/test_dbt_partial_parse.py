"""The hourly path keeps dbt's partial parse: a new partition window is not a new parse.

dbt re-parses the whole project when ``--vars`` change or when the saved parse is from another profile or
folder; the window now reaches dbt through its environment (read only while executing) and every invocation
of a data home uses the home's stable target folder. What dbt decided is read from its own log: the second of
two back-to-back windows must log ``Partial parsing enabled: 0 files deleted, 0 files added, 0 files changed``
(with the window in ``--vars`` it logged ``Unable to do partial parsing because config vars ... have changed``;
in a fresh per-run Dagster target, ``... because profile has changed``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from creditrisk_assets.gold.build import BuildWindow, run_dbt, target_dir
from creditrisk_assets.resources import Lake, ObjectStore
from creditrisk_assets.settings import Settings
from tests.helpers import build_silver_hours, gold_features

pytestmark = pytest.mark.integration
START = dt.datetime(2026, 10, 1)
HOURS = [START + dt.timedelta(hours=h) for h in range(2)]
NOTHING_REPARSED = "Partial parsing enabled: 0 files deleted, 0 files added, 0 files changed."


def dbt_log(folder: Path) -> str:
    """dbt's log in ``folder``, rotated parts (``dbt.log.2``, ``dbt.log.1``: ~10 MB each) first."""
    parts = sorted(folder.glob("dbt.log.*"), key=lambda p: -int(p.suffix[1:]))
    return "".join(p.read_text() for p in [*parts, folder / "dbt.log"])


def last_invocation(log: str) -> str:
    """The part of a dbt log written by its last invocation (dbt appends; each starts with its version)."""
    starts = [m.start() for m in re.finditer(r"Running with dbt=", log)]
    assert starts, "no dbt invocation in the log"
    return log[starts[-1]:]


def parse_outcome(log: str) -> list[str]:
    """What dbt said about re-using its previous parse, in the last invocation of ``log``."""
    return re.findall(r"(Partial parsing enabled: [^\"\n]*\.|Unable to do partial parsing because [^\"\n]*)",
                      last_invocation(log))


gold = gold_features


@pytest.fixture()
def silver_built(settings: Settings, folder_store: ObjectStore) -> Settings:
    build_silver_hours(settings, folder_store, HOURS, rows_per_hour=15, seed=8)
    return settings


def test_a_new_window_reuses_the_previous_parse(silver_built: Settings) -> None:
    con = Lake(silver_built).connect_lake()
    try:
        snapshot = Lake.snapshot_id(con)
    finally:
        con.close()
    logs = target_dir(silver_built).parent / "logs"
    first, second = (BuildWindow.between(h, h + dt.timedelta(hours=1), snapshot) for h in HOURS)
    run_dbt(silver_built, ["run"], first)
    out = run_dbt(silver_built, ["run"], second)
    assert "Unable to do partial parsing" not in out, out
    assert parse_outcome(dbt_log(logs)) == [NOTHING_REPARSED]
    # ... and the second window is what dbt built: its bounds and the pinned snapshot are in the compiled SQL
    compiled = target_dir(silver_built) / "compiled" / "creditrisk" / "models"
    in_window = (compiled / "intermediate" / "int_applications_in_window.sql").read_text()
    assert f"cast('{second.start_hour}' as timestamp)" in in_window and f"'{second.end_hour}'" in in_window
    assert f"at (version => {snapshot})" in (compiled / "staging" / "stg_application.sql").read_text()
    # a full rebuild (no window, latest silver) is a new parse neither
    run_dbt(silver_built, ["run", "--full-refresh"])
    assert parse_outcome(dbt_log(logs)) == [NOTHING_REPARSED]
    assert "cast(" not in (compiled / "intermediate" / "int_applications_in_window.sql").read_text()


def test_dagster_partition_runs_back_to_back_reuse_the_parse_and_equal_a_full_rebuild(
        silver_built: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    import dagster_dbt.core.dbt_cli_invocation as invocation
    import dagster_dbt.core.resource as resource

    from creditrisk_assets.definitions import build_definitions

    started: list[str] = []  # the command of every dbt process a run starts: one `build`, no `--version` probe
    real_popen, real_check_output = subprocess.Popen, resource.check_output

    def record(args: list[str]) -> None:
        if Path(args[0]).name == "dbt":
            started.append(next((a for a in args[1:] if not a.startswith("-")), " ".join(args[1:])))

    def popen(args: list[str], **kwargs: Any) -> subprocess.Popen:
        record(args)
        return real_popen(args, **kwargs)

    def check_output(args: list[str], **kwargs: Any) -> bytes:
        record(args)
        return real_check_output(args, **kwargs)

    monkeypatch.setattr(invocation.subprocess, "Popen", popen)
    monkeypatch.setattr(resource, "check_output", check_output)

    defs = build_definitions(silver_built)
    gold_keys = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == "gold"]
    job = defs.resolve_job_def("ingest")
    instance = dg.DagsterInstance.ephemeral()
    logs = target_dir(silver_built)  # Dagster's dbt logs into its target folder
    outcomes, windows = [], []
    for hour in HOURS:
        result = job.execute_in_process(instance=instance, partition_key=f"{hour:%Y-%m-%d-%H:%M}",
                                        asset_selection=gold_keys)
        assert result.success
        outcomes.append(parse_outcome(dbt_log(logs)))
        windows += [m.metadata["window"].value for m in result.asset_materializations_for_node("gold_dbt")
                    if m.asset_key == dg.AssetKey(["gold", "applicant_features"])]
    assert outcomes[1] == [NOTHING_REPARSED], outcomes
    assert started == ["build"] * len(HOURS), started
    assert windows == [f"{h:%Y-%m-%d %H}:00:00 .. {h + dt.timedelta(hours=1):%Y-%m-%d %H}:00:00" for h in HOURS]
    # one stable target folder per home: no per-run folder under it
    assert list(target_dir(silver_built).glob("gold_dbt-*")) == []
    incremental = gold(silver_built)
    run_dbt(silver_built, ["run", "--full-refresh"])
    assert len(incremental) > 0
    pd.testing.assert_frame_equal(incremental, gold(silver_built))

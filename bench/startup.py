"""Start-up cost: what every ``dagster`` CLI call, code server, run worker and step subprocess pays.

1. Loading the Definitions against ``import dagster, dagster_dbt`` (the floor any Dagster + dbt code
   location pays), each in fresh interpreters, median of N; goal ≤ 1.5×. Prints the heaviest imports.
2. One landed hour → gold (the ``ingest`` job's assets for one partition) through
   ``dagster asset materialize`` against the same work in process (``execute_in_process`` in a
   warm interpreter), on the same simulated data; prints the ratio and where the CLI's time goes
   (process start + code-location load, each step's own time, Dagster's per-step overhead).
3. One landed hour → gold through the daemon (``--daemon-hours N``): ``dagster-daemon run`` on the project's
   workspace, the landing sensor polling every ``CREDITRISK_SENSOR_INTERVAL_S`` (5 s here); the hour's files
   are copied into the landing folder and the clock stops at gold's materialisation of that partition. Split
   into: until the sensor's run exists (polling), until it starts (queue + launch), the run itself.

    .venv/bin/python -m bench.startup [--repeat 5] [--rows-per-hour 300] [--daemon-hours 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import scratch

BIN = Path(sys.executable).parent
FLOOR = "import dagster, dagster_dbt"
DEFS = "import creditrisk_assets.definitions"


def _wall(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def heaviest_imports(env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """Packages by the import time the Definitions spend in their own modules (``-X importtime`` self times,
    summed per top-level package)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", DEFS], env=env, check=True,
                         capture_output=True, text=True).stderr
    per_package: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.split(":", 1)[-1].split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        package = parts[2].strip().split(".")[0]
        per_package[package] = per_package.get(package, 0.0) + int(parts[0]) / 1e6
    return sorted(per_package.items(), key=lambda kv: -kv[1])[:top]


def load_ratio(env: dict[str, str], repeat: int) -> tuple[float, float]:
    floor, defs = [], []
    _wall(DEFS, env)  # page cache warm for both
    for _ in range(repeat):  # interleaved: drift on a shared machine hits both alike
        floor.append(_wall(FLOOR, env))
        defs.append(_wall(DEFS, env))
    return statistics.median(floor), statistics.median(defs)


def _ingest_selection() -> str:
    from creditrisk_assets.definitions import defs

    keys = defs.resolve_job_def("ingest").asset_layer.executable_asset_keys
    return ",".join(sorted(k.to_user_string() for k in keys))


def hour_to_gold(env: dict[str, str], rows_per_hour: int) -> dict[str, float]:
    """Simulate two hours; hour 0 in process, hour 1 through the CLI; return the timings."""
    import dagster as dg

    from creditrisk_assets.definitions import build_definitions
    from creditrisk_assets.demo import dagster_instance, run_ingest
    from creditrisk_assets.resources import object_store_from_settings
    from creditrisk_assets.settings import Settings
    from creditrisk_assets.simulate import SimulationConfig, simulate

    settings = Settings.from_env(env)
    start = dt.datetime(2026, 10, 1)
    simulate(SimulationConfig(start=start.strftime("%Y-%m-%dT%H:%M"), hours=2, rows_per_hour=rows_per_hour,
                              seed=11, run_name="startup"), object_store_from_settings(settings))
    instance = dagster_instance(settings)
    defs = build_definitions(settings)
    hours = [(start + dt.timedelta(hours=h)).strftime("%Y-%m-%d-%H:%M") for h in range(2)]
    run_ingest(defs, hours[0], hours[0], instance)  # warm-up: dbt's first parse, lake tables created
    t0 = time.perf_counter()
    result = run_ingest(defs, hours[0], hours[0], instance)  # the same hour again: same work, idempotent
    in_process = time.perf_counter() - t0
    assert result.success
    steps_in_process = _step_seconds(instance, result.run_id)

    cmd = [str(BIN / "dagster"), "asset", "materialize", "-m", "creditrisk_assets.definitions",
           "--select", _ingest_selection(), "--partition", hours[1]]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli = time.perf_counter() - t0
    runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": hours[1]}), limit=1)
    run_id = runs[0].dagster_run.run_id
    stats = instance.get_run_stats(run_id)
    steps_cli = _step_seconds(instance, run_id)
    return {"in_process": in_process, "steps_in_process": sum(steps_in_process.values()), "cli": cli,
            "run": (stats.end_time or 0) - (stats.start_time or 0), "steps_cli": sum(steps_cli.values()),
            "n_steps": len(steps_cli)}


GOLD_KEY = ("gold", "applicant_features")
SENSOR_INTERVAL_S = 5


def hours_through_daemon(work: Path, rows_per_hour: int, n_hours: int, timeout_s: float = 600.0
                         ) -> list[dict[str, float]]:
    """Land ``n_hours`` hours one after another under a running ``dagster-daemon``; per hour, the seconds from
    landing to gold's materialisation of its partition, and where they went."""
    import dagster as dg

    from creditrisk_assets.definitions import build_definitions
    from creditrisk_assets.demo import DAGSTER_YAML, run_ingest
    from creditrisk_assets.layout import LANDING_PREFIX, parse_landing_key
    from creditrisk_assets.resources import FolderStore, object_store_from_settings
    from creditrisk_assets.settings import Settings
    from creditrisk_assets.simulate import SimulationConfig, simulate

    home = (work / "daemon-home").resolve()
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {**os.environ, "CREDITRISK_HOME": str(home), "DAGSTER_HOME": str(dagster_home),
           "CREDITRISK_SENSOR_INTERVAL_S": str(SENSOR_INTERVAL_S)}
    settings = Settings.from_env(env)
    staging, landing = FolderStore(work / "daemon-staging"), object_store_from_settings(settings)
    start = dt.datetime(2026, 10, 1)
    simulate(SimulationConfig(start=start.strftime("%Y-%m-%dT%H:%M"), hours=n_hours + 1,
                              rows_per_hour=rows_per_hour, seed=12, run_name="daemon"), staging)
    by_hour: dict[dt.datetime, list[str]] = {}
    for obj in staging.list(LANDING_PREFIX):
        parsed = parse_landing_key(obj.key)
        if parsed:
            by_hour.setdefault(parsed[1], []).append(obj.key)
    hours = sorted(by_hour)

    def land(hour: dt.datetime) -> None:
        for key in by_hour[hour]:
            landing.put_bytes(key, staging.get_bytes(key))

    instance = dg.DagsterInstance.from_config(str(dagster_home))
    land(hours[0])  # warm: the lake's tables exist and dbt's partial parse is saved, as on a running deployment
    first = hours[0].strftime("%Y-%m-%d-%H:%M")
    assert run_ingest(build_definitions(settings), first, first, instance).success

    log_path = work / "daemon.log"
    root = Path(__file__).resolve().parent.parent
    with open(log_path, "wb") as fh:
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(root / "workspace.yaml")],
                                  cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    results = []
    try:
        _wait_for(lambda: "landing_sensor" in log_path.read_text(errors="replace"), timeout_s, daemon, log_path)
        for hour in hours[1:]:
            partition = hour.strftime("%Y-%m-%d-%H:%M")
            time.sleep(SENSOR_INTERVAL_S)  # land between two ticks, not just after one
            t0 = time.time()
            land(hour)
            record = _wait_for(lambda p=partition: _gold_materialisation(instance, p), timeout_s, daemon, log_path)
            runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": partition}), limit=1)
            run = runs[0]
            stats = instance.get_run_stats(run.dagster_run.run_id)
            created, started = run.create_timestamp.timestamp(), stats.start_time or 0.0
            results.append({"total": record.timestamp - t0, "until_run": created - t0,
                            "until_start": started - created, "run_to_gold": record.timestamp - started,
                            "steps": sum(_step_seconds(instance, run.dagster_run.run_id).values()),
                            # runs the automation conditions launched meanwhile (profile, prediction log, drift)
                            "others": sum(1 for r in instance.get_run_records(
                                dg.RunsFilter(created_after=dt.datetime.fromtimestamp(t0 - 60, dt.UTC)))
                                if r.dagster_run.run_id != run.dagster_run.run_id
                                and (r.end_time or time.time()) > t0 and r.create_timestamp.timestamp() < record.timestamp)})
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
    return results


def _gold_materialisation(instance, partition: str):  # noqa: ANN001, ANN202 - DagsterInstance, EventLogRecord
    import dagster as dg

    found = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(list(GOLD_KEY)), asset_partitions=[partition]), limit=1)
    return found.records[0] if found.records else None


def _wait_for(probe, timeout_s: float, daemon: subprocess.Popen, log_path: Path):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(f"dagster-daemon exited with {daemon.returncode}: see {log_path}")
        found = probe()
        if found:
            return found
        time.sleep(0.25)
    raise SystemExit(f"nothing after {timeout_s:.0f} s: see {log_path}")


def _step_seconds(instance, run_id: str) -> dict[str, float]:  # noqa: ANN001 - a DagsterInstance
    return {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(run_id)
            if s.end_time and s.start_time}  # a step still running (gold's checks) has no end yet


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench/startup.py")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rows-per-hour", type=int, default=300)
    ap.add_argument("--daemon-hours", type=int, default=3, help="hours landed one by one under the daemon (0: skip)")
    ap.add_argument("--only-daemon", action="store_true", help="only the daemon measurement")
    args = ap.parse_args(argv)
    work = scratch("startup")
    home = (work / "home").resolve()
    env = {**os.environ, "CREDITRISK_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]  # the in-process runs use the CLI's instance

    if args.daemon_hours:
        daemon_report(work, args.rows_per_hour, args.daemon_hours)
    if args.only_daemon:
        return
    floor, defs = load_ratio(env, args.repeat)
    print(f"  `{FLOOR}`: {floor:.2f} s   Definitions: {defs:.2f} s   ratio {defs / floor:.2f}x "
          f"(goal <= 1.5x; median of {args.repeat}, fresh interpreters)")
    print("  where the import time goes (-X importtime, own time per package):")
    for name, seconds in heaviest_imports(env):
        print(f"    {name:<28} {seconds:6.2f} s")

    t = hour_to_gold(env, args.rows_per_hour)
    print(f"  one hour -> gold ({args.rows_per_hour} applications + activity): in process {t['in_process']:.1f} s "
          f"(steps {t['steps_in_process']:.1f} s); `dagster asset materialize` {t['cli']:.1f} s; "
          f"ratio {t['cli'] / t['in_process']:.1f}x")
    print(f"  where the CLI's time goes: before the run starts (interpreter + code location + launch) "
          f"{t['cli'] - t['run']:.1f} s; the run {t['run']:.1f} s, of which {t['n_steps']:.0f} steps' own work "
          f"{t['steps_cli']:.1f} s and per-step process start + load {t['run'] - t['steps_cli']:.1f} s "
          f"(the default multiprocess executor starts one interpreter per step)")


def daemon_report(work: Path, rows_per_hour: int, n_hours: int) -> None:
    rows = hours_through_daemon(work, rows_per_hour, n_hours)
    print(f"  one landed hour -> gold through dagster-daemon ({rows_per_hour} applications + activity, "
          f"landing sensor every {SENSOR_INTERVAL_S} s), per hour:")
    print(f"    {'landed -> gold':>15} {'-> run exists':>14} {'-> run starts':>14} {'run -> gold':>12} "
          f"{'steps done':>11} {'runs beside':>12}")
    for r in rows:
        print(f"    {r['total']:14.1f}s {r['until_run']:13.1f}s {r['until_start']:13.1f}s {r['run_to_gold']:11.1f}s "
              f"{r['steps']:10.1f}s {r['others']:12.0f}")
    print(f"    median landed -> gold {statistics.median(r['total'] for r in rows):.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])

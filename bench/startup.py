"""Start-up cost: what every ``dagster`` CLI call, code server, run worker and step subprocess pays.

1. Loading the Definitions against ``import dagster, dagster_dbt`` (the floor any Dagster + dbt code
   location pays), each in fresh interpreters, median of N; goal ≤ 1.5×. Prints the heaviest imports.
2. One landed hour → gold (the ``ingest`` job's assets for one partition) through
   ``dagster asset materialize`` against the same work in process (``execute_in_process`` in a
   warm interpreter), on the same simulated data; prints the ratio and where the CLI's time goes
   (process start + code-location load, each step's own time, Dagster's per-step overhead).

    .venv/bin/python -m bench.startup [--repeat 5] [--rows-per-hour 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
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


def _step_seconds(instance, run_id: str) -> dict[str, float]:  # noqa: ANN001 - a DagsterInstance
    return {s.step_key: (s.end_time or 0) - (s.start_time or 0) for s in instance.get_run_step_stats(run_id)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench/startup.py")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rows-per-hour", type=int, default=300)
    args = ap.parse_args(argv)
    work = scratch("startup")
    home = (work / "home").resolve()
    env = {**os.environ, "CREDITRISK_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]  # the in-process runs use the CLI's instance

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


if __name__ == "__main__":
    main(sys.argv[1:])

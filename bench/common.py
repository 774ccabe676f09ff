"""Shared bits of the benchmarks: a scratch folder, timing, and a uniform report line."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
WORK = Path(__file__).parent / ".work"


def scratch(name: str, fresh: bool = True) -> Path:
    path = WORK / name
    if fresh and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def timed(fn: Callable[[], T], repeat: int = 1) -> tuple[float, T]:
    """Best wall time of ``repeat`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out  # type: ignore[return-value]


def report(label: str, rows: int, seconds: float) -> float:
    rate = rows / seconds if seconds else float("inf")
    print(f"  {label:<44} {rows:>10,} rows  {seconds:8.2f} s  {rate:>12,.0f} rows/s", flush=True)
    return rate


def hourly_application_setup(name: str, argv: list[str] | None, hours: int = 48, rows_per_hour: int = 21_000):
    """(args, settings, store, lake, start hour): the common start of the hourly-application benchmarks."""
    import argparse
    import datetime as dt

    from creditrisk_assets.resources import FolderStore, Lake
    from creditrisk_assets.settings import Settings

    ap = argparse.ArgumentParser(prog=f"bench/{name}.py")
    ap.add_argument("--hours", type=int, default=hours)
    ap.add_argument("--rows-per-hour", type=int, default=rows_per_hour)
    args = ap.parse_args(argv)
    work = scratch(name)
    settings = Settings.from_env({"CREDITRISK_HOME": str(work / "home")})
    return args, settings, FolderStore(settings.resolved_store_root), Lake(settings), dt.datetime(2026, 10, 1)


def silver_setup(name: str, argv: list[str] | None, hours: int, rows_per_hour: int, seed: int):
    """Simulate all tables, then landing → bronze → silver through the project's own functions.

    Returns (settings, store, lake, hour list, simulation result, setup seconds); not timed by callers.
    """
    import datetime as dt
    import time

    from creditrisk_assets.quality.runner import ingest_to_silver
    from creditrisk_assets.simulate import SimulationConfig, simulate

    args, settings, store, lake, start = hourly_application_setup(name, argv, hours, rows_per_hour)
    hour_list = [start + dt.timedelta(hours=h) for h in range(args.hours)]
    t0 = time.perf_counter()
    sim = simulate(SimulationConfig(start=start.strftime("%Y-%m-%dT%H:%M"), hours=args.hours,
                                    rows_per_hour=args.rows_per_hour, seed=seed, run_name="bench"), store)
    ingest_to_silver(store, lake, settings, hour_list, "bench")
    return settings, store, lake, hour_list, sim, time.perf_counter() - t0

"""Run dbt on the gold project: the window it builds, the target folder it writes, and ``run_dbt`` for
running it outside Dagster (tests, benchmarks, by hand) with the same profile, window and target.

The window reaches dbt as environment variables (``BuildWindow.env``), not ``--vars``: dbt re-parses the whole
project whenever ``--vars`` change (~2 s at every hourly partition), and its macros read these variables
only while executing (``macros/window.sql``), so a new window leaves the partial parse valid. The target
folder is one per data home and stable (``dbt_target``), so ``partial_parse.msgpack`` carries each parse to
the next invocation; one invocation at a time writes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..resources import writer_lock
from ..settings import Settings
from .dbt_profiles import PROJECT_DIR, write_profiles

#: the environment variables ``macros/window.sql`` reads, per ``BuildWindow`` field
WINDOW_ENV = {"start_hour": "CREDITRISK_GOLD_START_HOUR", "end_hour": "CREDITRISK_GOLD_END_HOUR",
              "silver_snapshot": "CREDITRISK_GOLD_SILVER_SNAPSHOT"}
HOUR_FORMAT = "%Y-%m-%d %H:%M:%S"


class DbtError(RuntimeError):
    """dbt exited non-zero; the message carries the failing nodes from its output."""


@dataclass(frozen=True)
class BuildWindow:
    """What one gold build computes: the applications decided in [start_hour, end_hour) (every application
    when both are unset: a full rebuild), from silver read at lake snapshot ``silver_snapshot`` (the latest
    when unset)."""

    start_hour: str | None = None
    end_hour: str | None = None
    silver_snapshot: int | None = None

    def __post_init__(self) -> None:
        if (self.start_hour is None) != (self.end_hour is None):
            raise ValueError(f"a window has both ends or neither: start_hour={self.start_hour!r}, "
                             f"end_hour={self.end_hour!r}")
        for end in (self.start_hour, self.end_hour):
            if end is not None:
                dt.datetime.strptime(end, HOUR_FORMAT)  # noqa: DTZ007 - naive UTC, as silver's decision times

    @classmethod
    def between(cls, start: dt.datetime, end: dt.datetime, silver_snapshot: int | None = None) -> BuildWindow:
        return cls(start.strftime(HOUR_FORMAT), end.strftime(HOUR_FORMAT), silver_snapshot)

    def env(self) -> dict[str, str]:
        """The variables for dbt's environment: every one set (empty when unset), so a value inherited from
        the caller's environment never narrows a build."""
        values = {"start_hour": self.start_hour, "end_hour": self.end_hour, "silver_snapshot": self.silver_snapshot}
        return {var: "" if values[name] is None else str(values[name]) for name, var in WINDOW_ENV.items()}

    def describe(self) -> str:
        window = f"[{self.start_hour}, {self.end_hour})" if self.start_hour else "every application (full rebuild)"
        at = f"lake snapshot {self.silver_snapshot}" if self.silver_snapshot is not None else "the latest snapshot"
        return f"decisions in {window} reading silver at {at}"


def target_dir(settings: Settings) -> Path:
    """dbt's target folder for this data home (compiled SQL, run results, the partial parse): one per home, so
    two homes (parallel test workers, a benchmark beside the demo) never write one folder at once."""
    return settings.home.resolve() / "dbt" / "target"


@contextlib.contextmanager
def dbt_target(settings: Settings) -> Iterator[Path]:
    """The target folder of ``settings``, held for one dbt invocation (a lock file beside it: a second
    invocation on the same home waits, as it would for dbt's DuckDB file anyway). Stable across invocations,
    so each one starts from the previous one's ``partial_parse.msgpack`` (parsed with this home's profile;
    ``make dbt-parse``'s, in the project's ``target/``, was parsed with another and would not be used)."""
    target = target_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    with writer_lock(str(target)):  # flock on <home>/dbt/target.lock
        yield target


def run_dbt(settings: Settings, args: list[str], window: BuildWindow | None = None) -> str:
    """``dbt <args>`` for ``settings`` building ``window`` (default: a full rebuild at the latest silver);
    returns dbt's output, raises DbtError on failure."""
    with dbt_target(settings) as target:
        cmd = [str(Path(sys.executable).parent / "dbt"), *args, "--project-dir", str(PROJECT_DIR),
               "--profiles-dir", str(write_profiles(settings)), "--target-path", str(target),
               "--log-path", str(target.parent / "logs")]
        env = {**os.environ, **(window or BuildWindow()).env()}
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_DIR, env=env)
    if proc.returncode != 0:
        failing = [line for line in proc.stdout.splitlines() if "FAIL" in line or "ERROR" in line or "Error" in line]
        raise DbtError(f"dbt {' '.join(args)} failed:\n" + "\n".join(failing[-20:] or proc.stdout.splitlines()[-20:]))
    return proc.stdout

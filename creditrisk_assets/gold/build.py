"""Run dbt on the gold project outside Dagster (tests, benchmarks, by hand): same profile, same vars."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..settings import Settings
from .dbt_profiles import PROJECT_DIR, write_profiles


class DbtError(RuntimeError):
    """dbt exited non-zero; the message carries the failing nodes from its output."""


def target_dir(settings: Settings) -> Path:
    """dbt's target folder for this data home (compiled SQL, run results): one per home, so two homes
    (parallel test workers, a benchmark beside the demo) never write the project's ``target/`` at once."""
    return settings.home.resolve() / "dbt" / "target"


def run_dbt(settings: Settings, args: list[str], dbt_vars: dict[str, Any] | None = None) -> str:
    """``dbt <args>`` for ``settings``; returns dbt's output, raises DbtError on failure."""
    target = target_dir(settings)
    partial = PROJECT_DIR / "target" / "partial_parse.msgpack"  # from `make dbt-parse`: saves a full parse
    if partial.exists() and not (target / partial.name).exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(partial, target / partial.name)
    cmd = [str(Path(sys.executable).parent / "dbt"), *args, "--project-dir", str(PROJECT_DIR),
           "--profiles-dir", str(write_profiles(settings)), "--target-path", str(target),
           "--log-path", str(target.parent / "logs")]
    if dbt_vars:
        cmd += ["--vars", json.dumps(dbt_vars)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_DIR)
    if proc.returncode != 0:
        failing = [line for line in proc.stdout.splitlines() if "FAIL" in line or "ERROR" in line or "Error" in line]
        raise DbtError(f"dbt {' '.join(args)} failed:\n" + "\n".join(failing[-20:] or proc.stdout.splitlines()[-20:]))
    return proc.stdout

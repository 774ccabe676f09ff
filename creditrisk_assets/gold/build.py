"""Run dbt on the gold project outside Dagster (tests, benchmarks, by hand): same profile, same vars."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..settings import Settings
from .profiles import PROJECT_DIR, write_profiles


class DbtError(RuntimeError):
    """dbt exited non-zero; the message carries the failing nodes from its output."""


def run_dbt(settings: Settings, args: list[str], dbt_vars: dict[str, Any] | None = None) -> str:
    """``dbt <args>`` for ``settings``; returns dbt's output, raises DbtError on failure."""
    cmd = [str(Path(sys.executable).parent / "dbt"), *args, "--project-dir", str(PROJECT_DIR),
           "--profiles-dir", str(write_profiles(settings))]
    if dbt_vars:
        cmd += ["--vars", json.dumps(dbt_vars)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_DIR)
    if proc.returncode != 0:
        failing = [line for line in proc.stdout.splitlines() if "FAIL" in line or "ERROR" in line or "Error" in line]
        raise DbtError(f"dbt {' '.join(args)} failed:\n" + "\n".join(failing[-20:] or proc.stdout.splitlines()[-20:]))
    return proc.stdout

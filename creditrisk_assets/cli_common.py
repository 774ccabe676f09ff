"""How ``creditrisk simulate`` and ``creditrisk import homecredit`` start: settings from the environment, then
their arguments (the default first hour is the Dagster partitions' start), then JSON logs at the settings' level.
A wrong setting raises ``SettingsError``: ``creditrisk_assets/cli.py:main`` turns it into one line naming it."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable, Sequence

from .layout import HOUR_FMT
from .logs import configure_logging
from .settings import Settings


def default_start(settings: Settings) -> str:
    """The default first hour: the Dagster partitions' start (``CREDITRISK_PARTITIONS_START``)."""
    try:
        return dt.datetime.strptime(settings.partitions_start, HOUR_FMT).strftime("%Y-%m-%dT%H:%M")
    except ValueError:
        return "2026-10-01T00:00"


def start_command(build_parser: Callable[[str], argparse.ArgumentParser],
                  argv: Sequence[str] | None) -> tuple[Settings, argparse.Namespace]:
    """The settings and parsed ``argv`` of a command whose parser takes the default first hour, logging
    configured. Raises ``SettingsError`` (naming the variable) when the settings are wrong."""
    settings = Settings.from_env()
    args = build_parser(default_start(settings)).parse_args(argv)
    configure_logging(settings.log_level)
    return settings, args

"""What a simulation run is asked to do: ``SimulationConfig`` and the names it accepts."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..contracts import TABLE_NAMES

#: Drift scenarios; each applies from ``drift_start_hour`` on and flags the rows ``drifted``.
DRIFT_SCENARIOS: tuple[str, ...] = ("none", "income_shift", "product_mix", "default_rate")

#: Anomaly kinds, in the order they are applied to a file.
ANOMALY_KINDS: tuple[str, ...] = ("missing_column", "extra_column", "wrong_type", "duplicate_rows",
                                  "malformed_row", "corrupt_file", "empty_file", "wrong_encoding")

#: Kinds decided once per file (the rate is a per-file probability); the others hit a share of rows.
FILE_LEVEL_KINDS: frozenset[str] = frozenset({"missing_column", "extra_column", "corrupt_file", "empty_file",
                                              "wrong_encoding"})

_RUN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_START_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d-%H:%M", "%Y-%m-%d")


def parse_start(text: str, formats: Sequence[str] = _START_FORMATS) -> dt.datetime:
    """``2026-10-01T00:00`` (or with seconds, or Dagster's ``2026-10-01-00:00``; or any of ``formats``) → naive
    UTC datetime; ``ValueError`` when it is none of them or not on the hour."""
    for fmt in formats:
        try:
            value = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        if value.minute or value.second:
            raise ValueError(f"start={text!r} must be on the hour (drops are hourly)")
        return value
    raise ValueError(f"start={text!r}: expected YYYY-MM-DDTHH:MM (UTC)")


@dataclass(frozen=True)
class SimulationConfig:
    """One simulation run. Same config (and library versions) → byte-identical files.

    ``drift_start_hour`` is a 0-based hour index into the window; ``None`` with a drift means
    ``hours // 2``. ``anomalies`` maps a kind of ``ANOMALY_KINDS`` to a rate in [0, 1]: the
    per-file probability for file-level kinds, the share of rows for row-level kinds.
    ``tables=None`` writes every table of ``contracts.TABLES``.
    """

    start: str = "2026-10-01T00:00"
    hours: int = 48
    rows_per_hour: int = 300
    seed: int = 7
    drift: str = "none"
    drift_start_hour: int | None = None
    anomalies: Mapping[str, float] = field(default_factory=dict)
    outcome_delay_hours: int = 12
    tables: Sequence[str] | None = None
    run_name: str = "default"

    def __post_init__(self) -> None:
        parse_start(self.start)
        if not isinstance(self.hours, int) or self.hours < 1:
            raise ValueError(f"hours={self.hours!r}: must be an integer >= 1")
        if not isinstance(self.rows_per_hour, int) or self.rows_per_hour < 1:
            raise ValueError(f"rows_per_hour={self.rows_per_hour!r}: must be an integer >= 1")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}: must be a non-negative integer")
        if self.drift not in DRIFT_SCENARIOS:
            raise ValueError(f"drift={self.drift!r}: expected one of {', '.join(DRIFT_SCENARIOS)}")
        if self.drift_start_hour is not None and (not isinstance(self.drift_start_hour, int)
                                                  or self.drift_start_hour < 0):
            raise ValueError(f"drift_start_hour={self.drift_start_hour!r}: must be an integer >= 0")
        if not isinstance(self.outcome_delay_hours, int) or self.outcome_delay_hours < 0:
            raise ValueError(f"outcome_delay_hours={self.outcome_delay_hours!r}: must be an integer >= 0")
        if not _RUN_NAME_RE.match(self.run_name or ""):
            raise ValueError(f"run_name={self.run_name!r}: use letters, digits, '.', '_' or '-'")
        object.__setattr__(self, "anomalies", _check_anomalies(self.anomalies))
        object.__setattr__(self, "tables", _check_tables(self.tables))

    def __hash__(self) -> int:  # anomalies is a dict: hash the canonical JSON instead
        return hash(json.dumps(self.to_json(), sort_keys=True))

    @property
    def start_datetime(self) -> dt.datetime:
        return parse_start(self.start)

    @property
    def effective_drift_start(self) -> int | None:
        """The first drifted hour index, or None when there is no drift."""
        if self.drift == "none":
            return None
        return self.hours // 2 if self.drift_start_hour is None else self.drift_start_hour

    @property
    def selected_tables(self) -> tuple[str, ...]:
        return tuple(self.tables) if self.tables is not None else TABLE_NAMES

    def to_json(self) -> dict[str, Any]:
        """A JSON-able copy (for the manifest)."""
        return {"start": self.start, "hours": self.hours, "rows_per_hour": self.rows_per_hour, "seed": self.seed,
                "drift": self.drift, "drift_start_hour": self.drift_start_hour,
                "effective_drift_start_hour": self.effective_drift_start, "anomalies": dict(self.anomalies),
                "outcome_delay_hours": self.outcome_delay_hours,
                "tables": list(self.tables) if self.tables is not None else None, "run_name": self.run_name}


def _check_anomalies(anomalies: Mapping[str, float] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for kind, rate in dict(anomalies or {}).items():
        if kind not in ANOMALY_KINDS:
            raise ValueError(f"unknown anomaly kind {kind!r}: expected one of {', '.join(ANOMALY_KINDS)}")
        rate = float(rate)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"anomaly rate {kind}={rate}: must be within [0, 1]")
        out[kind] = rate
    return {k: out[k] for k in ANOMALY_KINDS if k in out}


def _check_tables(tables: Sequence[str] | None) -> tuple[str, ...] | None:
    if tables is None:
        return None
    if isinstance(tables, str):
        tables = [t for t in tables.split(",") if t]
    unknown = sorted(set(tables) - set(TABLE_NAMES))
    if unknown:
        raise ValueError(f"unknown table(s) {', '.join(unknown)}: expected some of {', '.join(TABLE_NAMES)}")
    if not tables:
        raise ValueError("tables is empty: pass None for every table")
    return tuple(t for t in TABLE_NAMES if t in set(tables))

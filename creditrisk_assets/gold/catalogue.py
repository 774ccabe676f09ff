"""The feature catalogue: every feature of ``applicant_features`` with type, description, source.

Read from the dbt model's YAML (the one place features are documented), so the Dagster metadata,
``docs/features.md``, the serving API's request validation and the model all say the same thing.

Every numeric feature has bounds: a ``between`` data test (dbt enforces it on gold, the serving API
on requests) whose derivation from the silver contracts (``creditrisk_assets/contracts/*.yml``) is the
column's ``meta.bounds_source``; a run of integer ``accepted_values`` bounds a feature too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml  # type: ignore[import-untyped]  # types-PyYAML is not in the dev dependencies

from .dbt_profiles import PROJECT_DIR

MART_YAML = PROJECT_DIR / "models" / "marts" / "applicant_features.yml"
KEY_COLUMNS = ("sk_id_curr", "decision_time")
NUMERIC_TYPES = ("double", "bigint", "integer")


@dataclass(frozen=True)
class Feature:
    name: str
    data_type: str
    description: str
    source: str
    required: bool = False  # a `not_null` data test: the value is never null in gold
    min_value: float | None = None  # from a `between` data test (else numeric `accepted_values`)
    max_value: float | None = None
    accepted_values: tuple[Any, ...] = field(default=())  # from an `accepted_values` data test
    bounds_source: str = ""  # where the bounds come from (`meta.bounds_source`)

    @property
    def numeric(self) -> bool:
        return self.data_type in NUMERIC_TYPES


def _tests(column: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for test in column.get("data_tests", []):
        if isinstance(test, str):
            out[test] = {}
        else:
            name, body = next(iter(test.items()))
            out[name] = (body or {}).get("arguments", body or {})
    return out


def features() -> list[Feature]:
    """Every feature with its type, description and the constraints its dbt data tests state."""
    model = yaml.safe_load(MART_YAML.read_text())["models"][0]
    out = []
    for c in model["columns"]:
        if c["name"] in KEY_COLUMNS:
            continue
        tests, meta = _tests(c), c.get("meta", {})
        between = tests.get("between", {})
        values = tuple(tests.get("accepted_values", {}).get("values", ()))
        lo, hi = between.get("min_value"), between.get("max_value")
        if not between and values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            lo, hi = min(values), max(values)
        out.append(Feature(c["name"], c["data_type"], c["description"], meta.get("source", ""),
                           required="not_null" in tests, min_value=lo, max_value=hi, accepted_values=values,
                           bounds_source=meta.get("bounds_source", "")))
    return out


def categorical_features() -> list[str]:
    return [f.name for f in features() if f.data_type == "varchar"]


def number(value: float | None) -> str:
    """A bound as the docs print it: short, yet parsing back to the same number."""
    if value is None:
        return ""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def catalogue_markdown() -> str:
    """Every feature as a markdown table row: type, bounds (and where they come from), source table."""
    rows = ["| feature | type | min | max | bounds from | source | description |", "|---|---|---|---|---|---|---|"]
    rows += [f"| `{f.name}` | {f.data_type} | {number(f.min_value)} | {number(f.max_value)} | {f.bounds_source} "
             f"| {f.source} | {f.description} |" for f in features()]
    return "\n".join(rows)

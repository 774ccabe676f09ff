"""The feature catalogue: every feature of ``applicant_features`` with type, description, source.

Read from the dbt model's YAML (the one place features are documented), so the Dagster metadata,
``docs/features.md`` and the model all say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml  # type: ignore[import-untyped]  # types-PyYAML is not in the dev dependencies

from .profiles import PROJECT_DIR

MART_YAML = PROJECT_DIR / "models" / "marts" / "applicant_features.yml"
KEY_COLUMNS = ("sk_id_curr", "decision_time")


@dataclass(frozen=True)
class Feature:
    name: str
    data_type: str
    description: str
    source: str
    required: bool = False  # a `not_null` data test: the value is never null in gold
    min_value: float | None = None  # from a `between` data test
    max_value: float | None = None
    accepted_values: tuple[Any, ...] = field(default=())  # from an `accepted_values` data test


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
        tests = _tests(c)
        between = tests.get("between", {})
        out.append(Feature(c["name"], c["data_type"], c["description"], c.get("meta", {}).get("source", ""),
                           required="not_null" in tests, min_value=between.get("min_value"),
                           max_value=between.get("max_value"),
                           accepted_values=tuple(tests.get("accepted_values", {}).get("values", ()))))
    return out


def categorical_features() -> list[str]:
    return [f.name for f in features() if f.data_type == "varchar"]


def catalogue_markdown() -> str:
    rows = ["| feature | type | source | description |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | {f.data_type} | {f.source} | {f.description} |" for f in features()]
    return "\n".join(rows)

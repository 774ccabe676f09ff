"""The feature catalogue: every feature of ``applicant_features`` with type, description, source.

Read from the dbt model's YAML (the one place features are documented), so the Dagster metadata,
``docs/features.md`` and the model all say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def features() -> list[Feature]:
    model = yaml.safe_load(MART_YAML.read_text())["models"][0]
    return [Feature(c["name"], c["data_type"], c["description"], c.get("meta", {}).get("source", ""))
            for c in model["columns"] if c["name"] not in KEY_COLUMNS]


def categorical_features() -> list[str]:
    return [f.name for f in features() if f.data_type == "varchar"]


def catalogue_markdown() -> str:
    rows = ["| feature | type | source | description |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | {f.data_type} | {f.source} | {f.description} |" for f in features()]
    return "\n".join(rows)

"""The dbt staging tests and the feature bounds say what the silver contracts say.

A contract change (a new allowed value, a column becoming nullable, a wider range) must reach the dbt
data tests, or real rows that silver accepts fail gold's tests; these checks name what is out of step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from creditrisk_assets.contracts import TABLES
from creditrisk_assets.gold.catalogue import features
from creditrisk_assets.gold.dbt_profiles import PROJECT_DIR
from creditrisk_assets.quality.pii import silver_name

STAGING = sorted((PROJECT_DIR / "models" / "staging").glob("stg_*.yml"))


def _tests(column: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for test in column.get("data_tests", []):
        name, body = (test, {}) if isinstance(test, str) else next(iter(test.items()))
        out[name] = (body or {}).get("arguments", body or {})
    return out


def test_every_contract_table_has_a_staging_model() -> None:
    assert sorted(p.stem.removeprefix("stg_") for p in STAGING) == sorted(TABLES)


@pytest.mark.parametrize("path", STAGING, ids=lambda p: p.stem)
def test_staging_tests_follow_the_contract(path: Path) -> None:
    model = yaml.safe_load(path.read_text())["models"][0]
    table = TABLES[model["name"].removeprefix("stg_")]
    by_silver = {name.lower(): c for c in table.columns if (name := silver_name(c)) is not None}
    for column in model["columns"]:
        c = by_silver[column["name"]]  # a staging column is a silver column
        tests = _tests(column)
        # personal columns too: they are optional (Home Credit's files have none), never not_null in gold
        assert ("not_null" in tests) == (not c.nullable), (table.name, c.name, "not_null vs nullable")
        if "accepted_values" in tests:
            assert c.allowed is not None and set(tests["accepted_values"]["values"]) == set(c.allowed), (
                table.name, c.name)


def test_feature_bounds_taken_from_a_contract_equal_its_range() -> None:
    checked = 0
    for f in features():
        if not f.bounds_source.startswith("contract: "):
            continue
        table, column = f.bounds_source.removeprefix("contract: ").split()[0].split(".")
        c = TABLES[table].column(column)
        if c.min is None:  # e.g. STATUS buckets: not a numeric contract range
            continue
        assert (f.min_value, f.max_value) == (c.min, c.max), f.name
        checked += 1
    assert checked >= 25

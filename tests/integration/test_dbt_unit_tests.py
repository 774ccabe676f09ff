"""The dbt unit tests of the gold project: every intermediate model has some, and all of them pass.

They run on fixtures, not on data: the lake only needs its silver tables (empty) for dbt to build the
models' relations, which the unit tests read the column types from.
"""

from __future__ import annotations

import json

import pytest
import yaml  # type: ignore[import-untyped]  # types-PyYAML is not in the dev dependencies

from creditrisk_assets.contracts import TABLES
from creditrisk_assets.gold.build import run_dbt, target_dir
from creditrisk_assets.gold.dbt_profiles import PROJECT_DIR
from creditrisk_assets.quality.silver import ensure_lake_tables
from creditrisk_assets.resources import Lake
from creditrisk_assets.settings import Settings

pytestmark = pytest.mark.integration
MODELS = PROJECT_DIR / "models"


def declared_unit_tests() -> dict[str, str]:
    """dbt's unique id of every unit test declared in the project's model files → the model it tests."""
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["name"]
    declared: dict[str, str] = {}
    for path in sorted(MODELS.rglob("*.yml")):
        for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests") or []:
            unique_id = f"unit_test.{project}.{test['model']}.{test['name']}"
            assert unique_id not in declared, f"{unique_id} declared twice ({path})"
            declared[unique_id] = test["model"]
    return declared


def test_every_intermediate_model_has_a_unit_test() -> None:
    intermediate = {path.stem for path in (MODELS / "intermediate").glob("*.sql")}
    assert len(intermediate) >= 7
    tested = set(declared_unit_tests().values())
    assert not intermediate - tested, f"intermediate models without a unit test: {sorted(intermediate - tested)}"


def test_every_unit_test_passes(settings: Settings) -> None:
    con = Lake(settings).connect_lake()
    try:
        for table in TABLES.values():
            ensure_lake_tables(con, table)  # empty silver: the models' relations can be built
    finally:
        con.close()
    # every model built empty (its relation gives the unit tests their input types) and every unit test run
    run_dbt(settings, ["build", "--empty", "--exclude", "test_type:data"])
    results = json.loads((target_dir(settings) / "run_results.json").read_text())["results"]
    ran = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    declared = declared_unit_tests()
    assert len(ran) == len(declared) and set(ran) == set(declared), sorted(set(declared) ^ set(ran))
    assert all(status == "pass" for status in ran.values()), {k: v for k, v in ran.items() if v != "pass"}


"""Contracts load from YAML, are validated with errors that name file, table and column."""

from pathlib import Path

import pytest

from creditrisk_assets.contracts import TABLES, ContractError, load_contracts, load_table
from creditrisk_assets.simulate import population

GOOD = """\
table: loans
description: a lender's loans
primary_key: [LOAN_ID]
event_time: BOOKED_AT
landing_format: csv
columns:
- {name: LOAN_ID, type: int, role: key, description: id, min: 1}
- {name: BOOKED_AT, type: timestamp, role: event_time, description: when}
- {name: AMOUNT, type: float, role: feature, description: amount, min: 0, max: 1.0e+6}
"""


def _write(tmp_path: Path, text: str, name: str = "loans") -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(text)
    return path


def test_a_table_is_added_by_a_yaml_file_alone(tmp_path: Path) -> None:
    _write(tmp_path, GOOD)
    tables = load_contracts(tmp_path)
    loans = tables["loans"]
    assert loans.primary_key == ("LOAN_ID",) and loans.column("AMOUNT").max == 1e6
    assert loans.column("AMOUNT").homecredit is not None  # default: same name in the published files


@pytest.mark.parametrize(("edit", "column", "problem"), [
    (("type: float, role: feature", "type: money, role: feature"), "AMOUNT", "type 'money'"),
    (("role: feature", "role: maybe"), "AMOUNT", "role 'maybe'"),
    (("min: 0, max: 1.0e+6", "min: 5, max: 1"), "AMOUNT", "min 5 is above max 1"),
    (("description: amount,", "description: amount, colour: red,"), "AMOUNT", "unknown key(s) colour"),
    (("description: amount,", "description: amount, pii: identifier,"), "AMOUNT", "must be optional"),
    (("description: amount,", "description: amount, required: false,"), "AMOUNT", "must be nullable"),
    (("primary_key: [LOAN_ID]", "primary_key: [LOAN_NO]"), "LOAN_NO", "primary key column is not defined"),
    (("event_time: BOOKED_AT", "event_time: AMOUNT"), "AMOUNT", "date or timestamp"),
])
def test_errors_name_file_table_and_column(tmp_path: Path, edit: tuple[str, str], column: str, problem: str) -> None:
    path = _write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(ContractError) as err:
        load_table(path)
    assert str(err.value).startswith(f"loans.yml: table loans, column {column}: ")
    assert problem in str(err.value)


def test_file_must_be_named_after_its_table(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="must be named loans.yml"):
        load_table(_write(tmp_path, GOOD, name="credits"))


def test_every_shipped_contract_has_one_event_time_and_keys() -> None:
    for table in TABLES.values():
        assert [c.name for c in table.columns if c.role == "event_time"] == [table.event_time]
        assert all(table.column(k).role in ("key", "event_time") for k in table.primary_key)
        assert all(c.role == "drop" for c in table.columns if c.pii == "free_text")


@pytest.mark.parametrize(("vocabulary", "table", "column"), [
    (population.CONTRACT_TYPES, "application", "NAME_CONTRACT_TYPE"),
    (population.INCOME_TYPES, "application", "NAME_INCOME_TYPE"),
    (population.EDUCATION_TYPES, "application", "NAME_EDUCATION_TYPE"),
    (population.FAMILY_STATUSES, "application", "NAME_FAMILY_STATUS"),
    (population.HOUSING_TYPES, "application", "NAME_HOUSING_TYPE"),
    (population.GENDERS, "application", "CODE_GENDER"),
])
def test_simulator_draws_only_allowed_values(vocabulary: tuple[str, ...], table: str, column: str) -> None:
    allowed = TABLES[table].column(column).allowed
    assert allowed is not None and set(vocabulary) <= set(allowed)

"""The application and pos_cash_balance contracts against the published Home Credit files.

The header of ``application_train.csv`` and the known vocabularies below are copied from the
published Kaggle files (Home Credit Default Risk); every column must be classified exactly once.
"""

from __future__ import annotations

import pytest

from creditrisk_assets.contracts import APPLICATION, LOAN_OUTCOME, TABLES
from creditrisk_assets.simulate import details, history

_BUILDING = ("APARTMENTS", "BASEMENTAREA", "YEARS_BEGINEXPLUATATION", "YEARS_BUILD", "COMMONAREA", "ELEVATORS",
             "ENTRANCES", "FLOORSMAX", "FLOORSMIN", "LANDAREA", "LIVINGAPARTMENTS", "LIVINGAREA", "NONLIVINGAPARTMENTS",
             "NONLIVINGAREA")
#: the header of the published application_train.csv, in its order
APPLICATION_TRAIN_HEADER: tuple[str, ...] = (
    "SK_ID_CURR", "TARGET", "NAME_CONTRACT_TYPE", "CODE_GENDER", "FLAG_OWN_CAR", "FLAG_OWN_REALTY", "CNT_CHILDREN",
    "AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE", "NAME_TYPE_SUITE", "NAME_INCOME_TYPE",
    "NAME_EDUCATION_TYPE", "NAME_FAMILY_STATUS", "NAME_HOUSING_TYPE", "REGION_POPULATION_RELATIVE", "DAYS_BIRTH",
    "DAYS_EMPLOYED", "DAYS_REGISTRATION", "DAYS_ID_PUBLISH", "OWN_CAR_AGE", "FLAG_MOBIL", "FLAG_EMP_PHONE",
    "FLAG_WORK_PHONE", "FLAG_CONT_MOBILE", "FLAG_PHONE", "FLAG_EMAIL", "OCCUPATION_TYPE", "CNT_FAM_MEMBERS",
    "REGION_RATING_CLIENT", "REGION_RATING_CLIENT_W_CITY", "WEEKDAY_APPR_PROCESS_START", "HOUR_APPR_PROCESS_START",
    "REG_REGION_NOT_LIVE_REGION", "REG_REGION_NOT_WORK_REGION", "LIVE_REGION_NOT_WORK_REGION", "REG_CITY_NOT_LIVE_CITY",
    "REG_CITY_NOT_WORK_CITY", "LIVE_CITY_NOT_WORK_CITY", "ORGANIZATION_TYPE", "EXT_SOURCE_1", "EXT_SOURCE_2",
    "EXT_SOURCE_3",
    *(f"{b}_{s}" for s in ("AVG", "MODE", "MEDI") for b in _BUILDING),
    "FONDKAPREMONT_MODE", "HOUSETYPE_MODE", "TOTALAREA_MODE", "WALLSMATERIAL_MODE", "EMERGENCYSTATE_MODE",
    "OBS_30_CNT_SOCIAL_CIRCLE", "DEF_30_CNT_SOCIAL_CIRCLE", "OBS_60_CNT_SOCIAL_CIRCLE", "DEF_60_CNT_SOCIAL_CIRCLE",
    "DAYS_LAST_PHONE_CHANGE", *(f"FLAG_DOCUMENT_{k}" for k in range(2, 22)),
    *(f"AMT_REQ_CREDIT_BUREAU_{w}" for w in ("HOUR", "DAY", "WEEK", "MON", "QRT", "YEAR")),
)
POS_CASH_HEADER = ("SK_ID_PREV", "SK_ID_CURR", "MONTHS_BALANCE", "CNT_INSTALMENT", "CNT_INSTALMENT_FUTURE",
                   "NAME_CONTRACT_STATUS", "SK_DPD", "SK_DPD_DEF")
#: values that occur in the published files (a contract that refused them would quarantine real rows)
REAL_VOCABULARY = {
    ("application", "CODE_GENDER"): ("F", "M", "XNA"),
    ("application", "NAME_FAMILY_STATUS"): ("Married", "Single / not married", "Civil marriage", "Separated", "Widow",
                                            "Unknown"),
    ("application", "NAME_TYPE_SUITE"): ("Unaccompanied", "Family", "Spouse, partner", "Children", "Other_A",
                                         "Other_B", "Group of people"),
    ("pos_cash_balance", "NAME_CONTRACT_STATUS"): ("Active", "Completed", "Signed", "Demand", "Returned to the store",
                                                   "Approved", "Canceled", "XNA", "Amortized debt"),
}
#: the published extremes of numeric columns (max, or (min, max))
REAL_EXTREMES = {
    ("application", "AMT_INCOME_TOTAL"): (25_650.0, 117_000_000.0),
    ("application", "REGION_POPULATION_RELATIVE"): (0.00029, 0.072508),
    ("application", "OWN_CAR_AGE"): (0.0, 91.0),
    ("application", "CNT_FAM_MEMBERS"): (1.0, 20.0),
    ("application", "OBS_30_CNT_SOCIAL_CIRCLE"): (0.0, 348.0),
    ("application", "DEF_30_CNT_SOCIAL_CIRCLE"): (0.0, 34.0),
    ("application", "DEF_60_CNT_SOCIAL_CIRCLE"): (0.0, 24.0),
    ("application", "AMT_REQ_CREDIT_BUREAU_YEAR"): (0.0, 25.0),
    ("application", "HOUR_APPR_PROCESS_START"): (0.0, 23.0),
    ("pos_cash_balance", "CNT_INSTALMENT"): (1.0, 92.0),
    ("pos_cash_balance", "CNT_INSTALMENT_FUTURE"): (0.0, 85.0),
    ("pos_cash_balance", "SK_DPD"): (0.0, 4231.0),
    ("pos_cash_balance", "SK_DPD_DEF"): (0.0, 3595.0),
}


def _published(table: str) -> list[str]:
    return [c.homecredit.column for c in TABLES[table].columns if c.homecredit is not None]


def test_application_classifies_exactly_the_122_published_columns() -> None:
    assert len(APPLICATION_TRAIN_HEADER) == len(set(APPLICATION_TRAIN_HEADER)) == 122
    mapped = _published("application")
    assert len(mapped) == len(set(mapped)), "a published column mapped twice"
    assert "TARGET" not in mapped and LOAN_OUTCOME.column("TARGET").role == "label"
    assert "TARGET" in _published("loan_outcome")
    assert sorted([*mapped, "TARGET"]) == sorted(APPLICATION_TRAIN_HEADER)
    assert APPLICATION.homecredit is not None and "application_train.csv" in APPLICATION.homecredit.files


def test_relative_application_days_become_dates_except_days_employed() -> None:
    relative = {c.homecredit.column: c for c in APPLICATION.columns if c.homecredit and c.homecredit.relative}
    assert set(relative) == {"DAYS_BIRTH", "DAYS_REGISTRATION", "DAYS_ID_PUBLISH", "DAYS_LAST_PHONE_CHANGE"}
    assert all(c.dtype == "date" and c.homecredit.relative == "days" for c in relative.values())  # type: ignore[union-attr]
    assert {relative[k].name for k in relative} == {"DATE_OF_BIRTH", "DATE_REGISTRATION", "DATE_ID_PUBLISH",
                                                     "DATE_LAST_PHONE_CHANGE"}
    days_employed = APPLICATION.column("DAYS_EMPLOYED")
    assert days_employed.dtype == "int" and days_employed.homecredit is not None
    assert days_employed.homecredit.relative is None  # kept raw: 365243 means "not employed"


def test_new_application_columns_are_optional_and_the_useful_ones_features() -> None:
    before = {"SK_ID_CURR", "NAME_CONTRACT_TYPE", "CODE_GENDER", "FLAG_OWN_CAR", "FLAG_OWN_REALTY", "CNT_CHILDREN",
              "AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE", "NAME_INCOME_TYPE",
              "NAME_EDUCATION_TYPE", "NAME_FAMILY_STATUS", "NAME_HOUSING_TYPE", "DAYS_EMPLOYED", "OCCUPATION_TYPE",
              "ORGANIZATION_TYPE", "REGION_RATING_CLIENT", "EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3",
              "DATE_OF_BIRTH"}
    new = [c for c in APPLICATION.columns if c.homecredit is not None and c.name not in before]
    assert len(new) == 121 - len(before)
    assert all(not c.required and c.nullable for c in new)
    features = [c.name for c in new if c.role == "feature"]
    assert 12 <= len(features) <= 20, features
    assert {c.role for c in new} == {"feature", "drop"}
    for c in new:
        assert c.description.strip(), c.name
        if c.role == "feature" and c.dtype in ("int", "float"):
            assert c.min is not None and c.max is not None, c.name  # a realistic range
    duplicates = [c for c in new if c.name.endswith(("_MODE", "_MEDI")) and c.name != "TOTALAREA_MODE"]
    assert duplicates and all(c.role == "drop" for c in duplicates)


@pytest.mark.parametrize(("table", "column"), sorted(REAL_VOCABULARY))
def test_real_vocabularies_are_allowed(table: str, column: str) -> None:
    assert set(REAL_VOCABULARY[table, column]) <= set(TABLES[table].column(column).allowed or ())


@pytest.mark.parametrize(("table", "column"), sorted(REAL_EXTREMES))
def test_real_extremes_are_in_range(table: str, column: str) -> None:
    c = TABLES[table].column(column)
    lo, hi = REAL_EXTREMES[table, column]
    assert c.min is not None and c.max is not None and c.min <= lo and hi <= c.max


def test_pos_cash_balance_maps_the_published_file() -> None:
    pos = TABLES["pos_cash_balance"]
    assert sorted(_published("pos_cash_balance")) == sorted(POS_CASH_HEADER)
    assert pos.primary_key == ("SK_ID_PREV", "BALANCE_MONTH") and pos.event_time == "BALANCE_MONTH"
    month = pos.column("BALANCE_MONTH")
    assert month.dtype == "date" and month.homecredit is not None
    assert (month.homecredit.column, month.homecredit.relative) == ("MONTHS_BALANCE", "months")
    assert pos.column("SK_ID_CURR").role == "key"
    assert pos.homecredit is not None and pos.homecredit.files == ("POS_CASH_balance.csv",)
    assert (pos.homecredit.anchor, pos.homecredit.anchor_key) == ("key", "SK_ID_CURR")
    for name in ("CNT_INSTALMENT", "CNT_INSTALMENT_FUTURE"):
        assert pos.column(name).dtype == "float" and pos.column(name).nullable  # floats with gaps when published


@pytest.mark.parametrize(("vocabulary", "table", "column"), [
    (details.SUITES, "application", "NAME_TYPE_SUITE"),
    (history.POS_STATUS, "pos_cash_balance", "NAME_CONTRACT_STATUS"),
])
def test_simulator_draws_only_allowed_values(vocabulary: tuple[str, ...], table: str, column: str) -> None:
    assert set(vocabulary) <= set(TABLES[table].column(column).allowed or ())

"""The generated arrays as typed Arrow tables in contract column order, sorted by landing hour.

Arrow types by contract dtype: int → int64, float → float64, str → string, date → date32,
timestamp → timestamp[s] (naive, UTC). Nulls are Arrow nulls. Rows landing after the window
(post-decision rows, outcomes that have not matured) are dropped here and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..contracts import TABLES, Table
from .details import SUITES, generate_details
from .history import (
    BB_STATUS,
    CREDIT_ACTIVE,
    CREDIT_TYPES,
    NULL_DAY,
    POS_STATUS,
    PREV_STATUS,
    PREV_TYPES,
    bureau_balance_rows,
    credit_card_rows,
    installments_rows,
    months_to_days,
    pos_cash_rows,
)
from .leakage import post_card_balances, post_installments
from .pii import addresses, full_names, national_ids, phones
from .population import (
    CONTRACT_TYPES,
    EDUCATION_TYPES,
    FAMILY_STATUSES,
    GENDERS,
    HOUSING_TYPES,
    INCOME_TYPES,
    OCCUPATIONS,
    ORGANIZATIONS,
)
from .rand import stream
from .world import World

ARROW_TYPES: dict[str, pa.DataType] = {"int": pa.int64(), "float": pa.float64(), "str": pa.string(),
                                       "date": pa.date32(), "timestamp": pa.timestamp("s")}


@dataclass
class HourlyTable:
    """One table's rows sorted by landing hour; ``offsets[h]:offsets[h+1]`` are hour ``h``'s rows."""

    name: str
    table: pa.Table
    hour: np.ndarray
    offsets: np.ndarray
    post_decision: np.ndarray  # bool per row: dated after the applicant's decision
    dropped_after_window: int = 0
    null_columns: tuple[str, ...] = ()  # optional contract columns the simulator has no model of: all null
    absent_columns: tuple[str, ...] = ()  # ``drop`` columns it does not write

    def rows_of_hour(self, h: int) -> pa.Table:
        return self.table.slice(int(self.offsets[h]), int(self.offsets[h + 1] - self.offsets[h]))

    def post_decision_rows_of_hour(self, h: int) -> int:
        return int(self.post_decision[self.offsets[h]:self.offsets[h + 1]].sum())


# ------------------------------------------------------------------------ arrow helpers

def categorical(categories: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    """Index array (-1 = null) → string array."""
    idx = np.asarray(idx, dtype=np.int64)
    return pa.array(list(categories), pa.string()).take(pa.array(idx, mask=idx < 0))


def ints(values: np.ndarray) -> pa.Array:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        mask = np.isnan(values)
        return pa.array(np.where(mask, 0, values).astype(np.int64), pa.int64(), mask=mask)
    return pa.array(values.astype(np.int64), pa.int64())


def floats(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=float)
    return pa.array(values, pa.float64(), mask=np.isnan(values))


def dates(days: np.ndarray) -> pa.Array:
    """Days since epoch (``NULL_DAY`` = null) → date32."""
    days = np.asarray(days, dtype=np.int64)
    null = days == NULL_DAY
    return pa.array(np.where(null, 0, days).astype(np.int32), pa.date32(), mask=null)


def months(month: np.ndarray) -> pa.Array:
    return dates(months_to_days(month))


def timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(seconds, dtype=np.int64), pa.timestamp("s"))


def not_simulated(contract: Table, generated: Collection[str]) -> tuple[list[str], list[str]]:
    """(optional columns written all null, ``drop`` columns left out) of a table whose builder generates
    ``generated``. A drop column stays in bronze: files without it are normal (silver records nothing); any
    other column is in every file, all null where the simulator has no model of it. A required column the
    builder does not generate is a bug (``KeyError``)."""
    required = [c.name for c in contract.columns if c.name not in generated and c.role != "drop" and c.required]
    if required:
        raise KeyError(f"the simulator generates no {', '.join(required)} for {contract.name}")
    absent = [c for c in contract.columns if c.name not in generated]
    return [c.name for c in absent if c.role != "drop"], [c.name for c in absent if c.role == "drop"]


def _assemble(contract: Table, columns: dict[str, pa.Array]) -> pa.Table:
    """The generated columns in contract order, null columns where ``not_simulated`` says so."""
    nulls, left_out = not_simulated(contract, columns)
    n = len(next(iter(columns.values())))
    written = [c for c in contract.columns if c.name not in left_out]
    arrays = [columns[c.name] if c.name not in nulls else pa.nulls(n, ARROW_TYPES[c.dtype]) for c in written]
    schema = pa.schema([pa.field(c.name, ARROW_TYPES[c.dtype]) for c in written])
    return pa.Table.from_arrays(arrays, schema=schema)


def _hourly(name: str, columns: dict[str, pa.Array], hour: np.ndarray, hours: int, post: np.ndarray | None = None) -> HourlyTable:
    """Sort by hour (stable), drop rows after the window, build the table."""
    hour = np.asarray(hour, dtype=np.int64)
    post = np.zeros(len(hour), bool) if post is None else post
    order = np.argsort(hour, kind="stable")
    keep = order[hour[order] < hours]
    table = _assemble(TABLES[name], columns).take(pa.array(keep))
    kept_hour = hour[keep]
    nulls, absent = not_simulated(TABLES[name], columns)
    return HourlyTable(name, table, kept_hour, np.searchsorted(kept_hour, np.arange(hours + 1)), post[keep],
                       dropped_after_window=len(hour) - len(keep), null_columns=tuple(nulls),
                       absent_columns=tuple(absent))


# ------------------------------------------------------------------------------ tables

def application_table(w: World) -> HourlyTable:
    a = w.app
    rng = stream(w.cfg.seed, "pii")
    name, email = full_names(rng, a.gender == GENDERS.index("F"))
    cols = {
        "SK_ID_CURR": ints(a.sk_id_curr), "DECISION_TIME": timestamps(a.decision_ts),
        "NAME_CONTRACT_TYPE": categorical(CONTRACT_TYPES, a.contract), "CODE_GENDER": categorical(GENDERS, a.gender),
        "FLAG_OWN_CAR": categorical(("N", "Y"), a.own_car.astype(int)),
        "FLAG_OWN_REALTY": categorical(("N", "Y"), a.own_realty.astype(int)), "CNT_CHILDREN": ints(a.children),
        "AMT_INCOME_TOTAL": floats(a.income), "AMT_CREDIT": floats(a.credit), "AMT_ANNUITY": floats(a.annuity),
        "AMT_GOODS_PRICE": floats(a.goods_price), "NAME_INCOME_TYPE": categorical(INCOME_TYPES, a.income_type),
        "NAME_EDUCATION_TYPE": categorical(EDUCATION_TYPES, a.education),
        "NAME_FAMILY_STATUS": categorical(FAMILY_STATUSES, a.family),
        "NAME_HOUSING_TYPE": categorical(HOUSING_TYPES, a.housing), "DAYS_EMPLOYED": ints(a.days_employed),
        "OCCUPATION_TYPE": categorical(OCCUPATIONS, a.occupation),
        "ORGANIZATION_TYPE": categorical(ORGANIZATIONS, a.organization), "REGION_RATING_CLIENT": ints(a.region_rating),
        "EXT_SOURCE_1": floats(a.ext1), "EXT_SOURCE_2": floats(a.ext2), "EXT_SOURCE_3": floats(a.ext3),
        "FULL_NAME": name, "EMAIL": email, "PHONE": phones(rng, len(a)),
        "NATIONAL_ID": national_ids(w.cfg.seed, np.arange(len(a))), "DATE_OF_BIRTH": dates(a.birth_day),
        "ADDRESS": addresses(rng, len(a)),
    }
    d = generate_details(a, stream(w.cfg.seed, "applicant_details"))
    cols |= {
        "NAME_TYPE_SUITE": categorical(SUITES, d.suite), "REGION_POPULATION_RELATIVE": floats(d.region_population),
        "DATE_REGISTRATION": dates(d.registration_day), "DATE_ID_PUBLISH": dates(d.id_publish_day),
        "OWN_CAR_AGE": floats(d.own_car_age), "FLAG_EMP_PHONE": ints(d.emp_phone),
        "FLAG_WORK_PHONE": ints(d.work_phone), "CNT_FAM_MEMBERS": floats(d.family_members),
        "REGION_RATING_CLIENT_W_CITY": ints(d.region_rating_city), "HOUR_APPR_PROCESS_START": ints(d.process_hour),
        "REG_CITY_NOT_LIVE_CITY": ints(d.reg_city_not_live_city),
        "REG_CITY_NOT_WORK_CITY": ints(d.reg_city_not_work_city), "TOTALAREA_MODE": floats(d.total_area),
        "OBS_30_CNT_SOCIAL_CIRCLE": floats(d.obs_30), "DEF_30_CNT_SOCIAL_CIRCLE": floats(d.def_30),
        "DEF_60_CNT_SOCIAL_CIRCLE": floats(d.def_60), "DATE_LAST_PHONE_CHANGE": dates(d.phone_change_day),
        "FLAG_DOCUMENT_3": ints(d.document_3), "AMT_REQ_CREDIT_BUREAU_YEAR": floats(d.bureau_requests_year),
    }
    return _hourly("application", cols, a.hour, w.cfg.hours)


def bureau_table(w: World) -> HourlyTable:
    b, a = w.bureau, w.app
    cols = {
        "SK_ID_BUREAU": ints(b.sk_id_bureau), "SK_ID_CURR": ints(a.sk_id_curr[b.owner]),
        "CREDIT_ACTIVE": categorical(CREDIT_ACTIVE, b.active), "CREDIT_TYPE": categorical(CREDIT_TYPES, b.credit_type),
        "DATE_CREDIT": dates(b.date_credit), "DATE_CREDIT_ENDDATE": dates(b.date_end),
        "CREDIT_DAY_OVERDUE": ints(b.day_overdue), "AMT_CREDIT_SUM": floats(b.amt_sum),
        "AMT_CREDIT_SUM_DEBT": floats(b.amt_debt), "AMT_CREDIT_SUM_OVERDUE": floats(b.amt_overdue),
        "CNT_CREDIT_PROLONG": ints(b.prolong), "REPORTED_AT": timestamps(b.reported_ts),
    }
    return _hourly("bureau", cols, a.hour[b.owner], w.cfg.hours)


def bureau_balance_table(w: World) -> HourlyTable:
    rows = bureau_balance_rows(w.bureau, w.app, stream(w.cfg.seed, "bureau_balance"))
    cols = {"SK_ID_BUREAU": ints(rows["SK_ID_BUREAU"]), "BALANCE_MONTH": months(rows["BALANCE_MONTH"]),
            "STATUS": categorical(BB_STATUS, rows["STATUS"])}
    return _hourly("bureau_balance", cols, w.app.hour[rows["_owner"]], w.cfg.hours)


def previous_application_table(w: World) -> HourlyTable:
    p, a = w.prev, w.app
    cols = {
        "SK_ID_PREV": ints(p.sk_id_prev), "SK_ID_CURR": ints(a.sk_id_curr[p.owner]),
        "NAME_CONTRACT_TYPE": categorical(PREV_TYPES, p.contract), "AMT_APPLICATION": floats(p.amt_application),
        "AMT_CREDIT": floats(p.amt_credit), "AMT_ANNUITY": floats(p.amt_annuity),
        "NAME_CONTRACT_STATUS": categorical(PREV_STATUS, p.status), "DECISION_DATE": dates(p.decision_day),
        "CNT_PAYMENT": ints(p.cnt_payment),
    }
    return _hourly("previous_application", cols, a.hour[p.owner], w.cfg.hours)


def _with_post(pre: dict[str, np.ndarray], post: dict[str, np.ndarray],
               app_hour: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Pre-decision rows (landing with their application) followed by post-decision rows."""
    merged = {k: np.concatenate([pre[k], post[k]]) for k in pre if not k.startswith("_")}
    hour = np.concatenate([app_hour[pre["_owner"]], post["_hour"]])
    is_post = np.r_[np.zeros(len(pre["_owner"]), bool), np.ones(len(post["_owner"]), bool)]
    return merged, hour, is_post


def installments_table(w: World) -> HourlyTable:
    pre = installments_rows(w.prev, w.app, stream(w.cfg.seed, "installments"))
    post = post_installments(w.post, w.app, w.target, stream(w.cfg.seed, "post_installments"))
    rows, hour, is_post = _with_post(pre, post, w.app.hour)
    cols = {"SK_ID_PREV": ints(rows["SK_ID_PREV"]), "SK_ID_CURR": ints(rows["SK_ID_CURR"]),
            "NUM_INSTALMENT_NUMBER": ints(rows["NUM_INSTALMENT_NUMBER"]), "DUE_DATE": dates(rows["DUE_DATE"]),
            "PAYMENT_DATE": dates(rows["PAYMENT_DATE"]), "AMT_INSTALMENT": floats(rows["AMT_INSTALMENT"]),
            "AMT_PAYMENT": floats(rows["AMT_PAYMENT"])}
    return _hourly("installments_payments", cols, hour, w.cfg.hours, is_post)


def credit_card_table(w: World) -> HourlyTable:
    pre = credit_card_rows(w.prev, w.app, stream(w.cfg.seed, "credit_card"))
    post = post_card_balances(w.post, w.app, w.target, stream(w.cfg.seed, "post_cards"))
    rows, hour, is_post = _with_post(pre, post, w.app.hour)
    cols = {"SK_ID_PREV": ints(rows["SK_ID_PREV"]), "SK_ID_CURR": ints(rows["SK_ID_CURR"]),
            "BALANCE_MONTH": months(rows["BALANCE_MONTH"]), "AMT_BALANCE": floats(rows["AMT_BALANCE"]),
            "AMT_CREDIT_LIMIT_ACTUAL": floats(rows["AMT_CREDIT_LIMIT_ACTUAL"]),
            "AMT_DRAWINGS_CURRENT": floats(rows["AMT_DRAWINGS_CURRENT"]),
            "AMT_PAYMENT_CURRENT": floats(rows["AMT_PAYMENT_CURRENT"]), "SK_DPD": ints(rows["SK_DPD"])}
    return _hourly("credit_card_balance", cols, hour, w.cfg.hours, is_post)


def pos_cash_table(w: World) -> HourlyTable:
    rows = pos_cash_rows(w.prev, w.app, stream(w.cfg.seed, "pos_cash"))
    cols = {"SK_ID_PREV": ints(rows["SK_ID_PREV"]), "SK_ID_CURR": ints(rows["SK_ID_CURR"]),
            "BALANCE_MONTH": months(rows["BALANCE_MONTH"]), "CNT_INSTALMENT": floats(rows["CNT_INSTALMENT"]),
            "CNT_INSTALMENT_FUTURE": floats(rows["CNT_INSTALMENT_FUTURE"]),
            "NAME_CONTRACT_STATUS": categorical(POS_STATUS, rows["NAME_CONTRACT_STATUS"]),
            "SK_DPD": ints(rows["SK_DPD"]), "SK_DPD_DEF": ints(rows["SK_DPD_DEF"])}
    return _hourly("pos_cash_balance", cols, w.app.hour[rows["_owner"]], w.cfg.hours)


def loan_outcome_table(w: World) -> HourlyTable:
    a = w.app
    delay = w.cfg.outcome_delay_hours
    cols = {"SK_ID_CURR": ints(a.sk_id_curr), "TARGET": ints(w.target),
            "OUTCOME_TIME": timestamps(a.decision_ts + delay * 3600)}
    return _hourly("loan_outcome", cols, a.hour + delay, w.cfg.hours)


BUILDERS: dict[str, Callable[[World], HourlyTable]] = {
    "application": application_table, "bureau": bureau_table, "bureau_balance": bureau_balance_table,
    "previous_application": previous_application_table, "installments_payments": installments_table,
    "credit_card_balance": credit_card_table, "pos_cash_balance": pos_cash_table, "loan_outcome": loan_outcome_table,
}

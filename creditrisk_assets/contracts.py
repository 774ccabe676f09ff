"""Column contracts of every source table: the one place that says what a row must look like.

Read by the simulator (what to write), bronze (which tables exist, their landing format),
silver (types, rules, keys, PII handling) and the docs/asset metadata (``contract_markdown``).
Column names follow Home Credit's where they exist. Time columns are absolute (ISO-8601, UTC)
instead of Home Credit's "days relative to the application", so features can be computed
point-in-time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DType = Literal["int", "float", "str", "date", "timestamp"]
#: none: not personal; identifier: pseudonymised by keyed HMAC; free_text: dropped in silver;
#: birth_date: turned into age at application; sensitive: kept but never used as a feature.
PiiClass = Literal["none", "identifier", "free_text", "birth_date", "sensitive"]
FileFormat = Literal["csv", "csv.gz", "jsonl", "jsonl.gz", "parquet"]


@dataclass(frozen=True)
class Column:
    name: str
    dtype: DType
    description: str
    nullable: bool = False
    required: bool = True  # a file without it is quarantined whole; optional ones are null-filled
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    pii: PiiClass = "none"


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    event_time: str  # the column that places a row in time (point-in-time joins use it)
    landing_format: FileFormat
    schema_policy: Literal["alert", "auto_correct", "reject"] = "auto_correct"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


C = Column

CONTRACT_TYPES = ("Cash loans", "Revolving loans")
INCOME_TYPES = ("Working", "Commercial associate", "Pensioner", "State servant", "Unemployed",
                "Student", "Businessman", "Maternity leave")
EDUCATION_TYPES = ("Secondary / secondary special", "Higher education", "Incomplete higher",
                   "Lower secondary", "Academic degree")
FAMILY_STATUSES = ("Married", "Single / not married", "Civil marriage", "Separated", "Widow")
HOUSING_TYPES = ("House / apartment", "With parents", "Municipal apartment", "Rented apartment",
                 "Office apartment", "Co-op apartment")

APPLICATION = Table(
    name="application",
    description="One row per loan application, as submitted at decision time.",
    primary_key=("SK_ID_CURR",),
    event_time="DECISION_TIME",
    landing_format="csv",
    columns=(
        C("SK_ID_CURR", "int", "application id", min=1),
        C("DECISION_TIME", "timestamp", "when the credit decision is taken (UTC)"),
        C("NAME_CONTRACT_TYPE", "str", "product applied for", allowed=CONTRACT_TYPES),
        C("CODE_GENDER", "str", "gender; fairness group only, never a feature", allowed=("F", "M", "XNA"), pii="sensitive"),
        C("FLAG_OWN_CAR", "str", "owns a car", allowed=("Y", "N")),
        C("FLAG_OWN_REALTY", "str", "owns real estate", allowed=("Y", "N")),
        C("CNT_CHILDREN", "int", "number of children", min=0, max=20),
        C("AMT_INCOME_TOTAL", "float", "declared yearly income", min=0.01, max=1e8),
        C("AMT_CREDIT", "float", "credit amount requested", min=1, max=1e8),
        C("AMT_ANNUITY", "float", "yearly annuity of the requested loan", min=0.01, max=1e7, nullable=True),
        C("AMT_GOODS_PRICE", "float", "price of the goods financed", min=0, max=1e8, nullable=True, required=False),
        C("NAME_INCOME_TYPE", "str", "income type", allowed=INCOME_TYPES),
        C("NAME_EDUCATION_TYPE", "str", "highest education", allowed=EDUCATION_TYPES),
        C("NAME_FAMILY_STATUS", "str", "family status", allowed=FAMILY_STATUSES),
        C("NAME_HOUSING_TYPE", "str", "housing situation", allowed=HOUSING_TYPES),
        C("DAYS_EMPLOYED", "int", "days employed before application (negative; 365243 = not employed, as in Home Credit)", min=-20000, max=365243),
        C("OCCUPATION_TYPE", "str", "occupation", nullable=True, required=False),
        C("ORGANIZATION_TYPE", "str", "employer's sector", nullable=True),
        C("REGION_RATING_CLIENT", "int", "region rating (1 best .. 3 worst)", min=1, max=3),
        C("EXT_SOURCE_1", "float", "external score 1 (normalised)", min=0, max=1, nullable=True, required=False),
        C("EXT_SOURCE_2", "float", "external score 2 (normalised)", min=0, max=1, nullable=True),
        C("EXT_SOURCE_3", "float", "external score 3 (normalised)", min=0, max=1, nullable=True),
        C("FULL_NAME", "str", "applicant's full name", pii="free_text"),
        C("EMAIL", "str", "e-mail address", pii="identifier", nullable=True),
        C("PHONE", "str", "phone number", pii="identifier", nullable=True),
        C("NATIONAL_ID", "str", "national id number", pii="identifier"),
        C("DATE_OF_BIRTH", "date", "date of birth", pii="birth_date"),
        C("ADDRESS", "str", "postal address", pii="free_text", nullable=True),
    ),
)

BUREAU = Table(
    name="bureau",
    description="Credits the applicant holds at other lenders, as reported by the credit bureau.",
    primary_key=("SK_ID_BUREAU",),
    event_time="REPORTED_AT",
    landing_format="jsonl.gz",
    columns=(
        C("SK_ID_BUREAU", "int", "bureau credit id", min=1),
        C("SK_ID_CURR", "int", "application id", min=1),
        C("CREDIT_ACTIVE", "str", "status of the credit", allowed=("Active", "Closed", "Sold", "Bad debt")),
        C("CREDIT_TYPE", "str", "kind of credit", allowed=("Consumer credit", "Credit card", "Car loan", "Mortgage", "Microloan")),
        C("DATE_CREDIT", "date", "date the credit was opened"),
        C("DATE_CREDIT_ENDDATE", "date", "planned end date", nullable=True),
        C("CREDIT_DAY_OVERDUE", "int", "days overdue at report time", min=0, max=3000),
        C("AMT_CREDIT_SUM", "float", "credit amount", min=0, max=1e9),
        C("AMT_CREDIT_SUM_DEBT", "float", "outstanding debt", min=0, max=1e9, nullable=True),
        C("AMT_CREDIT_SUM_OVERDUE", "float", "overdue amount", min=0, max=1e9),
        C("CNT_CREDIT_PROLONG", "int", "times the credit was prolonged", min=0, max=50),
        C("REPORTED_AT", "timestamp", "when the bureau reported this record (UTC)"),
    ),
)

BUREAU_BALANCE = Table(
    name="bureau_balance",
    description="Monthly status of each bureau credit.",
    primary_key=("SK_ID_BUREAU", "BALANCE_MONTH"),
    event_time="BALANCE_MONTH",
    landing_format="parquet",
    columns=(
        C("SK_ID_BUREAU", "int", "bureau credit id", min=1),
        C("BALANCE_MONTH", "date", "first day of the month the status refers to"),
        C("STATUS", "str", "C closed, X unknown, 0 no DPD, 1..5 DPD buckets (1: 1-30 .. 5: 120+)",
          allowed=("C", "X", "0", "1", "2", "3", "4", "5")),
    ),
)

PREVIOUS_APPLICATION = Table(
    name="previous_application",
    description="The applicant's previous applications with us.",
    primary_key=("SK_ID_PREV",),
    event_time="DECISION_DATE",
    landing_format="csv.gz",
    columns=(
        C("SK_ID_PREV", "int", "previous application id", min=1),
        C("SK_ID_CURR", "int", "application id", min=1),
        C("NAME_CONTRACT_TYPE", "str", "product", allowed=CONTRACT_TYPES + ("Consumer loans",)),
        C("AMT_APPLICATION", "float", "amount asked", min=0, max=1e8),
        C("AMT_CREDIT", "float", "amount granted", min=0, max=1e8, nullable=True),
        C("AMT_ANNUITY", "float", "annuity", min=0, max=1e7, nullable=True),
        C("NAME_CONTRACT_STATUS", "str", "decision", allowed=("Approved", "Refused", "Canceled", "Unused offer")),
        C("DECISION_DATE", "date", "date of the decision"),
        C("CNT_PAYMENT", "int", "term in months", min=0, max=120, nullable=True),
    ),
)

INSTALLMENTS_PAYMENTS = Table(
    name="installments_payments",
    description="Repayment history of previous credits: one row per instalment.",
    primary_key=("SK_ID_PREV", "NUM_INSTALMENT_NUMBER"),
    event_time="PAYMENT_DATE",
    landing_format="parquet",
    columns=(
        C("SK_ID_PREV", "int", "previous application id", min=1),
        C("SK_ID_CURR", "int", "application id", min=1),
        C("NUM_INSTALMENT_NUMBER", "int", "instalment number", min=1, max=400),
        C("DUE_DATE", "date", "when the instalment was due"),
        C("PAYMENT_DATE", "date", "when it was paid (null: not paid)", nullable=True),
        C("AMT_INSTALMENT", "float", "amount due", min=0, max=1e7),
        C("AMT_PAYMENT", "float", "amount paid", min=0, max=1e7, nullable=True),
    ),
)

CREDIT_CARD_BALANCE = Table(
    name="credit_card_balance",
    description="Monthly balance of previous credit cards.",
    primary_key=("SK_ID_PREV", "BALANCE_MONTH"),
    event_time="BALANCE_MONTH",
    landing_format="jsonl",
    columns=(
        C("SK_ID_PREV", "int", "previous application id", min=1),
        C("SK_ID_CURR", "int", "application id", min=1),
        C("BALANCE_MONTH", "date", "first day of the month"),
        C("AMT_BALANCE", "float", "balance", min=-1e6, max=1e8),
        C("AMT_CREDIT_LIMIT_ACTUAL", "float", "credit limit", min=0, max=1e8),
        C("AMT_DRAWINGS_CURRENT", "float", "drawings in the month", min=0, max=1e8, nullable=True),
        C("AMT_PAYMENT_CURRENT", "float", "payments in the month", min=0, max=1e8, nullable=True),
        C("SK_DPD", "int", "days past due", min=0, max=3000),
    ),
)

LOAN_OUTCOME = Table(
    name="loan_outcome",
    description="The label: did the loan default within the outcome window. Lands after the window.",
    primary_key=("SK_ID_CURR",),
    event_time="OUTCOME_TIME",
    landing_format="csv",
    columns=(
        C("SK_ID_CURR", "int", "application id", min=1),
        C("TARGET", "int", "1 = defaulted within the outcome window", allowed=None, min=0, max=1),
        C("OUTCOME_TIME", "timestamp", "when the outcome became known (UTC)"),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (APPLICATION, BUREAU, BUREAU_BALANCE, PREVIOUS_APPLICATION, INSTALLMENTS_PAYMENTS,
              CREDIT_CARD_BALANCE, LOAN_OUTCOME)
}
TABLE_NAMES: tuple[str, ...] = tuple(TABLES)


def contract_markdown(table: Table) -> str:
    """The contract as a markdown table (docs and asset metadata)."""
    lines = [
        f"**{table.name}** — {table.description}  ",
        f"key: `{', '.join(table.primary_key)}` · event time: `{table.event_time}` · "
        f"landing format: `{table.landing_format}` · schema policy: `{table.schema_policy}`",
        "",
        "| column | type | null | required | range / values | PII | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in table.columns:
        if c.allowed:
            rng = ", ".join(c.allowed)
        elif c.min is not None or c.max is not None:
            rng = _rng(c)
        else:
            rng = ""
        lines.append(
            f"| {c.name} | {c.dtype} | {'yes' if c.nullable else 'no'} | {'yes' if c.required else 'no'} "
            f"| {rng} | {c.pii if c.pii != 'none' else ''} | {c.description} |"
        )
    return "\n".join(lines)


def _rng(c: Column) -> str:
    lo = "-inf" if c.min is None else f"{c.min:g}"
    hi = "+inf" if c.max is None else f"{c.max:g}"
    return f"[{lo}, {hi}]"

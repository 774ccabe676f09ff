"""The applicants: one row per application, driven by a latent risk ``z ~ N(0, 1)``.

Higher ``z`` means riskier: lower income and external scores, younger, shorter employment,
higher credit relative to income. Drift scenarios change the distributions from the drift
hour on. Times are integers: seconds (timestamps), days and months since 1970-01-01 (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import SimulationConfig
from .rand import choice, choice_rows, sigmoid, stream

SECONDS_PER_DAY = 86_400
# The vocabularies the simulator draws from (in the order of its probability tables); each is a subset of the
# values the contract allows (``tests/unit/test_contracts.py``), which also knows real Home Credit values.
CONTRACT_TYPES = ("Cash loans", "Revolving loans")
INCOME_TYPES = ("Working", "Commercial associate", "Pensioner", "State servant", "Unemployed",
                "Student", "Businessman", "Maternity leave")
EDUCATION_TYPES = ("Secondary / secondary special", "Higher education", "Incomplete higher",
                   "Lower secondary", "Academic degree")
FAMILY_STATUSES = ("Married", "Single / not married", "Civil marriage", "Separated", "Widow")
HOUSING_TYPES = ("House / apartment", "With parents", "Municipal apartment", "Rented apartment",
                 "Office apartment", "Co-op apartment")
#: Home Credit's "not applicable" in its DAYS_* columns: in DAYS_EMPLOYED, "not employed" (pensioners and the
#: unemployed). The one definition: ``ingest.homecredit`` imports it as ``SENTINEL_DAYS``.
PENSIONER_SENTINEL = 365_243
REVOLVING = CONTRACT_TYPES.index("Revolving loans")
GENDERS = ("F", "M", "XNA")
OCCUPATIONS = ("Laborers", "Sales staff", "Core staff", "Managers", "Drivers", "High skill tech staff",
               "Accountants", "Medicine staff", "Security staff", "Cooking staff", "Cleaning staff",
               "Private service staff", "Low-skill Laborers", "Waiters/barmen staff", "Secretaries",
               "Realty agents", "HR staff", "IT staff")
_OCC_P = (0.26, 0.15, 0.13, 0.10, 0.09, 0.05, 0.045, 0.04, 0.03, 0.028, 0.022, 0.012, 0.01, 0.006, 0.006,
          0.004, 0.003, 0.003)
ORGANIZATIONS = ("Business Entity Type 3", "Self-employed", "Other", "Medicine", "Business Entity Type 2",
                 "Government", "School", "Trade: type 7", "Kindergarten", "Construction", "Business Entity Type 1",
                 "Transport: type 4", "Industry: type 9", "Security", "Housing", "Bank", "Police", "Military",
                 "University", "XNA")
_ORG_P = (0.27, 0.15, 0.07, 0.045, 0.04, 0.04, 0.035, 0.03, 0.028, 0.027, 0.024, 0.021, 0.013, 0.013,
          0.012, 0.01, 0.009, 0.01, 0.005)
_TERMS = np.array([12, 18, 24, 36, 48, 60, 84])
_TERM_P = (0.08, 0.07, 0.20, 0.25, 0.15, 0.17, 0.08)
_LIMITS = np.array([45_000, 67_500, 90_000, 112_500, 135_000, 180_000, 225_000, 270_000, 337_500, 450_000.0])
_EDU_INCOME = np.array([0.0, 0.22, 0.08, -0.15, 0.5])
_INCOME_TYPE_INCOME = np.array([0.0, 0.12, -0.3, 0.05, -0.6, -0.5, 0.6, -0.2])


@dataclass
class Applicants:
    """Column arrays of the applications of a run (index ``i`` = the i-th application in time order)."""

    sk_id_curr: np.ndarray
    hour: np.ndarray  # 0-based hour index of the decision (= landing hour)
    decision_ts: np.ndarray  # seconds since epoch
    decision_day: np.ndarray  # days since epoch
    decision_month: np.ndarray  # months since epoch
    drifted: np.ndarray
    z: np.ndarray
    contract: np.ndarray  # index into CONTRACT_TYPES
    gender: np.ndarray  # index into GENDERS
    own_car: np.ndarray
    own_realty: np.ndarray
    children: np.ndarray
    income: np.ndarray
    credit: np.ndarray
    annuity: np.ndarray  # yearly; NaN = null
    goods_price: np.ndarray  # NaN = null
    term_months: np.ndarray
    income_type: np.ndarray
    education: np.ndarray
    family: np.ndarray
    housing: np.ndarray
    days_employed: np.ndarray
    occupation: np.ndarray  # index into OCCUPATIONS, -1 = null
    organization: np.ndarray  # index into ORGANIZATIONS, -1 = null
    region_rating: np.ndarray
    ext1: np.ndarray  # NaN = null
    ext2: np.ndarray
    ext3: np.ndarray
    birth_day: np.ndarray  # days since epoch

    def __len__(self) -> int:
        return len(self.sk_id_curr)

    @property
    def age_years(self) -> np.ndarray:
        """Age at decision as the PD formula observes it: (decision date - birth date) / 365.25."""
        return (self.decision_day - self.birth_day) / 365.25


def generate_applicants(cfg: SimulationConfig) -> Applicants:
    """Every application of the run, in decision-time order (exactly ``rows_per_hour`` per hour)."""
    rng = stream(cfg.seed, "applicants")
    n = cfg.hours * cfg.rows_per_hour
    hour = np.repeat(np.arange(cfg.hours, dtype=np.int64), cfg.rows_per_hour)
    sec = np.sort(rng.integers(0, 3600, size=(cfg.hours, cfg.rows_per_hour)), axis=1).ravel()
    start = int(np.datetime64(cfg.start_datetime, "s").astype(np.int64))
    ts = start + hour * 3600 + sec
    day = ts // SECONDS_PER_DAY
    month = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    ds = cfg.effective_drift_start
    drifted = np.zeros(n, bool) if ds is None else hour >= ds
    shift_income = drifted & (cfg.drift == "income_shift")
    mix = drifted & (cfg.drift == "product_mix")

    z = rng.standard_normal(n)
    age = _ages(rng, z, mix)
    birth_day = day - np.clip(np.round(age * 365.25), 7_686, 25_900).astype(np.int64)
    gender = choice(rng, n, [0.655, 0.3449, 0.0001])
    education = choice_rows(rng, np.exp(np.column_stack([
        np.zeros(n), -1.1 - 0.5 * z, np.full(n, -3.2), -4.0 + 0.4 * z, np.full(n, -7.3)])))
    income_type = _income_types(rng, z, age)
    days_employed = _days_employed(rng, z, age, income_type)
    income = _incomes(rng, z, education, income_type, shift_income)
    contract = np.where(rng.random(n) < np.where(mix, 0.40, 0.095), REVOLVING, 0)
    credit, annuity, goods, term = _loan_terms(rng, z, income, contract, shift_income)
    ext1, ext2, ext3 = _ext_sources(rng, z, mix)
    return Applicants(
        sk_id_curr=100_001 + np.arange(n, dtype=np.int64), hour=hour, decision_ts=ts, decision_day=day,
        decision_month=month, drifted=drifted, z=z, contract=contract, gender=gender,
        own_car=rng.random(n) < sigmoid(-0.65 + 1.2 * (np.log(income) - np.log(150_000)) - 0.1 * z),
        own_realty=rng.random(n) < sigmoid(0.8 + 0.02 * (age - 40)),
        children=np.clip(rng.poisson(np.where((age > 25) & (age < 50), 0.55, 0.2)), 0, 20),
        income=income, credit=credit, annuity=annuity, goods_price=goods, term_months=term,
        income_type=income_type, education=education, family=_family(rng, age), housing=_housing(rng, age),
        days_employed=days_employed, occupation=_occupations(rng, days_employed, education),
        organization=_organizations(rng, income_type),
        region_rating=1 + choice_rows(rng, np.column_stack([
            sigmoid(-2.2 - 0.3 * z), np.full(n, 0.74), sigmoid(-1.8 + 0.3 * z)])),
        ext1=ext1, ext2=ext2, ext3=ext3, birth_day=birth_day,
    )


def _ages(rng: np.random.Generator, z: np.ndarray, younger: np.ndarray) -> np.ndarray:
    raw = 44.0 - 4.0 * z + 11.0 * rng.standard_normal(len(z)) - 9.0 * younger
    return 21.0 + 49.0 / (1.0 + np.exp(-(raw - 45.5) / 11.0))


def _income_types(rng: np.random.Generator, z: np.ndarray, age: np.ndarray) -> np.ndarray:
    n = len(z)
    idx = INCOME_TYPES.index
    p = np.zeros((n, len(INCOME_TYPES)))
    p[:, idx("Working")] = 0.63
    p[:, idx("Commercial associate")] = 0.28 * np.exp(-0.1 * z)
    p[:, idx("State servant")] = 0.085 * np.exp(-0.2 * z)
    p[:, idx("Unemployed")] = 0.004 * np.exp(0.8 * z)
    p[:, idx("Student")] = np.where(age < 30, 0.002, 0.0)
    p[:, idx("Businessman")] = 0.0005
    p[:, idx("Maternity leave")] = np.where(age < 45, 0.001, 0.0)
    types = choice_rows(rng, p)
    pensioner = rng.random(n) < sigmoid((age - 60.0) / 1.8)
    return np.where(pensioner, idx("Pensioner"), types)


def _days_employed(rng: np.random.Generator, z: np.ndarray, age: np.ndarray, income_type: np.ndarray) -> np.ndarray:
    years = np.minimum(age - 18.0, rng.gamma(1.3, 5.0 * np.exp(-0.25 * z)))
    days = -np.maximum(1, np.round(years * 365.25)).astype(np.int64)
    sentinel = np.isin(income_type, [INCOME_TYPES.index("Pensioner"), INCOME_TYPES.index("Unemployed")])
    return np.where(sentinel, PENSIONER_SENTINEL, np.maximum(days, -20_000))


def _incomes(rng: np.random.Generator, z: np.ndarray, education: np.ndarray, income_type: np.ndarray,
             shift: np.ndarray) -> np.ndarray:
    log_inc = (np.log(150_000) + 0.42 * rng.standard_normal(len(z)) - 0.12 * z + _EDU_INCOME[education]
               + _INCOME_TYPE_INCOME[income_type])
    income = np.maximum(25_000.0, np.round(np.exp(log_inc), -2))
    return np.round(np.where(shift, income * 0.7, income), 2)


def _loan_terms(rng: np.random.Generator, z: np.ndarray, income: np.ndarray, contract: np.ndarray,
                shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(AMT_CREDIT, yearly AMT_ANNUITY, AMT_GOODS_PRICE, term in months) of the requested loan."""
    n = len(z)
    revolving = contract == REVOLVING
    cash = np.clip(np.round(income * np.exp(np.log(0.65) + 0.5 * rng.standard_normal(n) + 0.12 * z), -3),
                   45_000, 4_000_000)
    target_limit = income * 0.45 * np.exp(0.4 * rng.standard_normal(n))
    limit = _LIMITS[np.abs(np.log(target_limit)[:, None] - np.log(_LIMITS)[None, :]).argmin(axis=1)]
    credit = np.where(revolving, limit, cash)
    credit = np.round(np.where(shift, credit * 1.2, credit), 2)
    term = np.where(revolving, 0, _TERMS[choice(rng, n, _TERM_P)])
    apr = np.clip(0.12 + 0.025 * z + 0.02 * rng.standard_normal(n), 0.04, 0.35)
    r = apr / 12.0
    cash_annuity = 12.0 * credit * r / (1.0 - (1.0 + r) ** -np.maximum(term, 1))
    annuity = np.round(np.where(revolving, 0.6 * credit, cash_annuity), 2)
    annuity = np.where(rng.random(n) < 0.0005, np.nan, annuity)
    goods = np.round(credit / rng.uniform(1.0, 1.2, n), -2)
    goods = np.where(revolving | (rng.random(n) < 0.001), np.nan, goods)
    return credit, annuity, goods, term


def _ext_sources(rng: np.random.Generator, z: np.ndarray,
                 mix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def score(rho: float, power: float, missing: np.ndarray | float) -> np.ndarray:
        latent = -rho * z + np.sqrt(1.0 - rho ** 2) * rng.standard_normal(len(z))
        value = np.round(np.clip(sigmoid(1.7 * latent) ** power, 1e-6, 1.0 - 1e-6), 6)
        return np.where(rng.random(len(z)) < missing, np.nan, value)

    ext1 = score(0.45, 1.1, 0.5)
    ext2 = score(0.55, 0.8, 0.002)
    ext3 = score(0.50, 0.9, np.where(mix, 0.45, 0.20))
    return ext1, ext2, ext3


def _family(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    n = len(age)
    young, old = (age < 28).astype(float), (age > 60).astype(float)
    p = np.column_stack([np.full(n, 0.64) - 0.3 * young, 0.15 + 0.3 * young, np.full(n, 0.10),
                         np.full(n, 0.065), 0.02 + 0.2 * old])
    assert len(FAMILY_STATUSES) == p.shape[1]
    return choice_rows(rng, p)


def _housing(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    n = len(age)
    young = (age < 28).astype(float)
    p = np.column_stack([0.89 - 0.2 * young, 0.03 + 0.2 * young, np.full(n, 0.036), np.full(n, 0.016),
                         np.full(n, 0.0085), np.full(n, 0.004)])
    assert len(HOUSING_TYPES) == p.shape[1]
    return choice_rows(rng, p)


def _occupations(rng: np.random.Generator, days_employed: np.ndarray, education: np.ndarray) -> np.ndarray:
    n = len(days_employed)
    p = np.tile(np.array(_OCC_P), (n, 1))
    higher = education == EDUCATION_TYPES.index("Higher education")
    for name in ("Managers", "High skill tech staff", "Accountants", "IT staff", "Core staff"):
        p[higher, OCCUPATIONS.index(name)] *= 3.0
    occ = choice_rows(rng, p)
    missing = (days_employed == PENSIONER_SENTINEL) | (rng.random(n) < 0.12)
    return np.where(missing, -1, occ)


def _organizations(rng: np.random.Generator, income_type: np.ndarray) -> np.ndarray:
    n = len(income_type)
    org = choice(rng, n, _ORG_P)
    not_employed = np.isin(income_type, [INCOME_TYPES.index("Pensioner"), INCOME_TYPES.index("Unemployed")])
    org = np.where(not_employed, ORGANIZATIONS.index("XNA"), org)
    return np.where(rng.random(n) < 0.005, -1, org)

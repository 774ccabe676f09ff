"""The applicants' history before the decision: bureau credits and previous applications.

Generated in two levels so that a run writing only ``application`` stays fast:

* credit level (always): one record per bureau credit / previous application, including the
  summary that fixes what its monthly rows will show (worst DPD bucket, number of late
  instalments, last card utilisation). The ground-truth PD uses aggregates of these, which
  are exactly the aggregates of the rows, because the rows are built to honour them;
* row level (only for tables that are written): ``bureau_balance``, ``installments_payments``,
  ``credit_card_balance``, ``pos_cash_balance`` expanded from the credit level with vectorised numpy.

Every event time is strictly before the application's decision: dates at most the day
before the decision date, balance months at most the month before the decision month.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .population import Applicants
from .rand import choice_rows, group_max, group_sum, ranks_within, segment_positions, sigmoid

CREDIT_ACTIVE = ("Active", "Closed", "Sold", "Bad debt")
CREDIT_TYPES = ("Consumer credit", "Credit card", "Car loan", "Mortgage", "Microloan")
#: STATUS values of bureau_balance; index 2 + k is DPD bucket k (0 = no DPD)
BB_STATUS = ("C", "X", "0", "1", "2", "3", "4", "5")
PREV_TYPES = ("Cash loans", "Revolving loans", "Consumer loans")
PREV_STATUS = ("Approved", "Refused", "Canceled", "Unused offer")
#: NAME_CONTRACT_STATUS values of pos_cash_balance the simulator writes (a subset of the contract's)
POS_STATUS = ("Active", "Completed", "Signed", "Demand", "Returned to the store")
_TYPE_AMOUNT = np.array([0.5, 0.6, 2.5, 8.0, 0.05])
_TYPE_TERM_DAYS = np.array([[180, 1100], [365, 1826], [1095, 2555], [3650, 9125], [30, 180]])
_PREV_TERMS = np.array([6, 10, 12, 18, 24])
_PREV_TERM_P = (0.25, 0.2, 0.3, 0.1, 0.15)
_LIMITS = np.array([22_500, 45_000, 67_500, 90_000, 135_000, 180_000, 225_000, 270_000, 450_000.0])
HISTORY_DAYS = 1_826  # ~5 years
BALANCE_MONTHS = 24
INSTALMENT_GUARD_DAYS = 62
NULL_DAY = -(10**9)  # a null date in day arrays (days since epoch can be negative: births before 1970)  # an instalment is in the history only if even a 60-day late payment precedes the decision


def months_to_days(month: np.ndarray, day_of_month: np.ndarray | int = 1) -> np.ndarray:
    """Days since epoch of ``day_of_month`` (1-based) in ``month`` (months since epoch)."""
    first = np.asarray(month).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return first + np.asarray(day_of_month) - 1


def day_to_month(day: np.ndarray) -> np.ndarray:
    return np.asarray(day).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def day_of_month(day: np.ndarray) -> np.ndarray:
    return np.asarray(day) - months_to_days(day_to_month(day)) + 1


def dpd_bucket(days_overdue: np.ndarray) -> np.ndarray:
    """Days overdue → bucket 0 (none), 1 (1-30) .. 5 (120+)."""
    return np.clip(np.ceil(np.asarray(days_overdue) / 30.0), 0, 5).astype(np.int64)


@dataclass
class BureauCredits:
    owner: np.ndarray  # applicant index
    sk_id_bureau: np.ndarray
    active: np.ndarray  # index into CREDIT_ACTIVE
    credit_type: np.ndarray  # index into CREDIT_TYPES
    date_credit: np.ndarray  # day
    date_end: np.ndarray  # day; NULL_DAY = null
    day_overdue: np.ndarray
    amt_sum: np.ndarray
    amt_debt: np.ndarray  # NaN = null
    amt_overdue: np.ndarray
    prolong: np.ndarray
    reported_ts: np.ndarray  # seconds
    first_month: np.ndarray  # first bureau_balance month
    n_months: np.ndarray  # bureau_balance rows
    n_active_months: np.ndarray  # rows before closing (the rest are "C")
    hist_worst: np.ndarray  # worst DPD bucket drawn for the credit's history
    worst: np.ndarray  # worst DPD bucket its bureau_balance rows show (0 when none)

    def __len__(self) -> int:
        return len(self.owner)


@dataclass
class PreviousApplications:
    owner: np.ndarray
    sk_id_prev: np.ndarray
    contract: np.ndarray  # index into PREV_TYPES
    status: np.ndarray  # index into PREV_STATUS
    decision_day: np.ndarray
    amt_application: np.ndarray
    amt_credit: np.ndarray  # NaN = null
    amt_annuity: np.ndarray  # yearly; NaN = null
    cnt_payment: np.ndarray  # NaN = null
    first_due_month: np.ndarray
    due_day_of_month: np.ndarray
    n_instalments: np.ndarray  # instalment rows (approved non-revolving credits)
    n_late: np.ndarray
    n_underpaid: np.ndarray
    card_first_month: np.ndarray
    n_card_months: np.ndarray  # credit_card_balance rows (approved revolving credits)
    card_last_balance: np.ndarray
    card_utilisation: np.ndarray  # last month's balance / limit, as written

    def __len__(self) -> int:
        return len(self.owner)


@dataclass
class HistorySummary:
    """Per-applicant aggregates of the pre-decision history (what the PD formula observes)."""

    n_bureau: np.ndarray
    n_overdue: np.ndarray  # bureau credits with CREDIT_DAY_OVERDUE > 0
    worst_dpd: np.ndarray  # max DPD bucket over bureau_balance STATUS (C, X count as 0)
    n_prev: np.ndarray
    n_refused: np.ndarray
    n_instalments: np.ndarray
    n_late: np.ndarray  # instalments with PAYMENT_DATE > DUE_DATE
    n_cards: np.ndarray  # revolving previous credits with at least one balance month
    utilisation: np.ndarray  # mean over those cards of the last month's AMT_BALANCE / AMT_CREDIT_LIMIT_ACTUAL; NaN: none


# ------------------------------------------------------------------------------ bureau

def generate_bureau(app: Applicants, rng: np.random.Generator) -> BureauCredits:
    """Credit-level bureau records of every applicant (~0-10 each, mean ~4)."""
    lam = np.clip(3.9 + 0.03 * (app.age_years - 42.0), 1.5, 6.5)
    counts = np.minimum(rng.poisson(lam), 10)
    owner = np.repeat(np.arange(len(app)), counts)
    n = len(owner)
    z, day, month = app.z[owner], app.decision_day[owner], app.decision_month[owner]
    credit_type = choice_rows(rng, np.column_stack([
        np.full(n, 0.73), np.full(n, 0.23), np.full(n, 0.016), np.full(n, 0.01), 0.007 * np.exp(0.8 * z)]))
    date_credit = day - rng.integers(35, HISTORY_DAYS, n)
    lo, hi = _TYPE_TERM_DAYS[credit_type, 0], _TYPE_TERM_DAYS[credit_type, 1]
    planned_end = date_credit + (lo + rng.random(n) * (hi - lo)).astype(np.int64)
    ended = planned_end < day - 1
    active = choice_rows(rng, np.column_stack([
        np.where(ended, 0.03, 0.84), np.where(ended, 0.96, 0.15), np.full(n, 0.004), 0.004 * np.exp(0.9 * z)]))
    is_active, is_closed, is_bad = active == 0, active == 1, active == 3
    close_day = np.where(ended, np.minimum(planned_end + rng.integers(-30, 31, n), day - 2),
                         date_credit + (rng.uniform(0.3, 0.95, n) * (day - date_credit)).astype(np.int64))
    close_day = np.maximum(close_day, date_credit + 1)
    end_null = rng.random(n) < np.where(credit_type == 1, 0.4, 0.05)
    date_end = np.where(end_null, NULL_DAY, np.where(is_closed, np.minimum(planned_end, close_day), planned_end))

    overdue = np.where(is_active & (rng.random(n) < sigmoid(-3.0 + 1.1 * z)),
                       np.ceil(rng.exponential(25.0 * np.exp(0.5 * z))), 0)
    overdue = np.where(is_bad, 121 + np.floor(rng.exponential(300.0, n)), overdue)
    overdue = np.clip(overdue, 0, 3000).astype(np.int64)

    amt_sum = np.round(np.clip(app.income[owner] * _TYPE_AMOUNT[credit_type] * np.exp(0.6 * rng.standard_normal(n)),
                               1_000, 5e8), 2)
    remaining = np.clip((planned_end - day) / np.maximum(planned_end - date_credit, 1), 0.05, 1.0)
    debt = np.where(is_active | is_bad, amt_sum * remaining * rng.uniform(0.8, 1.0, n), 0.0)
    debt = np.where(active == 2, amt_sum * rng.uniform(0.2, 0.9, n), debt)
    debt = np.round(np.where(rng.random(n) < 0.15, np.nan, debt), 2)
    amt_overdue = np.where(overdue > 0, np.round(np.where(np.isnan(debt), amt_sum, debt) * rng.uniform(0.01, 0.25, n), 2), 0.0)

    first_month = np.maximum(day_to_month(date_credit), month - BALANCE_MONTHS)
    n_months = month - first_month  # >= 1: credits open at least 35 days before the decision
    n_active = np.where(is_closed, np.clip(day_to_month(close_day) - first_month + 1, 0, n_months), n_months)
    hist = np.where(rng.random(n) < sigmoid(-3.0 + 1.0 * z),
                    1 + np.minimum(4, np.floor(rng.exponential(0.6 * np.exp(0.3 * z)))), 0).astype(np.int64)
    worst = np.where(n_active >= 1, np.maximum(hist, dpd_bucket(overdue)), 0)
    return BureauCredits(
        owner=owner, sk_id_bureau=5_000_001 + np.arange(n, dtype=np.int64), active=active, credit_type=credit_type,
        date_credit=date_credit, date_end=date_end, day_overdue=overdue, amt_sum=amt_sum, amt_debt=debt,
        amt_overdue=amt_overdue, prolong=np.minimum(rng.poisson(0.03 * np.exp(0.6 * z)), 50),
        reported_ts=app.decision_ts[owner] - rng.integers(60, 3 * 86_400, n), first_month=first_month,
        n_months=n_months, n_active_months=n_active, hist_worst=hist, worst=worst)


def bureau_balance_rows(b: BureauCredits, app: Applicants, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Monthly statuses whose max DPD bucket per credit is exactly ``b.worst``."""
    credit, pos = segment_positions(b.n_months)
    z = app.z[b.owner][credit]
    n = len(credit)
    hist = b.hist_worst[credit]
    status = np.minimum(np.floor(rng.exponential(0.35 * np.exp(0.4 * z))), hist).astype(np.int64)
    worst_pos = (rng.random(len(b)) * np.maximum(b.n_active_months, 1)).astype(np.int64)
    status = np.where(pos == worst_pos[credit], hist, status)
    last = pos == b.n_months[credit] - 1
    status = np.where(last, np.maximum(status, dpd_bucket(b.day_overdue[credit])), status)
    code = 2 + status  # index into BB_STATUS
    code = np.where((status == 0) & (rng.random(n) < 0.03), 1, code)  # X: unknown
    code = np.where(pos >= b.n_active_months[credit], 0, code)  # C: closed
    return {"SK_ID_BUREAU": b.sk_id_bureau[credit], "BALANCE_MONTH": b.first_month[credit] + pos,
            "STATUS": code, "_owner": b.owner[credit]}


# ------------------------------------------------------------------ previous applications

def generate_previous(app: Applicants, rng: np.random.Generator) -> PreviousApplications:
    """Credit-level previous applications (0-6 each, mean ~2.5) with their repayment summary."""
    counts = rng.binomial(6, 0.42, len(app))
    owner = np.repeat(np.arange(len(app)), counts)
    n = len(owner)
    z, day, month, income = app.z[owner], app.decision_day[owner], app.decision_month[owner], app.income[owner]
    contract = choice_rows(rng, np.tile([0.33, 0.25, 0.42], (n, 1)))
    revolving = contract == 1
    refused = rng.random(n) < sigmoid(-1.7 + 0.9 * z)
    other = choice_rows(rng, np.column_stack([np.full(n, 0.86), np.zeros(n), np.full(n, 0.12),
                                              np.where(contract == 2, 0.02, 0.0)]))
    status = np.where(refused, 1, other)
    approved = status == 0
    granted = approved | (status == 3)
    prev_day = day - rng.integers(40, HISTORY_DAYS, n)

    asked = np.where(contract == 2, income * 0.25 * np.exp(0.7 * rng.standard_normal(n)),
                     income * 0.8 * np.exp(0.5 * rng.standard_normal(n)))
    limit = _LIMITS[np.abs(np.log(income * 0.45)[:, None] - np.log(_LIMITS)[None, :]).argmin(axis=1)]
    asked = np.round(np.where(revolving, limit, np.clip(asked, 5_000, 5e7)), 2)
    credit = np.where(granted, np.where(revolving, asked, np.round(asked * rng.uniform(0.9, 1.15, n), 2)), np.nan)
    term = np.where(revolving, 0, _PREV_TERMS[choice_rows(rng, np.tile(_PREV_TERM_P, (n, 1)))]).astype(float)
    term = np.where(status == 2, np.nan, term)
    r = rng.uniform(0.15, 0.35, n) / 12.0
    safe_term = np.where(np.isnan(term) | (term < 1), 1.0, term)
    annuity = np.where(revolving, 0.6 * credit, 12.0 * credit * r / (1.0 - (1.0 + r) ** -safe_term))
    annuity = np.round(np.where(np.isnan(term) & ~revolving, np.nan, annuity), 2)

    # instalments of approved fixed-term credits, due monthly from the month after the decision
    first_due = day_to_month(prev_day) + 1
    due_dom = np.minimum(day_of_month(prev_day), 28)
    limit_day = day - INSTALMENT_GUARD_DAYS
    last_due = day_to_month(limit_day) - (day_of_month(limit_day) < due_dom)
    instalments = approved & ~revolving
    n_inst = np.where(instalments, np.clip(last_due - first_due + 1, 0, np.nan_to_num(term)), 0).astype(np.int64)
    n_late = rng.binomial(n_inst, sigmoid(-2.7 + 1.1 * z + 0.5 * rng.standard_normal(n)))
    n_under = rng.binomial(n_inst, sigmoid(-3.5 + 0.9 * z))

    # credit cards: monthly balances from the month after the decision, last 24 before this decision
    cards = approved & revolving
    n_card = np.where(cards, np.clip(month - day_to_month(prev_day) - 1, 0, BALANCE_MONTHS), 0).astype(np.int64)
    util = np.clip(sigmoid(-0.9 + 1.1 * z + 0.9 * rng.standard_normal(n)) * 1.08, 0.0, 1.08)
    last_balance = np.round(util * np.nan_to_num(credit), 2)
    card_util = np.where(n_card > 0, last_balance / np.where(cards, credit, 1.0), np.nan)
    return PreviousApplications(
        owner=owner, sk_id_prev=1_000_001 + np.arange(n, dtype=np.int64), contract=contract, status=status,
        decision_day=prev_day, amt_application=asked, amt_credit=credit, amt_annuity=annuity, cnt_payment=term,
        first_due_month=first_due, due_day_of_month=due_dom, n_instalments=n_inst, n_late=n_late,
        n_underpaid=n_under, card_first_month=month - n_card, n_card_months=n_card, card_last_balance=last_balance,
        card_utilisation=card_util)


def installments_rows(p: PreviousApplications, app: Applicants, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One row per paid instalment; exactly ``p.n_late`` of a credit's rows are paid after their due date."""
    credit, pos = segment_positions(p.n_instalments)
    n = len(credit)
    due = months_to_days(p.first_due_month[credit] + pos, p.due_day_of_month[credit])
    late = ranks_within(credit, rng) < p.n_late[credit]
    under = ranks_within(credit, rng) < p.n_underpaid[credit]
    delay = np.where(late, np.minimum(1 + np.floor(rng.exponential(8.0, n)), 60), -rng.integers(0, 11, n))
    amount = np.round(p.amt_annuity[credit] / 12.0, 2)
    paid = np.where(under, np.round(amount * rng.uniform(0.2, 0.95, n), 2), amount)
    return {"SK_ID_PREV": p.sk_id_prev[credit], "SK_ID_CURR": app.sk_id_curr[p.owner[credit]],
            "NUM_INSTALMENT_NUMBER": pos + 1, "DUE_DATE": due, "PAYMENT_DATE": due + delay.astype(np.int64),
            "AMT_INSTALMENT": amount, "AMT_PAYMENT": paid, "_owner": p.owner[credit]}


def credit_card_rows(p: PreviousApplications, app: Applicants, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Monthly card balances; the last month's balance is ``p.card_last_balance`` exactly."""
    credit, pos = segment_positions(p.n_card_months)
    n = len(credit)
    limit = p.amt_credit[credit]
    z = app.z[p.owner[credit]]
    last = pos == p.n_card_months[credit] - 1
    util = np.clip(p.card_utilisation[credit] * np.exp(0.35 * rng.standard_normal(n)) + 0.05 * rng.standard_normal(n),
                   0.0, 1.1)
    balance = np.where(last, p.card_last_balance[credit], np.round(util * limit, 2))
    previous = np.where(pos == 0, 0.0, np.roll(balance, 1))
    payment = np.round(previous * rng.uniform(0.05, 0.35, n), 2)
    drawings = np.round(balance - previous + payment, 2)
    payment = np.where(drawings < 0, np.round(payment - drawings, 2), payment)
    drawings = np.maximum(drawings, 0.0)
    dpd = np.where(rng.random(n) < sigmoid(-4.0 + 1.3 * z), rng.integers(1, 90, n), 0)
    return {"SK_ID_PREV": p.sk_id_prev[credit], "SK_ID_CURR": app.sk_id_curr[p.owner[credit]],
            "BALANCE_MONTH": p.card_first_month[credit] + pos, "AMT_BALANCE": balance, "AMT_CREDIT_LIMIT_ACTUAL": limit,
            "AMT_DRAWINGS_CURRENT": np.where(rng.random(n) < 0.01, np.nan, drawings),
            "AMT_PAYMENT_CURRENT": np.where(rng.random(n) < 0.01, np.nan, payment),
            "SK_DPD": dpd, "_owner": p.owner[credit]}


def pos_cash_rows(p: PreviousApplications, app: Applicants, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Monthly rows of the approved previous cash and consumer loans (revolving ones are cards).

    A loan's month ``j`` (0 = the month of its decision) has ``CNT_INSTALMENT_FUTURE = term - j``,
    matching ``installments_rows`` (instalment ``k`` is due in month ``k + 1``); the month it reaches
    0 is ``Completed`` and the loan's last row. Rows stop at the month before the applicant's
    decision month, so a loan may still be active then. Days past due follow the loan's share of
    late instalments and the latent risk; ``Demand`` months (the lender calls the debt) are rare
    and long past due. Nothing here enters the PD: the rows add evidence a model may use.
    """
    loans = (p.status == PREV_STATUS.index("Approved")) & (p.contract != PREV_TYPES.index("Revolving loans"))
    term = np.nan_to_num(p.cnt_payment).astype(np.int64)
    start = day_to_month(p.decision_day)
    n_rows = np.where(loans, np.minimum(term + 1, app.decision_month[p.owner] - start), 0).astype(np.int64)
    credit, pos = segment_positions(n_rows)
    n = len(credit)
    owner = p.owner[credit]
    z = app.z[owner]
    future = (term[credit] - pos).astype(float)
    completed = future == 0
    late_share = p.n_late[credit] / np.maximum(p.n_instalments[credit], 1)
    running = ~completed & (pos > 0)
    status = np.where(completed, POS_STATUS.index("Completed"), POS_STATUS.index("Active"))
    status = np.where((pos == 0) & (rng.random(n) < 0.12), POS_STATUS.index("Signed"), status)
    demand = running & (rng.random(n) < sigmoid(-6.5 + 1.2 * z))
    status = np.where(demand, POS_STATUS.index("Demand"), status)
    returned = running & ~demand & (p.contract[credit] == PREV_TYPES.index("Consumer loans")) & (rng.random(n) < 5e-4)
    status = np.where(returned, POS_STATUS.index("Returned to the store"), status)

    late = running & ~returned & (rng.random(n) < np.clip(0.5 * late_share + 0.01 * np.exp(0.9 * z), 0, 0.9))
    dpd = np.where(late, 1 + np.floor(rng.exponential(6.0 * np.exp(0.4 * z))), 0)
    dpd = np.where(demand, 30 + np.floor(rng.exponential(90.0, n)), dpd)
    dpd = np.minimum(dpd, 4_000).astype(np.int64)
    tolerated = rng.random(n) < 0.45  # a low debt: SK_DPD_DEF ignores it
    dpd_def = np.where(demand | ~tolerated, dpd, 0)
    unknown_term = rng.random(n) < 0.002
    return {"SK_ID_PREV": p.sk_id_prev[credit], "SK_ID_CURR": app.sk_id_curr[owner], "BALANCE_MONTH": start[credit] + pos,
            "CNT_INSTALMENT": np.where(unknown_term, np.nan, term[credit].astype(float)),
            "CNT_INSTALMENT_FUTURE": np.where(unknown_term, np.nan, future), "NAME_CONTRACT_STATUS": status,
            "SK_DPD": dpd, "SK_DPD_DEF": dpd_def, "_owner": owner}


# ------------------------------------------------------------------------------ summary

def summarise(n_applicants: int, b: BureauCredits, p: PreviousApplications) -> HistorySummary:
    """The per-applicant aggregates of the history rows (computed at credit level, exactly)."""
    n = n_applicants
    cards = p.n_card_months > 0
    n_cards = np.bincount(p.owner[cards], minlength=n)
    util_sum = group_sum(p.card_utilisation[cards], p.owner[cards], n)
    with np.errstate(invalid="ignore", divide="ignore"):
        utilisation = np.where(n_cards > 0, util_sum / n_cards, np.nan)
    return HistorySummary(
        n_bureau=np.bincount(b.owner, minlength=n), n_overdue=np.bincount(b.owner[b.day_overdue > 0], minlength=n),
        worst_dpd=group_max(b.worst, b.owner, n, 0), n_prev=np.bincount(p.owner, minlength=n),
        n_refused=np.bincount(p.owner[p.status == 1], minlength=n),
        n_instalments=np.bincount(p.owner, weights=p.n_instalments, minlength=n).astype(np.int64),
        n_late=np.bincount(p.owner, weights=p.n_late, minlength=n).astype(np.int64), n_cards=n_cards,
        utilisation=utilisation)

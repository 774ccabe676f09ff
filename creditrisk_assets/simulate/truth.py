"""The ground truth: a documented PD function of observable quantities, and the Bayes-optimal AUC.

``TRUE_PD = sigmoid(logit)``; every term uses only what a feature pipeline can compute from the
landed rows dated before the decision (never the latent risk, never CODE_GENDER):

=================  ===================================================================================
term               contribution to the logit
=================  ===================================================================================
intercept          ``INTERCEPT`` (+``CONCEPT_DRIFT_SHIFT`` for drifted rows of the ``default_rate`` scenario)
EXT_SOURCE_2       ``-2.6 * (e2 - 0.55)``; missing: ``+0.35``
EXT_SOURCE_3       ``-2.4 * (e3 - 0.52)``; missing: ``+0.30``
EXT_SOURCE_1       ``-1.2 * (e1 - 0.50)``; missing: ``+0.05``
both scores low    ``+3.0 * max(0, 0.30 - min(e2, e3))`` when both are present
credit / income    ``+0.30 * ln(AMT_CREDIT / AMT_INCOME_TOTAL)``
annuity / income   ``+1.50 * max(0, AMT_ANNUITY / AMT_INCOME_TOTAL - 0.40)``; missing annuity: 0
age (years)        ``-0.012 * (age - 45) + 0.50 * max(0, (30 - age) / 10)``; age = (decision date - DATE_OF_BIRTH) days / 365.25
employment         DAYS_EMPLOYED == 365243: ``+0.45`` if age < 55 else 0; otherwise ``-0.05 * min(years employed, 15)``
region             ``+0.20 * (REGION_RATING_CLIENT - 2)``
bureau overdue     ``+0.45 * min(n bureau credits with CREDIT_DAY_OVERDUE > 0, 3)``
worst DPD          ``DPD_WEIGHTS[max DPD bucket over bureau_balance STATUS]`` (C, X = 0; no rows = 0)
overdue x leverage ``+0.25 * ln(AMT_CREDIT / AMT_INCOME_TOTAL)`` when any bureau credit is overdue
refused share      ``+1.00 * refused / previous applications``; no previous application: ``+0.15``
late share         ``+2.00 * sqrt(late / instalments)`` (late: PAYMENT_DATE > DUE_DATE); no instalment: ``+0.10``
card utilisation   ``+0.90 * u + 1.00 * max(0, u - 0.90)``, u = mean over cards of the last month's
                   AMT_BALANCE / AMT_CREDIT_LIMIT_ACTUAL; no card: 0
=================  ===================================================================================

``logit = INTERCEPT + RISK_SCALE * S`` with ``S`` the sum of the terms above (``RISK_SCALE`` =
0.55 sets the Bayes-optimal AUC to ~0.78; ``INTERCEPT`` = -3.33 was calibrated on 600k simulated
applications for a base default rate of ~8 % without drift). ``TARGET ~ Bernoulli(TRUE_PD)``.
The PD is defined on the clean generated data: injected anomalies (malformed rows, corrupt
files, ...) can hide some of its inputs from downstream, which then cannot reach the bound.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .history import HistorySummary
from .population import PENSIONER_SENTINEL, Applicants

INTERCEPT = -3.33
RISK_SCALE = 0.55
CONCEPT_DRIFT_SHIFT = 0.7
DPD_WEIGHTS = np.array([0.0, 0.20, 0.45, 0.70, 0.95, 1.20])

PD_FORMULA: tuple[str, ...] = (
    "TRUE_PD = sigmoid(INTERCEPT [+ CONCEPT_DRIFT_SHIFT if drifted and drift == default_rate] + RISK_SCALE * S)",
    "S = -2.6*(EXT_SOURCE_2-0.55) [missing: +0.35] - 2.4*(EXT_SOURCE_3-0.52) [missing: +0.30]"
    " - 1.2*(EXT_SOURCE_1-0.50) [missing: +0.05] + 3.0*max(0, 0.30-min(EXT_SOURCE_2, EXT_SOURCE_3)) [both present]",
    "  + 0.30*ln(AMT_CREDIT/AMT_INCOME_TOTAL) + 1.5*max(0, AMT_ANNUITY/AMT_INCOME_TOTAL-0.40) [missing annuity: 0]",
    "  - 0.012*(age-45) + 0.5*max(0, (30-age)/10), age = (date(DECISION_TIME)-DATE_OF_BIRTH).days/365.25",
    "  + (DAYS_EMPLOYED == 365243 ? (age < 55 ? 0.45 : 0) : -0.05*min(-DAYS_EMPLOYED/365.25, 15))",
    "  + 0.2*(REGION_RATING_CLIENT-2)",
    "  + 0.45*min(#bureau credits with CREDIT_DAY_OVERDUE > 0, 3) + [0, .2, .45, .7, .95, 1.2][worst bureau_balance"
    " DPD bucket (STATUS 1..5; C, X, none = 0)] + 0.25*ln(AMT_CREDIT/AMT_INCOME_TOTAL)*[any bureau credit overdue]",
    "  + 1.0*(#refused / #previous applications) [no previous application: +0.15]",
    "  + 2.0*sqrt(#instalments with PAYMENT_DATE > DUE_DATE / #instalments) [no instalment: +0.10]",
    "  + 0.9*u + 1.0*max(0, u-0.9), u = mean over previous credit cards of the last pre-decision month's"
    " AMT_BALANCE/AMT_CREDIT_LIMIT_ACTUAL [no card: 0]",
    "Only rows dated before the decision count (post-decision rows are a leakage trap). CODE_GENDER is not used.",
    "Inputs are the clean generated values; injected anomalies can hide some of them from downstream.",
    "TARGET ~ Bernoulli(TRUE_PD).",
)


def risk_score(app: Applicants, hist: HistorySummary) -> np.ndarray:
    """``S``: the observable part of the logit (see the module docstring)."""
    s = np.zeros(len(app))
    s += _score_term(app.ext2, -2.6, 0.55, 0.35)
    s += _score_term(app.ext3, -2.4, 0.52, 0.30)
    s += _score_term(app.ext1, -1.2, 0.50, 0.05)
    both = ~np.isnan(app.ext2) & ~np.isnan(app.ext3)
    low = np.maximum(0.0, 0.30 - np.fmin(app.ext2, app.ext3))
    s += np.where(both, 3.0 * low, 0.0)

    leverage = np.log(app.credit / app.income)
    s += 0.30 * leverage
    burden = app.annuity / app.income
    s += np.where(np.isnan(burden), 0.0, 1.5 * np.maximum(0.0, np.nan_to_num(burden) - 0.40))

    age = app.age_years
    s += -0.012 * (age - 45.0) + 0.5 * np.maximum(0.0, (30.0 - age) / 10.0)
    not_employed = app.days_employed == PENSIONER_SENTINEL
    years_employed = np.where(not_employed, 0.0, -app.days_employed / 365.25)
    s += np.where(not_employed, np.where(age < 55.0, 0.45, 0.0), -0.05 * np.minimum(years_employed, 15.0))
    s += 0.2 * (app.region_rating - 2)

    s += 0.45 * np.minimum(hist.n_overdue, 3)
    s += DPD_WEIGHTS[hist.worst_dpd]
    s += np.where(hist.n_overdue > 0, 0.25 * leverage, 0.0)
    s += _share_term(hist.n_refused, hist.n_prev, lambda x: 1.0 * x, 0.15)
    s += _share_term(hist.n_late, hist.n_instalments, lambda x: 2.0 * np.sqrt(x), 0.10)
    u = np.nan_to_num(hist.utilisation)
    s += np.where(hist.n_cards > 0, 0.9 * u + 1.0 * np.maximum(0.0, u - 0.9), 0.0)
    return s


def true_pd(app: Applicants, hist: HistorySummary, concept_drift: np.ndarray) -> np.ndarray:
    """The ground-truth probability of default of every application."""
    logit = INTERCEPT + RISK_SCALE * risk_score(app, hist) + np.where(concept_drift, CONCEPT_DRIFT_SHIFT, 0.0)
    return 1.0 / (1.0 + np.exp(-logit))


def _score_term(value: np.ndarray, slope: float, centre: float, missing: float) -> np.ndarray:
    return np.where(np.isnan(value), missing, slope * (np.nan_to_num(value) - centre))


def _share_term(num: np.ndarray, den: np.ndarray, f: Callable[[np.ndarray], np.ndarray],
                missing: float) -> np.ndarray:
    share = num / np.maximum(den, 1)
    return np.where(den > 0, f(share), missing)


def bayes_optimal_auc(pd: np.ndarray) -> float:
    """Expected AUC of ranking by the true PD when each label is Bernoulli(pd), exactly, in O(n log n).

    ``sum_{i != j} p_i (1 - p_j) ([p_i > p_j] + [p_i == p_j] / 2) / sum_{i != j} p_i (1 - p_j)``:
    the expected number of correctly ordered (default, non-default) pairs over the expected number
    of such pairs. Ties count one half.
    """
    p = np.sort(np.asarray(pd, dtype=float).ravel())
    if p.size < 2:
        return float("nan")
    q = 1.0 - p
    values, first, counts = np.unique(p, return_index=True, return_counts=True)
    q_group = np.add.reduceat(q, first)  # sum of (1 - p) of each group of equal values
    q_below = np.cumsum(q_group) - q_group  # sum of (1 - p) of strictly smaller values
    # pairs with p_j < p_i, plus half of the pairs tied with i (j != i)
    numerator = np.sum(values * counts * q_below) + 0.5 * np.sum(values * q_group * (counts - 1))
    denominator = p.sum() * q.sum() - np.sum(p * q)
    return float(numerator / denominator) if denominator > 0 else float("nan")

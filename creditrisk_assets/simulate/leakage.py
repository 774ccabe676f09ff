"""Post-decision activity: the leakage trap.

For ~30 % of applicants, rows about the NEW loan (a fresh ``SK_ID_PREV`` that has no
``previous_application`` row) are dated after the decision and land 1-6 hours after the
application: instalments for cash loans, card balances for revolving loans. Their behaviour
follows the outcome (defaulters miss payments, max out the card, go past due), so a feature
that fails to filter on event time < decision time looks suspiciously good.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .history import NULL_DAY, day_of_month, months_to_days
from .population import REVOLVING, Applicants

SHARE = 0.30
MAX_LAG_HOURS = 6


@dataclass
class PostDecision:
    applicant: np.ndarray  # applicant index of each selected applicant
    sk_id_prev: np.ndarray
    n_rows: np.ndarray  # rows per selected applicant (1-3)
    lag_hours: np.ndarray  # landing hour = application hour + lag
    revolving: np.ndarray


def select_post_decision(app: Applicants, rng: np.random.Generator, first_id: int) -> PostDecision:
    """Which applicants get post-decision rows, how many, and when they land."""
    chosen = np.flatnonzero(rng.random(len(app)) < SHARE)
    k = len(chosen)
    return PostDecision(applicant=chosen, sk_id_prev=first_id + np.arange(k, dtype=np.int64),
                        n_rows=rng.integers(1, 4, k), lag_hours=rng.integers(1, MAX_LAG_HOURS + 1, k),
                        revolving=app.contract[chosen] == REVOLVING)


def _expand(post: PostDecision, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into ``post`` of each row, 1-based row number) for the selected applicants in ``mask``."""
    sel = np.flatnonzero(mask)
    counts = post.n_rows[sel]
    owner = np.repeat(sel, counts)
    number = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    return owner, number


def post_installments(post: PostDecision, app: Applicants, target: np.ndarray,
                      rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Instalments of the new cash loan, due monthly after the decision."""
    idx, number = _expand(post, ~post.revolving)
    a = post.applicant[idx]
    n = len(a)
    day = app.decision_day[a]
    due = months_to_days(app.decision_month[a] + number, np.minimum(day_of_month(day), 28))
    bad = target[a] == 1
    missed = bad & (rng.random(n) < 0.6)
    late = np.where(bad, rng.integers(5, 61, n), np.where(rng.random(n) < 0.1, rng.integers(1, 31, n), 0))
    early = rng.integers(0, 6, n)
    payment_day = np.where(late > 0, due + late, due - early)
    amount = np.round(np.where(np.isnan(app.annuity[a]), app.credit[a] / np.maximum(app.term_months[a], 1),
                               app.annuity[a] / 12.0), 2)
    paid = np.where(bad, np.round(amount * rng.uniform(0.3, 1.0, n), 2), amount)
    return {"SK_ID_PREV": post.sk_id_prev[idx], "SK_ID_CURR": app.sk_id_curr[a], "NUM_INSTALMENT_NUMBER": number,
            "DUE_DATE": due, "PAYMENT_DATE": np.where(missed, NULL_DAY, payment_day),
            "AMT_INSTALMENT": amount, "AMT_PAYMENT": np.where(missed, np.nan, paid),
            "_owner": a, "_hour": app.hour[a] + post.lag_hours[idx]}


def post_card_balances(post: PostDecision, app: Applicants, target: np.ndarray,
                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Monthly balances of the new card from the month after the decision."""
    idx, number = _expand(post, post.revolving)
    a = post.applicant[idx]
    n = len(a)
    bad = target[a] == 1
    limit = app.credit[a]
    util = np.where(bad, rng.uniform(0.9, 1.1, n), rng.uniform(0.05, 0.7, n))
    balance = np.round(util * limit, 2)
    return {"SK_ID_PREV": post.sk_id_prev[idx], "SK_ID_CURR": app.sk_id_curr[a],
            "BALANCE_MONTH": app.decision_month[a] + number, "AMT_BALANCE": balance,
            "AMT_CREDIT_LIMIT_ACTUAL": limit, "AMT_DRAWINGS_CURRENT": balance,
            "AMT_PAYMENT_CURRENT": np.where(bad, 0.0, np.round(balance * rng.uniform(0.05, 0.5, n), 2)),
            "SK_DPD": np.where(bad & (number > 1), rng.integers(1, 60, n) * number, 0),
            "_owner": a, "_hour": app.hour[a] + post.lag_hours[idx]}

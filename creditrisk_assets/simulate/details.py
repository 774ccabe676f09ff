"""The application's columns outside the PD formula: plausible, some loosely tied to the latent risk.

Home Credit's application file has many columns beyond the ones ``truth.true_pd`` uses. The
simulator writes those the contract classifies as features (the drop ones it leaves out: silver
expects that) from their own random stream, so adding them changed no other column and no PD.
Distributions follow the published file roughly (shares and typical values noted inline); a
riskier applicant (higher ``z``) moved more recently, has more bureau enquiries and more
defaulters in the social circle, which a model may pick up without the PD depending on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .history import NULL_DAY
from .population import PENSIONER_SENTINEL, SECONDS_PER_DAY, Applicants
from .rand import choice, sigmoid

#: NAME_TYPE_SUITE values, in the order of ``_SUITE_P``
SUITES = ("Unaccompanied", "Family", "Spouse, partner", "Children", "Other_B", "Other_A", "Group of people")
_SUITE_P = (0.81, 0.131, 0.037, 0.0107, 0.0058, 0.0028, 0.0009)
#: HOUR_APPR_PROCESS_START is local time; DECISION_TIME is UTC
LOCAL_UTC_OFFSET_HOURS = 3
_POPULATION_BY_RATING = np.array([0.0, 0.045, 0.018, 0.008])  # typical REGION_POPULATION_RELATIVE per rating 1..3


@dataclass
class ApplicantDetails:
    """Column arrays aligned with ``Applicants`` (NaN / -1 / ``NULL_DAY`` = null)."""

    suite: np.ndarray  # index into SUITES
    region_population: np.ndarray
    region_rating_city: np.ndarray
    registration_day: np.ndarray  # days since epoch, at most the decision day
    id_publish_day: np.ndarray
    phone_change_day: np.ndarray
    own_car_age: np.ndarray  # years; NaN without a car
    emp_phone: np.ndarray
    work_phone: np.ndarray
    family_members: np.ndarray  # float, as in the published file
    process_hour: np.ndarray
    reg_city_not_live_city: np.ndarray
    reg_city_not_work_city: np.ndarray
    total_area: np.ndarray
    obs_30: np.ndarray  # social circle counts (floats in the published file)
    def_30: np.ndarray
    def_60: np.ndarray
    document_3: np.ndarray
    bureau_requests_year: np.ndarray


def generate_details(app: Applicants, rng: np.random.Generator) -> ApplicantDetails:
    """The extra application columns of every applicant (draw order fixed: deterministic by seed)."""
    n = len(app)
    z = app.z
    age_days = (app.decision_day - app.birth_day).astype(float)
    employed = app.days_employed != PENSIONER_SENTINEL

    suite = np.where(rng.random(n) < 0.004, -1, choice(rng, n, _SUITE_P))
    population = np.exp(np.log(_POPULATION_BY_RATING[app.region_rating]) + 0.45 * rng.standard_normal(n))
    population = np.round(np.clip(population, 0.00029, 0.0725), 6)
    rating_city = np.clip(app.region_rating - (rng.random(n) < 0.08), 1, 3)

    def days_back(days: np.ndarray, longest: np.ndarray | float) -> np.ndarray:
        return app.decision_day - np.clip(np.round(days), 0, longest).astype(np.int64)

    # DAYS_REGISTRATION: mean ~13.7 years back; DAYS_ID_PUBLISH: up to ~19.7 years; phone change: ~2.6 years, 12 % today
    registration = days_back(rng.beta(1.3, 1.6, n) * (age_days - 18 * 365.25) * np.exp(-0.08 * z),
                             age_days - 16 * 365.25)
    u = np.clip(rng.random(n), 1e-9, 1 - 1e-9)
    id_publish = days_back(sigmoid(0.8 * np.log(u / (1 - u)) - 0.2 * z) * np.minimum(7_197, age_days - 14 * 365.25),
                           7_197)
    phone = days_back(np.where(rng.random(n) < 0.12, 0, np.fmod(rng.exponential(1_000 * np.exp(-0.1 * z)), 4_292)),
                      age_days)
    phone = np.where(rng.random(n) < 1e-5, NULL_DAY, phone)

    car_age = np.round(np.clip(rng.gamma(1.7, 7.0 * np.exp(0.1 * z)), 0, 91))
    work_phone = employed & (rng.random(n) < 0.25)
    married = np.isin(app.family, [0, 2])  # Married, Civil marriage
    family = (1 + app.children + married).astype(float)
    family = np.where(rng.random(n) < 1e-5, np.nan, family)
    started = app.decision_ts - rng.integers(300, 5_400, n)  # the process starts 5-90 minutes before the decision
    hour = (started % SECONDS_PER_DAY // 3600 + LOCAL_UTC_OFFSET_HOURS) % 24
    not_live = rng.random(n) < sigmoid(-2.6 + 0.3 * z)  # ~8 %
    not_work = employed & (rng.random(n) < np.where(not_live, 0.6, sigmoid(-1.1 + 0.2 * z)))  # ~23 %
    area = np.where(rng.random(n) < 0.48, np.nan, np.round(np.clip(rng.gamma(1.4, 0.075, n), 0, 1), 4))

    obs = np.minimum(rng.negative_binomial(0.6, 0.3, n), 348)  # mean ~1.4
    def30 = rng.binomial(obs, sigmoid(-2.4 + 0.35 * z))
    def60 = rng.binomial(def30, 0.7)
    circle_null = rng.random(n) < 0.0033
    document_3 = rng.random(n) < 0.71
    requests = np.where(rng.random(n) < 0.135, np.nan, np.minimum(rng.poisson(1.9 * np.exp(0.15 * z)), 25))

    def circle(values: np.ndarray) -> np.ndarray:
        return np.where(circle_null, np.nan, values.astype(float))

    return ApplicantDetails(
        suite=suite, region_population=population, region_rating_city=rating_city, registration_day=registration,
        id_publish_day=id_publish, phone_change_day=phone, own_car_age=np.where(app.own_car, car_age, np.nan),
        emp_phone=employed.astype(np.int64), work_phone=work_phone.astype(np.int64), family_members=family,
        process_hour=hour, reg_city_not_live_city=not_live.astype(np.int64),
        reg_city_not_work_city=not_work.astype(np.int64), total_area=area, obs_30=circle(obs),
        def_30=circle(def30), def_60=circle(def60), document_3=document_3.astype(np.int64),
        bureau_requests_year=requests,
    )

"""The promotion gate decides on metrics alone: each bound can refuse a promotion."""

import pytest

from creditrisk_assets.modeling.gate import GatePolicy, decide

GOOD = {"auc": 0.78, "ece": 0.01, "approval_rate_ratio": 0.95, "equal_opportunity_diff": 0.03}
POLICY = GatePolicy()


def test_first_model_is_promoted_when_it_passes_the_floor() -> None:
    assert decide(GOOD, None, None, POLICY).promote
    assert not decide({**GOOD, "auc": 0.55}, None, None, POLICY).promote  # no champion is no excuse


def test_better_challenger_replaces_champion_and_worse_one_does_not() -> None:
    champion = {**GOOD, "auc": 0.76}
    canary = {"approval_delta": 0.01, "mean_abs_dpd": 0.01}
    assert decide(GOOD, champion, canary, POLICY).promote
    worse = decide({**GOOD, "auc": 0.74}, champion, canary, POLICY)
    assert not worse.promote and any(r.startswith("FAIL performance") for r in worse.reasons)
    within_tolerance = decide({**GOOD, "auc": 0.757}, champion, canary, POLICY)
    assert within_tolerance.promote


@pytest.mark.parametrize(("change", "failing"), [
    ({"ece": 0.08}, "calibration"),
    ({"approval_rate_ratio": 0.6}, "fairness_approval_ratio"),
    ({"equal_opportunity_diff": 0.3}, "fairness_equal_opportunity"),
])
def test_each_bound_refuses(change: dict, failing: str) -> None:
    d = decide({**GOOD, **change}, None, None, POLICY)
    assert not d.promote and [c.name for c in d.checks if not c.passed] == [failing]


@pytest.mark.parametrize(("canary", "failing"), [
    ({"approval_delta": -0.2, "mean_abs_dpd": 0.01}, "canary_approval_rate"),
    ({"approval_delta": 0.0, "mean_abs_dpd": 0.2}, "canary_mean_abs_dpd"),
])
def test_canary_breach_refuses(canary: dict, failing: str) -> None:
    d = decide(GOOD, {**GOOD, "auc": 0.77}, canary, POLICY)
    assert not d.promote and [c.name for c in d.checks if not c.passed] == [failing]

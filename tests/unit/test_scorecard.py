"""Scores, master-scale grades and cut-off economics (pure functions, hand-checkable numbers)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from creditrisk_assets.modeling import scorecard as sc
from creditrisk_assets.modeling.evaluate import model_card
from creditrisk_assets.settings import Settings, SettingsError

CARD = sc.Scorecard(pdo=20, base=600, base_odds=50)


def test_score_follows_pdo_base_and_base_odds() -> None:
    pd_at_base = 1 / 51  # odds 50:1
    assert CARD.score(pd_at_base)[()] == pytest.approx(600)
    assert CARD.score(1 / 101)[()] == pytest.approx(620)  # odds doubled: +PDO
    assert CARD.score(1 / 26)[()] == pytest.approx(580)  # odds halved: -PDO
    scores = CARD.score([0.01, 0.05, 0.2, 0.5])
    assert np.all(np.diff(scores) < 0), "a higher PD has a lower score"
    np.testing.assert_allclose(CARD.pd_at(scores), [0.01, 0.05, 0.2, 0.5])
    assert np.isfinite(CARD.score([0.0, 1.0])).all()  # clipped, never infinite
    with pytest.raises(ValueError, match="PDO > 0"):
        sc.Scorecard(pdo=0, base=600, base_odds=50)


def test_master_scale_grades_by_upper_bounds() -> None:
    scale = sc.MasterScale.parse("0.01, 0.05,0.2")
    assert scale.n_grades == 4 and scale.grades == [1, 2, 3, 4]
    assert [scale.grade(p) for p in (0.0, 0.0099, 0.01, 0.049, 0.05, 0.19, 0.2, 0.99, 1.0)] == [1, 1, 2, 2, 3, 3, 4, 4, 4]
    assert (scale.lower(1), scale.upper(1), scale.lower(4), scale.upper(4)) == (0.0, 0.01, 0.2, 1.0)
    assert sc.MasterScale.parse("0.1,1").n_grades == 2  # a last bound of 1 closes the scale
    default = Settings().rating_scale
    assert default.n_grades == 10 and default.grade(0.001) == 1 and default.grade(0.5) == 10


@pytest.mark.parametrize("text", ["", "0.05,0.01", "0.01,0.01", "0,0.1", "0.1,1.5", "a,b"])
def test_bad_master_scales_are_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(SettingsError, match="CREDITRISK_MASTER_SCALE"):
        Settings.from_env({"CREDITRISK_MASTER_SCALE": text or ","})


@pytest.mark.parametrize(("env", "var"), [
    ({"CREDITRISK_SCORE_PDO": "-20"}, "CREDITRISK_SCORE_PDO"),
    ({"CREDITRISK_LGD": "1.2"}, "CREDITRISK_LGD"),
    ({"CREDITRISK_MARGIN": "-0.1"}, "CREDITRISK_MARGIN"),
    ({"CREDITRISK_PROMOTION_APPROVAL": "maybe"}, "CREDITRISK_PROMOTION_APPROVAL"),
    ({"CREDITRISK_RETIRE_KEEP_CHAMPIONS": "1"}, "CREDITRISK_RETIRE_KEEP_CHAMPIONS"),
])
def test_bad_credit_terms_name_the_variable(env: dict[str, str], var: str) -> None:
    with pytest.raises(SettingsError, match=var):
        Settings.from_env(env)


def test_defaults_keep_behaviour_and_state_the_terms() -> None:
    s = Settings()
    assert (s.promotion_approval, s.retire_keep_champions, s.decision_threshold) == ("automatic", 0, 0.15)
    terms = s.credit_terms
    assert (terms.scorecard, terms.lgd, terms.margin, terms.ead_column) == (CARD, 0.45, 0.08, "amt_credit")


def test_grade_table_compares_observed_and_predicted_and_flags_inversions() -> None:
    scale = sc.MasterScale((0.1, 0.5))
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p = np.array([0.05, 0.05, 0.2, 0.3, 0.3, 0.6, 0.7, 0.8])
    table = sc.grade_table(y, p, scale, CARD, cutoff=0.25)
    assert table["n"].tolist() == [2, 3, 3]
    np.testing.assert_allclose(table["predicted_default_rate"], [0.05, 0.8 / 3, 0.7])
    np.testing.assert_allclose(table["observed_default_rate"], [0.0, 1 / 3, 1.0])
    assert table["approved"].tolist() == [2, 1, 0]  # PD < 0.25
    assert table["approved_bad_rate"].iloc[0] == 0.0 and math.isnan(table["approved_bad_rate"].iloc[2])
    assert table["score_from"].iloc[0] == round(CARD.score(0.1)[()])  # the grade's worst PD: its lowest score
    assert sc.monotonicity(table) == (True, [])
    inverted = table.assign(observed_default_rate=[0.0, 0.6, 0.4])
    assert sc.monotonicity(inverted) == (False, [3])
    assert sc.monotonicity(inverted.assign(n=[2, 3, 1]), min_n=2) == (True, [])  # a thin grade is skipped
    empty = sc.grade_table(y, np.full(8, 0.05), scale, CARD, cutoff=0.25)
    assert empty["n"].tolist() == [8, 0, 0] and math.isnan(empty["observed_default_rate"].iloc[1])


def brute_force_profit(y: np.ndarray, p: np.ndarray, ead: np.ndarray, lgd: float, margin: float, c: float) -> float:
    ok = p < c
    return float((margin * ead[ok & (y == 0)]).sum() - (lgd * ead[ok & (y == 1)]).sum())


def test_profit_curve_matches_the_definition_and_finds_the_best_cutoff() -> None:
    y = np.array([0, 0, 1, 0, 1, 1])
    p = np.array([0.01, 0.03, 0.03, 0.1, 0.2, 0.5])
    ead = np.array([100.0, 200.0, 50.0, 300.0, 400.0, 100.0])
    curve = sc.profit_curve(y, p, ead, lgd=0.5, margin=0.1)
    assert len(curve) == 1000 and curve["cutoff"].iloc[0] == 0.001 and curve["cutoff"].iloc[-1] == 1.0
    for c in (0.001, 0.02, 0.03, 0.031, 0.15, 0.25, 1.0):
        row = curve[np.isclose(curve["cutoff"], c)].iloc[0]
        assert row["profit"] == pytest.approx(brute_force_profit(y, p, ead, 0.5, 0.1, c))
        assert row["approved"] == int((p < c).sum())
    # approving 0.01 and 0.03 (both) nets 10 + 20 - 25 = 5; adding 0.1 nets +30 = 35; 0.2 costs 200
    best = sc.best_cutoff(curve)
    assert best["profit"] == pytest.approx(35.0) and best["cutoff"] == pytest.approx(0.101)
    assert best["approval_rate"] == pytest.approx(4 / 6)
    assert sc.profit_at(y, p, ead, 0.5, 0.1, 0.15) == pytest.approx(35.0)
    with pytest.raises(ValueError, match="ead must be finite"):
        sc.profit_curve(y, p, np.array([1, 2, np.nan, 4, 5, 6.0]), 0.5, 0.1)
    with pytest.raises(ValueError, match="LGD"):
        sc.profit_curve(y, p, ead, 1.5, 0.1)


def test_decision_metrics_at_a_cutoff() -> None:
    y = np.array([1, 1, 0, 0, 0, 1])
    p = np.array([0.9, 0.3, 0.4, 0.05, 0.1, 0.1])
    d = sc.decision_metrics(y, p, cutoff=0.2)  # declined: 0.9 (bad), 0.3 (bad), 0.4 (good)
    assert (d["tp"], d["fp"], d["fn"], d["tn"]) == (2, 1, 1, 2)
    assert d["precision"] == pytest.approx(2 / 3) and d["recall"] == pytest.approx(2 / 3)
    assert d["f1"] == pytest.approx(2 / 3) and d["accuracy"] == pytest.approx(4 / 6)
    assert d["approval_rate"] == pytest.approx(0.5) and d["approved_bad_rate"] == pytest.approx(1 / 3)
    everyone = sc.decision_metrics(y, p, cutoff=1.01)  # nobody declined: precision undefined
    assert math.isnan(everyone["precision"]) and everyone["recall"] == 0.0 and math.isnan(everyone["f1"])


def test_exposure_from_a_column_with_gaps_and_without_it() -> None:
    ead, note = sc.exposure(pd.DataFrame({"amt_credit": [100.0, None, 300.0]}), "amt_credit")
    np.testing.assert_allclose(ead, [100, 200, 300])
    assert "1 missing" in note
    ones, note = sc.exposure(pd.DataFrame({"x": [1, 2]}), "amt_credit")
    assert ones.tolist() == [1.0, 1.0] and "weighs 1" in note


def test_economics_reach_the_model_card_and_the_metrics() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.001, 0.4, size=3000)
    y = (rng.random(3000) < p).astype(int)
    ead = rng.uniform(1e4, 1e5, size=3000)
    terms = Settings().credit_terms
    econ = sc.economics(y, p, ead, terms, threshold=0.15, ead_note="`amt_credit`")
    assert econ.monotonic, econ.grades  # calibrated by construction: rates rise with the grade
    m = econ.metrics()
    assert m["master_scale_monotonic"] == 1.0 and m["profit_at_threshold"] <= m["profit_max"]
    # margin 0.08, LGD 0.45: break-even PD is 0.08 / 0.53 ≈ 0.151 for a calibrated model
    assert 0.12 <= m["profit_max_cutoff"] <= 0.19
    png = sc.profit_png(econ.curve, 0.15, "profit")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    sections = sc.card_sections(econ, terms)
    card = model_card(name="m", version="1", intended_use="x", data={}, metrics={"auc": 0.7}, calibration_ece=0.01,
                      fairness_summary={}, fairness_table=pd.DataFrame(), importance=pd.DataFrame(),
                      oracle={"bayes_optimal_auc": None}, limitations=[], sections=sections)
    assert "## Scores and grades" in card and "## Cut-off economics" in card
    assert card.index("## Cut-off economics") < card.index("## Limitations")
    assert "profit-maximising" in card and "observed_default_rate" in card and "| declined |" in card


def test_the_sign_off_section_is_placed_once_and_keeps_every_move() -> None:
    from creditrisk_assets.modeling.registry import sign_off_lines, with_sign_off

    card = model_card(name="m", version="1", intended_use="x", data={}, metrics={"auc": 0.7}, calibration_ece=0.01,
                      fairness_summary={}, fairness_table=pd.DataFrame(), importance=pd.DataFrame(),
                      oracle={"bayes_optimal_auc": None}, limitations=["small"],
                      sections={"Sign-off": sign_off_lines([])})
    assert "_Not champion yet._" in card and card.index("## Sign-off") < card.index("## Limitations")
    first = {"at": "2026-12-01T10:00:00", "kind": "gate", "previous": "", "reason": "PASS performance | x"}
    second = {"at": "2026-12-02T09:00:00", "kind": "approval", "by": "bob", "previous": "3", "reason": "ok"}
    once = with_sign_off(card, [first])
    twice = with_sign_off(once, [first, second])
    assert "_Not champion yet._" not in once and twice.count("## Sign-off") == 1
    rows = [r for r in twice.split("## Sign-off", 1)[1].split("## ", 1)[0].splitlines() if r.startswith("| 2026")]
    assert rows == ["| 2026-12-01T10:00:00 | gate | - | - | PASS performance / x |",
                    "| 2026-12-02T09:00:00 | approval | bob | 3 | ok |"]
    assert twice.endswith("- small\n") and twice.split("## Sign-off")[0] == card.split("## Sign-off")[0]
    # a card without the section (older versions) gets it appended, separated from what precedes it
    assert with_sign_off("# card", [second]).startswith("# card\n\n## Sign-off\n")


def test_development_stability_reaches_the_card_and_flags_a_moved_feature() -> None:
    from creditrisk_assets.modeling.pipeline import stability_lines
    from creditrisk_assets.monitoring import stability as st

    rng = np.random.default_rng(4)
    train = pd.DataFrame({"a": rng.normal(size=4000), "b": rng.normal(size=4000)})
    test = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(loc=1.0, size=2000)})  # b moved
    scale = Settings().rating_scale
    ref = st.fit_reference(train, ["a", "b"])
    p_train, p_test = 1 / (1 + np.exp(3 - 0.5 * train["a"])), 1 / (1 + np.exp(3 - 0.5 * test["a"]))
    result = st.window_stability(ref, p_train.to_numpy(), test, p_test.to_numpy(), scale, ["a", "b"])
    lines = stability_lines(result)
    assert result.ssi.level == st.STABLE and result.unstable_features == ["b"]
    assert "(stable)" in lines[0] and "1 stable (< 0.10), 0 watch, 1 unstable" in lines[1]
    table = [ln for ln in "\n".join(lines).splitlines() if ln.startswith(("| b |", "| a |"))]
    assert [t.split(" | ")[0] for t in table] == ["| b", "| a"]  # largest CSI first

"""Every feature that can be a reason code has an adverse-action statement; codes turn into statements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from creditrisk_assets.gold.catalogue import features
from creditrisk_assets.modeling.evaluate import reason_codes
from creditrisk_assets.modeling.reasons import (
    CATALOGUE,
    UnknownReason,
    catalogue,
    missing_statements,
    statement,
    statements_for,
)


def test_every_catalogue_feature_has_a_statement_in_both_directions() -> None:
    names = [f.name for f in features()]
    assert not missing_statements(names), f"add statements to {CATALOGUE}"
    stale = sorted(set(catalogue()) - set(names))
    assert not stale, f"{CATALOGUE} has statements for features the catalogue no longer has: {stale}"
    for name in names:
        inc, dec = statement(name, "increases"), statement(name, "decreases")
        assert inc and dec and inc != dec, name


def test_codes_become_statements_most_adverse_first_said_once() -> None:
    contribs = np.array([[0.1, 0.9, -0.5, 0.3]])
    names = ["ext_source_1", "inst_late_ratio", "amt_income_total", "ext_source_2"]
    codes = reason_codes(contribs, names)[0]
    assert statements_for(codes) == ["High share of instalments paid late", "External credit score 2 is low or not available",
                                     "External credit score 1 is low or not available"]
    assert statements_for("inst_late_ratio, ext_source_mean") == statements_for(["inst_late_ratio", "ext_source_mean"])
    assert statements_for([]) == [] and statements_for("") == []
    assert statements_for(["ext_source_mean"], "decreases") == ["External credit scores are high"]


def test_an_unknown_code_names_the_catalogue_file() -> None:
    with pytest.raises(UnknownReason, match="reason_statements.yml"):
        statements_for(["not_a_feature"])


def test_a_catalogue_entry_without_both_directions_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "statements.yml"
    bad.write_text("statements:\n  ext_source_1:\n    increases: External score is low\n")
    with pytest.raises(ValueError, match="ext_source_1 needs"):
        catalogue(bad)


def test_an_unknown_code_gets_a_fallback_when_not_strict() -> None:
    from creditrisk_assets.modeling.reasons import fallback_statement

    known = next(iter(features())).name
    got = statements_for([known, "ext_score"], strict=False)
    assert got == [statement(known, "increases"), fallback_statement("ext_score")]
    with pytest.raises(UnknownReason):
        statements_for(["ext_score"])

"""The silver profile copes with columns a source never fills (optional contract columns)."""

from pathlib import Path

import numpy as np
import pandas as pd

from creditrisk_assets.quality.profile import evidently_html, profile_frame


def test_an_all_null_column_is_profiled_as_missing_and_left_out_of_evidently(tmp_path: Path) -> None:
    frame = pd.DataFrame({"AMT": np.linspace(1, 100, 50), "KIND": ["a", "b"] * 25,
                          "CREDIT_CURRENCY": pd.Series([None] * 50, dtype=object),
                          "AMT_ANNUITY": pd.Series([np.nan] * 50, dtype="float64")})
    html = evidently_html(frame, tmp_path / "p.html").read_text()
    assert "AMT" in html and "CREDIT_CURRENCY" not in html
    prof = profile_frame("bureau", frame).columns.set_index("column")
    assert prof.loc["CREDIT_CURRENCY", "missing_%"] == 100.0 and prof.loc["AMT_ANNUITY", "missing_%"] == 100.0

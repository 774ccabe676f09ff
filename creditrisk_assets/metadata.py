"""Small helpers that turn results into Dagster-free metadata values (markdown, dicts)."""

from __future__ import annotations

import pandas as pd

from .contracts import TABLES


def mask_pii(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Replace every column the contract marks as personal data with '***' (for previews)."""
    contract = TABLES.get(table)
    if contract is None:
        return frame
    pii = {c.name for c in contract.columns if c.pii in ("identifier", "free_text", "birth_date")}
    out = frame.copy()
    for col in out.columns:
        if col in pii or col == "_raw_line":
            out[col] = out[col].where(out[col].isna(), "***")
    return out


def md_table(frame: pd.DataFrame, max_rows: int = 20, max_width: int = 40) -> str:
    """A markdown table (no tabulate dependency)."""
    if frame is None or frame.empty:
        return "_(no rows)_"
    frame = frame.head(max_rows)

    def cell(v: object) -> str:
        s = "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
        s = s.replace("|", "\\|").replace("\n", " ")
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)

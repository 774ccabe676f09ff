"""Online feature lookup: the feature row of one application from the gold store.

``latest_features`` is one indexed query against the lake. ``FeatureCache`` loads the table once
(pinned to a lake snapshot) and answers from memory in microseconds: what a serving replica uses.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from ..resources import Lake

GOLD_TABLE = "lake.gold.applicant_features"


def latest_features(con: duckdb.DuckDBPyConnection, sk_id_curr: int) -> dict[str, Any] | None:
    """The newest feature row of application ``sk_id_curr`` (None when the store has none)."""
    cur = con.execute(f"SELECT * FROM {GOLD_TABLE} WHERE sk_id_curr = ? ORDER BY decision_time DESC LIMIT 1",
                      [int(sk_id_curr)])
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


class FeatureCache:
    """The whole feature table in memory, indexed by application id."""

    def __init__(self, frame: pd.DataFrame, snapshot_id: int | None = None) -> None:
        frame = frame.sort_values("decision_time").drop_duplicates("sk_id_curr", keep="last")
        self.snapshot_id = snapshot_id
        self._rows: dict[int, dict[str, Any]] = {
            int(k): {c: (None if pd.isna(v) else v) for c, v in row.items()}
            for k, row in zip(frame["sk_id_curr"], frame.to_dict("records"), strict=True)
        }

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, snapshot_id: int | None = None) -> FeatureCache:
        at = Lake.as_of(snapshot_id)
        return cls(con.execute(f"SELECT * FROM {GOLD_TABLE}{at}").df(), snapshot_id)

    def get(self, sk_id_curr: int) -> dict[str, Any] | None:
        return self._rows.get(int(sk_id_curr))

    def __len__(self) -> int:
        return len(self._rows)

"""Raw decision requests replayed from what landed: bronze keeps every value as text exactly as it landed
(identifiers and birth dates in clear), so an application's bronze rows are the request a lender's decision
engine would have sent for it."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import pandas as pd

from creditrisk_assets.contracts import TABLES
from creditrisk_assets.gold.online import APPLICATION
from creditrisk_assets.ingest.bronze import LINEAGE_COLUMNS, MALFORMED_SUFFIX
from creditrisk_assets.resources import ObjectStore

#: what a request carries besides the application, and how its rows reach the application
CARRIED = {"bureau": "SK_ID_CURR", "bureau_balance": "SK_ID_BUREAU"}


def bronze_frame(store: ObjectStore, table: str) -> pd.DataFrame:
    """Every bronze row of ``table`` (text), lineage columns dropped."""
    uris = [store.uri(o.key) for o in store.list(f"bronze/{table}/")
            if o.key.endswith(".parquet") and not o.key.endswith(MALFORMED_SUFFIX)]
    with duckdb.connect() as con:
        frame = con.execute(f"SELECT * FROM read_parquet({uris!r}, union_by_name=true, hive_partitioning=false)").df()
    return frame.drop(columns=[c for c in frame.columns if c in LINEAGE_COLUMNS])


def _value(table: str, column: str, text: Any, numbers: bool) -> Any:
    """The landed text, or (``numbers``) the JSON number a client would send for a numeric column."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    if not numbers:
        return text
    dtype = TABLES[table].column(column).dtype
    try:
        return int(text) if dtype == "int" else float(text) if dtype == "float" else text
    except ValueError:
        return text


class Replay:
    """The bronze rows of the carried tables, indexed to build one request per application."""

    def __init__(self, store: ObjectStore) -> None:
        self.frames = {t: bronze_frame(store, t) for t in (APPLICATION, *CARRIED)}
        self.apps = self.frames[APPLICATION].set_index("SK_ID_CURR", drop=False)
        self.by_app = self.frames["bureau"].groupby("SK_ID_CURR")
        self.balance = self.frames["bureau_balance"].groupby("SK_ID_BUREAU")

    def ids(self) -> list[int]:
        return sorted(int(i) for i in self.apps.index)

    def request(self, sk_id_curr: int, numbers: bool = False) -> dict[str, Any]:
        """The body of ``POST /v1/decide`` for one application (nulls left out; no bureau key when none)."""
        def record(table: str, row: dict[str, Any]) -> dict[str, Any]:
            values = {k: _value(table, k, v, numbers) for k, v in row.items()}
            return {k: v for k, v in values.items() if v is not None}

        app = self.apps.loc[str(sk_id_curr)]
        body: dict[str, Any] = {APPLICATION: record(APPLICATION, app.to_dict())}
        key = str(sk_id_curr)
        if key in self.by_app.groups:
            bureau = self.by_app.get_group(key)
            body["bureau"] = [record("bureau", r) for r in bureau.to_dict("records")]
            balances = [self.balance.get_group(b) for b in bureau["SK_ID_BUREAU"] if b in self.balance.groups]
            if balances:
                body["bureau_balance"] = [record("bureau_balance", r)
                                          for r in pd.concat(balances).to_dict("records")]
        return body

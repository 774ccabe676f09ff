"""Keyed pseudonymisation (HMAC-SHA256), the same in Python and in DuckDB SQL."""

from __future__ import annotations

import hashlib
import hmac

from ..contracts import Column, Table


def pseudonymise(value: str, key: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key`` as hex: stable, not reversible without the key."""
    return hmac.new(key.encode(), value.strip().encode(), hashlib.sha256).hexdigest()


def _blob(data: bytes) -> str:
    return "'" + "".join(f"\\x{b:02x}" for b in data) + "'::BLOB"


def hmac_sql(expr: str, key: str) -> str:
    """A DuckDB expression computing ``pseudonymise(expr, key)`` for a VARCHAR expression."""
    k = key.encode()
    if len(k) > 64:
        k = hashlib.sha256(k).digest()
    k = k.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in k)
    opad = bytes(b ^ 0x5C for b in k)
    return f"sha256({_blob(opad)} || unhex(sha256({_blob(ipad)} || encode(trim({expr})))))"


def silver_name(col: Column) -> str | None:
    """The column's name in silver (None: stays in bronze: role ``drop`` or free text)."""
    if not col.in_silver:
        return None
    if col.pii == "identifier":
        return f"{col.name}_HASH"
    if col.pii == "birth_date":
        return "AGE_YEARS"
    return col.name


def raw_pii_columns(table: Table) -> list[str]:
    """Columns whose clear values must never appear past bronze."""
    return [c.name for c in table.columns if c.pii in ("identifier", "free_text", "birth_date")]

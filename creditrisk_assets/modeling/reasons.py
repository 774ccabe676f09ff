"""Reason codes → readable adverse-action statements, from one catalogue (``reason_statements.yml``).

A reason code is a feature whose contribution to the log-odds of default is positive (``evaluate.
reason_codes``): it *increases* the risk. ``statements_for(codes)`` turns a row's codes into the sentences an
adverse-action notice carries, most adverse first; duplicates (two codes with one statement, e.g. two
external scores) are said once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Literal

import yaml  # type: ignore[import-untyped]  # types-PyYAML is not in the dev dependencies

CATALOGUE = Path(__file__).with_name("reason_statements.yml")
DIRECTIONS = ("increases", "decreases")
Direction = Literal["increases", "decreases"]


class UnknownReason(KeyError):
    """A reason code without a statement in the catalogue; the message names the file to edit."""


@cache
def catalogue(path: Path = CATALOGUE) -> dict[str, dict[str, str]]:
    """Feature → {increases, decreases} statement, validated (every entry has both, non-empty)."""
    raw = yaml.safe_load(path.read_text()) or {}
    entries = raw.get("statements")
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected a mapping `statements: {{feature: {{increases: ..., decreases: ...}}}}`")
    out: dict[str, dict[str, str]] = {}
    for feature, entry in entries.items():
        if not isinstance(entry, dict) or any(not str(entry.get(d) or "").strip() for d in DIRECTIONS):
            raise ValueError(f"{path}: {feature} needs a non-empty `increases` and `decreases` statement")
        out[str(feature)] = {d: str(entry[d]).strip() for d in DIRECTIONS}
    return out


def statement(feature: str, direction: Direction = "increases") -> str:
    entry = catalogue().get(feature)
    if entry is None:
        raise UnknownReason(f"reason code {feature!r} has no statement: add it to {CATALOGUE}")
    return entry[direction]


def fallback_statement(feature: str) -> str:
    """What a notice says for a code the catalogue lacks (a model trained on features added since)."""
    return f"{feature} (no statement yet: add one to reason_statements.yml)"


def statements_for(codes: Sequence[str] | str, direction: Direction = "increases", strict: bool = True) -> list[str]:
    """The statements of one row's reason codes (a list, or a comma-joined string as in batch scores).

    ``strict``: a code without a statement raises ``UnknownReason``; otherwise it gets
    ``fallback_statement`` (an evaluation of a model with features the catalogue does not know yet must
    not fail: the catalogue test is what keeps the shipped features covered)."""
    names = [c.strip() for c in codes.split(",")] if isinstance(codes, str) else list(codes)
    out: list[str] = []
    for name in names:
        if not name:
            continue
        if not strict and name not in catalogue():
            text = fallback_statement(name)
        else:
            text = statement(name, direction)
        if text not in out:
            out.append(text)
    return out


def missing_statements(feature_names: Iterable[str]) -> list[str]:
    """Features without a statement (what a model could give as a reason code but the catalogue lacks)."""
    known = catalogue()
    return [f for f in feature_names if f not in known]

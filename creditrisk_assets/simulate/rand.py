"""Seeded random streams and small vectorised sampling helpers.

Every part of the simulation draws from its own named stream derived from the seed, so one
table's rows do not depend on which other tables are written, and anomaly draws of a file
depend only on the seed, the file's key and the anomaly kind.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

_STREAMS = {"applicants": 1, "pii": 2, "bureau": 3, "previous": 4, "bureau_balance": 5, "installments": 6,
            "credit_card": 7, "outcome": 8, "post_selection": 9, "post_installments": 10, "post_cards": 11,
            "pos_cash": 12, "applicant_details": 13}


def stream(seed: int, name: str) -> np.random.Generator:
    """The named random stream of a run."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _STREAMS[name]])))


def file_stream(seed: int, key: str, kind: str) -> np.random.Generator:
    """The random stream of one anomaly kind for one landed file."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        [seed, 1000, zlib.crc32(key.encode()), zlib.crc32(kind.encode())])))


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row from a (rows × categories) matrix of (unnormalised) probabilities."""
    probs = np.asarray(probs, dtype=float)
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), probs.shape[1] - 1)


def choice(rng: np.random.Generator, n: int, probs: Sequence[float] | np.ndarray) -> np.ndarray:
    """``n`` category indices with the same probabilities for every row."""
    p = np.asarray(probs, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def segment_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of ``counts`` rows: (group index of each row, 0-based position within its group)."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
    return owner, pos


def ranks_within(owner: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random permutation rank (0..size-1) of every row within its group (rows sorted by owner)."""
    key = rng.random(len(owner))
    order = np.lexsort((key, owner))
    counts = np.bincount(owner, minlength=int(owner.max()) + 1 if len(owner) else 0)
    _, pos = segment_positions(counts)
    rank = np.empty(len(owner), dtype=np.int64)
    rank[order] = pos
    return rank


def group_max(values: np.ndarray, owner: np.ndarray, n_groups: int, empty: float = 0) -> np.ndarray:
    """Max of ``values`` per group (``owner`` sorted ascending); ``empty`` for groups without rows."""
    out = np.full(n_groups, empty, dtype=np.result_type(values, type(empty)))
    if len(values):
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        out[owner[starts]] = np.maximum.reduceat(values, starts)
    return out


def group_sum(values: np.ndarray, owner: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(owner, weights=values, minlength=n_groups)[:n_groups]

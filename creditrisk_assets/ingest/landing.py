"""What the landing sensor decides: which hours are new or changed since it last looked."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable

from ..layout import parse_landing_key, parse_partition_key, partition_key
from ..resources import ObjectInfo


def hour_fingerprints(objects: Iterable[ObjectInfo]) -> dict[str, str]:
    """Partition key → fingerprint of every landed file of that hour (any table)."""
    per_hour: dict[str, list[str]] = defaultdict(list)
    for o in objects:
        parsed = parse_landing_key(o.key)
        if parsed is None:
            continue
        per_hour[partition_key(parsed[1])].append(f"{o.key}:{o.size}:{o.last_modified.timestamp():.0f}")
    return {h: hashlib.sha1("\n".join(sorted(v)).encode()).hexdigest()[:16] for h, v in per_hour.items()}


def ingested_cursor(audit_rows: Iterable[tuple[str, int, dt.datetime]]) -> str:
    """A landing-sensor cursor that counts as seen what the bronze audit log says was ingested
    (``(source_key, bytes, landed_at)`` per file, the listing's own key, size and time): a sensor
    that starts with no cursor (a fresh daemon after ``make demo``, a backfill run by hand) then
    requests only hours that are new or changed since, never everything again."""
    objects = [ObjectInfo(key, int(size), at if at.tzinfo else at.replace(tzinfo=dt.UTC))
               for key, size, at in audit_rows]
    return json.dumps(hour_fingerprints(objects), sort_keys=True)

def contiguous_ranges(keys: list[str], step: dt.timedelta = dt.timedelta(hours=1)) -> list[tuple[str, str]]:
    """Sorted hourly partition keys grouped into (first, last) runs of consecutive hours."""

    hours = sorted(parse_partition_key(k) for k in set(keys))
    ranges: list[tuple[str, str]] = []
    for h in hours:
        if ranges and parse_partition_key(ranges[-1][1]) + step == h:
            ranges[-1] = (ranges[-1][0], partition_key(h))
        else:
            ranges.append((partition_key(h), partition_key(h)))
    return ranges

def plan_ingestion(objects: Iterable[ObjectInfo], cursor: str | None, valid_keys: set[str] | None = None,
                   max_hours_per_run: int = 720) -> tuple[list[tuple[str, str]], str, list[str]]:
    """(ranges to ingest, new cursor, hours skipped because they are outside the partitions).

    An hour is (re)ingested when it is new or its files changed (late or replaced drops).
    """
    seen: dict[str, str] = json.loads(cursor) if cursor else {}
    current = hour_fingerprints(objects)
    changed = [h for h, fp in current.items() if seen.get(h) != fp]
    skipped = [h for h in changed if valid_keys is not None and h not in valid_keys]
    todo = [h for h in changed if h not in skipped]
    ranges: list[tuple[str, str]] = []
    for first, last in contiguous_ranges(todo):
        ranges.extend(_split(first, last, max_hours_per_run))
    new_seen = {**seen, **{h: current[h] for h in todo}}
    return ranges, json.dumps(new_seen, sort_keys=True), sorted(skipped)

def _split(first: str, last: str, size: int) -> list[tuple[str, str]]:

    a, b = parse_partition_key(first), parse_partition_key(last)
    out = []
    while a <= b:
        end = min(b, a + dt.timedelta(hours=size - 1))
        out.append((partition_key(a), partition_key(end)))
        a = end + dt.timedelta(hours=1)
    return out

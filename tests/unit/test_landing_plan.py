import datetime as dt
import json

from creditrisk_assets.ingest.landing import contiguous_ranges, hour_fingerprints, plan_ingestion
from creditrisk_assets.layout import parse_landing_key
from creditrisk_assets.resources import ObjectInfo

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def obj(key: str, size: int = 10) -> ObjectInfo:
    return ObjectInfo(key, size, T0)


def test_parse_landing_key() -> None:
    assert parse_landing_key("landing/bureau/2026-10-01/07/part-00000.jsonl.gz") == ("bureau", dt.datetime(2026, 10, 1, 7))
    assert parse_landing_key("landing/bureau/2026-10-01/07/.part.tmp") is None
    assert parse_landing_key("oracle/x/manifest.json") is None


def test_contiguous_ranges() -> None:
    keys = ["2026-10-01-03:00", "2026-10-01-01:00", "2026-10-01-02:00", "2026-10-01-05:00"]
    assert contiguous_ranges(keys) == [("2026-10-01-01:00", "2026-10-01-03:00"), ("2026-10-01-05:00", "2026-10-01-05:00")]


def test_plan_new_then_nothing_then_changed_hour() -> None:
    objects = [obj(f"landing/application/2026-10-01/{h:02d}/part-0.csv") for h in range(3)]
    ranges, cursor, skipped = plan_ingestion(objects, None)
    assert ranges == [("2026-10-01-00:00", "2026-10-01-02:00")] and skipped == []
    again, cursor2, _ = plan_ingestion(objects, cursor)
    assert again == [] and json.loads(cursor2) == json.loads(cursor)
    late = objects + [obj("landing/bureau/2026-10-01/01/part-0.jsonl.gz")]
    ranges3, _, _ = plan_ingestion(late, cursor2)
    assert ranges3 == [("2026-10-01-01:00", "2026-10-01-01:00")]


def test_hours_outside_partitions_are_skipped_not_requested() -> None:
    objects = [obj("landing/application/2026-10-01/00/p.csv"), obj("landing/application/2031-01-01/00/p.csv")]
    ranges, cursor, skipped = plan_ingestion(objects, None, valid_keys={"2026-10-01-00:00"})
    assert ranges == [("2026-10-01-00:00", "2026-10-01-00:00")]
    assert skipped == ["2031-01-01-00:00"]
    assert "2031-01-01-00:00" not in json.loads(cursor)  # asked again once the partition exists


def test_long_ranges_are_split() -> None:
    objects = [obj(f"landing/application/2026-10-0{1 + h // 24}/{h % 24:02d}/p.csv") for h in range(48)]
    ranges, _, _ = plan_ingestion(objects, None, max_hours_per_run=30)
    assert ranges == [("2026-10-01-00:00", "2026-10-02-05:00"), ("2026-10-02-06:00", "2026-10-02-23:00")]


def test_fingerprint_changes_with_size() -> None:
    a = hour_fingerprints([obj("landing/application/2026-10-01/00/p.csv", 10)])
    b = hour_fingerprints([obj("landing/application/2026-10-01/00/p.csv", 11)])
    assert a.keys() == b.keys() and a != b

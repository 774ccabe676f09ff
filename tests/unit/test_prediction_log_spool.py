"""The prediction log's spool: what a replica writes before answering reads back as it was logged."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np

from creditrisk_assets.resources import ObjectStore
from serving.prediction_log import PredictionLogWriter, _read_segment, read_hour


def entry(i: int, **over: object) -> dict[str, object]:
    return {"request_id": f"r{i}", "logged_at": dt.datetime(2026, 12, 4, 2, 30, 1, 123456, tzinfo=dt.UTC),
            "applicant_hash": "ab" * 32, "feature_source": "request", "served_by": "champion", "model_version": "3",
            "pd": 0.1234, "score": 612, "grade": 4, "decision": "approve", "reason_codes": "EXT_SOURCE_2,DAYS_EMPLOYED",
            "shadow_version": None, "shadow_pd": None, "latency_ms": 2.5, "request_json": None,
            "AMT_CREDIT": 250000.5, "NAME_CONTRACT_TYPE": "Cash loans", **over}


def idle_writer(store: ObjectStore, spool: Path) -> PredictionLogWriter:
    """A writer that never flushes by itself (its rows stay in the spool until ``close``)."""
    return PredictionLogWriter(store, ["AMT_CREDIT", "NAME_CONTRACT_TYPE"], ["NAME_CONTRACT_TYPE"],
                               flush_rows=10**9, flush_s=3600, spool_dir=spool)


def test_a_spooled_line_reads_back_as_logged(folder_store: ObjectStore, tmp_path: Path) -> None:
    writer = idle_writer(folder_store, tmp_path / "spool")
    try:
        rows = [entry(0), entry(1, pd=np.float32(0.5), score=np.int64(700), AMT_CREDIT=None),
                entry(2, AMT_CREDIT=float("nan"), reason_codes="é,ü")]
        writer.log(rows)
        back = _read_segment(writer._segment_path(0))
    finally:
        writer.close()
    assert [r["logged_at"] for r in back] == [r["logged_at"] for r in rows]  # aware, microseconds kept
    assert back[0] == rows[0]
    assert (back[1]["pd"], back[1]["score"], back[1]["AMT_CREDIT"]) == (0.5, 700, None)
    assert back[2]["AMT_CREDIT"] is None and back[2]["reason_codes"] == "é,ü"  # a NaN feature comes back missing


def test_a_dead_writers_spool_is_uploaded_by_the_next(folder_store: ObjectStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    dead = idle_writer(folder_store, spool)
    dead.log([entry(i) for i in range(3)])
    os.close(dead._lock_fd)  # what the kernel does when the replica is SIGKILLed: its lock is free, nothing flushed
    heir = idle_writer(folder_store, spool)
    assert heir.close() == 0  # a graceful close also recovers dead writers' spools (as a starting writer does)
    assert heir.recovered == 3
    logged = read_hour(folder_store, dt.datetime(2026, 12, 4, 2))
    assert sorted(logged["request_id"]) == ["r0", "r1", "r2"]
    assert logged["logged_at"].iloc[0] == entry(0)["logged_at"]
    assert not list(spool.glob(f"{dead.writer_id}*"))  # the dead writer's spool is gone once uploaded

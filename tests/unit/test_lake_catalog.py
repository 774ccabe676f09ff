"""The lake's SQLite catalog: write-ahead log set by DuckDB's own SQLite, never by Python's ``sqlite3``."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from creditrisk_assets.resources import SQLITE_META_OPTIONS, Lake, LakeConfig


def new_lake(root: Path) -> Lake:
    return Lake(LakeConfig.on(root / "lake", f"sqlite:{root / 'lake' / 'catalog.sqlite'}", root / "store",
                              root / "ext"))


def wal_header(catalog: Path) -> tuple[int, int]:
    """Bytes 18-19 of a SQLite file: the write and read format versions, (2, 2) in write-ahead-log mode."""
    head = catalog.read_bytes()[:20]
    return head[18], head[19]


def test_a_new_catalog_is_in_wal_mode_without_python_sqlite_in_the_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two copies of SQLite in one process (Python's and DuckDB's) do not see each other's POSIX locks:
    closing Python's connection deletes the WAL under DuckDB's, which then fails with "disk I/O error" or
    SIGBUS (duckdb/duckdb-sqlite#82; two overlapping backfills in one process met it). The lake must set
    the journal mode through DuckDB's ATTACH instead."""
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the lake opened its catalog with Python's sqlite3")

    monkeypatch.setattr(sqlite3, "connect", refuse)
    lake = new_lake(tmp_path)
    con = lake.connect_lake()
    try:
        lake.transact(con, lambda c: c.execute("CREATE TABLE lake.t AS SELECT 1 AS a"))
    finally:
        con.close()
    assert wal_header(tmp_path / "lake" / "catalog.sqlite") == (2, 2)


def test_dbt_attaches_the_catalog_with_the_same_options(tmp_path: Path) -> None:
    from creditrisk_assets.gold.dbt_profiles import profile_dict
    from creditrisk_assets.settings import Settings

    settings = Settings.from_env({"CREDITRISK_HOME": str(tmp_path)})
    options = profile_dict(settings)["creditrisk"]["outputs"]["creditrisk"]["attach"][0]["options"]
    assert {k: options[k] for k in SQLITE_META_OPTIONS} == SQLITE_META_OPTIONS


def test_two_threads_opening_a_new_lake_at_once_both_write(tmp_path: Path) -> None:
    lake = new_lake(tmp_path)
    barrier = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            barrier.wait()
            con = lake.connect_lake()
            try:
                lake.transact(con, lambda c: c.execute("CREATE TABLE IF NOT EXISTS lake.t (w INT)"))
                for _ in range(5):
                    lake.transact(con, lambda c: c.execute("INSERT INTO lake.t VALUES (?)", [i]))
            finally:
                con.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    con = lake.connect_lake()
    try:
        assert con.execute("SELECT w, count(*) FROM lake.t GROUP BY w ORDER BY w").fetchall() == [(0, 5), (1, 5)]
    finally:
        con.close()

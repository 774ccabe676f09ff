"""Batch scoring: a file of applications (or the whole feature store) scored with the champion.

The feature store is never held as one frame. The driver pins the lake snapshot, cuts the gold table into
ranges of ``CREDITRISK_BATCH_SCORING_ROWS`` applications by key (``key_ranges``: one key in every N, read from
the key column alone) and scores range after range:

- ``local`` engine: in this process, one range read, scored and appended to the output at a time;
- ``ray`` engine (Ray Data): the ranges are the rows of a small dataset; ``map_batches`` hands them to a pool of
  actors (``RangeScorer``, one CPU each), each of which loads the scorer once (from the object store: the
  driver's own copy, so both engines score with the same model object), opens its own lake connection
  once and reads, scores and returns one range per call; the driver receives the scored ranges in order
  (``preserve_order``) and appends them to the output. Ray Data's streaming backpressure bounds the ranges
  in flight; the driver holds one at a time. Every actor reads the lake itself, so nothing goes through
  the driver but the scored ranges.

Either way a range is scored by ``score_table``: the gold columns as read (their Arrow types kept) and the
answer, written to a local Parquet file one row group per range (``pyarrow.ParquetWriter``) and put to the
object store once at the end; the per-grade summary is tallied range by range (``GradeTally``). Both engines
write the same rows in the same order (by ``sk_id_curr``) with the same scores.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from creditrisk_assets.gold.lookup import GOLD_TABLE
from creditrisk_assets.layout import batch_scores_key
from creditrisk_assets.modeling import registry
from creditrisk_assets.modeling.distributed import Engine, free_cpus, ray_runtime, scoring_engine
from creditrisk_assets.resources import Lake, LakeConfig, ObjectStore
from creditrisk_assets.settings import Settings

from .models import load_scorer
from .scoring import ANSWER_FIELDS, score_frame

if TYPE_CHECKING:
    import duckdb

    from .scoring import Scorer

KEY = "sk_id_curr"
#: the columns batch scoring adds to every application, with their Parquet types
ANSWER_SCHEMA = pa.schema([("pd", pa.float64()), ("score", pa.int64()), ("grade", pa.int64()),
                           ("decision", pa.string()), ("reason_codes", pa.string()),
                           ("reason_statements", pa.string()), ("model_version", pa.string())])
assert ANSWER_SCHEMA.names[:-1] == list(ANSWER_FIELDS)


@dataclass
class BatchResult:
    output_key: str
    rows: int
    model_version: str
    decline_rate: float
    grades: pd.DataFrame  # per master-scale grade: applications, mean PD, mean score, decline rate
    engine: str = "local"  # local | ray
    batches: int = 0  # ranges (row groups) scored


def read_applications(store: ObjectStore, key: str) -> pd.DataFrame:
    data = store.get_bytes(key)
    if key.endswith(".parquet"):
        return pd.read_parquet(io.BytesIO(data))
    if key.endswith(".csv"):
        return pd.read_csv(io.BytesIO(data))
    raise ValueError(f"{key}: batch scoring reads .parquet or .csv files")


def score_table(scorer: Scorer, table: pa.Table, reasons: str) -> pa.Table:
    """``table``'s columns as they are, followed by the answer (``ANSWER_SCHEMA``) of every row."""
    scored = score_frame(scorer, table.to_pandas(), reasons=reasons)
    answer = pa.Table.from_pandas(scored[ANSWER_SCHEMA.names], schema=ANSWER_SCHEMA, preserve_index=False)
    for name in ANSWER_SCHEMA.names:
        if name in table.column_names:
            table = table.drop_columns([name])
    for f, column in zip(ANSWER_SCHEMA, answer.columns, strict=True):
        table = table.append_column(f, column)
    return table


@dataclass
class GradeTally:
    """The per-grade summary of the scored rows, added batch by batch."""

    sums: dict[int, np.ndarray] = field(default_factory=dict)  # grade -> [applications, Σ pd, Σ score, declined]

    def add(self, scored: pa.Table) -> None:
        part = pd.DataFrame({"grade": scored["grade"].to_pandas(), "pd": scored["pd"].to_pandas(),
                             "score": scored["score"].to_pandas().astype(float),
                             "declined": (scored["decision"].to_pandas() == "decline").astype(float)})
        for grade, g in part.groupby("grade"):
            row = np.array([len(g), g["pd"].sum(), g["score"].sum(), g["declined"].sum()])
            self.sums[int(grade)] = self.sums.get(int(grade), np.zeros(4)) + row

    @property
    def rows(self) -> int:
        return int(sum(s[0] for s in self.sums.values()))

    @property
    def decline_rate(self) -> float:
        return float(sum(s[3] for s in self.sums.values()) / self.rows) if self.rows else float("nan")

    def frame(self) -> pd.DataFrame:
        grades = sorted(self.sums)
        s = np.array([self.sums[g] for g in grades]).reshape(-1, 4)
        return pd.DataFrame({"grade": np.array(grades, dtype=np.int64), "applications": s[:, 0].astype(np.int64), "mean_pd": s[:, 1] / s[:, 0],
                             "mean_score": s[:, 2] / s[:, 0], "decline_rate": s[:, 3] / s[:, 0]})


def key_ranges(con: duckdb.DuckDBPyConnection, rows_per_batch: int, snapshot_id: int) -> list[int]:
    """The first key of every range of ``rows_per_batch`` applications of gold at the snapshot, in order
    (range ``i`` runs from ``starts[i]`` up to, not including, ``starts[i + 1]``)."""
    return [int(r[0]) for r in con.execute(
        f"SELECT {KEY} FROM (SELECT {KEY}, row_number() OVER (ORDER BY {KEY}) - 1 AS i "
        f"FROM {GOLD_TABLE}{Lake.as_of(snapshot_id)}) WHERE i % ? = 0 ORDER BY {KEY}", [int(rows_per_batch)]).fetchall()]


def read_range(con: duckdb.DuckDBPyConnection, starts: list[int], i: int, snapshot_id: int) -> pa.Table:
    """Gold applications of range ``i`` (see ``key_ranges``), ordered by key."""
    upper = f" AND {KEY} < {int(starts[i + 1])}" if i + 1 < len(starts) else ""
    return con.execute(f"SELECT * FROM {GOLD_TABLE}{Lake.as_of(snapshot_id)} WHERE {KEY} >= {int(starts[i])}{upper} "
                       f"ORDER BY {KEY}").to_arrow_table()


class RangeScorer:
    """A Ray Data actor: the scorer and a lake connection, loaded once; each call scores the ranges given."""

    def __init__(self, scorer: list[Any], lake: LakeConfig, starts: list[int], snapshot_id: int,
                 reasons: str) -> None:
        import ray

        self.scorer: Scorer = ray.get(scorer[0])  # in a list: Ray hands the reference over unresolved
        self.con = Lake(lake).connect_lake(threads=1)
        self.starts, self.snapshot_id, self.reasons = starts, snapshot_id, reasons

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        return pa.concat_tables([score_table(self.scorer, read_range(self.con, self.starts, int(i), self.snapshot_id),
                                             self.reasons) for i in batch["range"]])


def _ranges_on_ray(scorer: Scorer, lake: Lake, starts: list[int], snapshot_id: int, reasons: str) -> Iterator[pa.Table]:
    import ray
    import ray.data
    from ray.data import DataContext

    if not starts:  # an empty feature store: nothing to map
        return
    ctx = DataContext.get_current()
    before, ctx.execution_options.preserve_order = ctx.execution_options.preserve_order, True
    try:
        ds = ray.data.from_items([{"range": i} for i in range(len(starts))], override_num_blocks=len(starts))
        scored = ds.map_batches(RangeScorer, batch_size=1, batch_format="numpy", num_cpus=1,
                                concurrency=max(1, min(len(starts), int(free_cpus()))),
                                fn_constructor_kwargs={"scorer": [ray.put(scorer)], "lake": lake.config,
                                                       "starts": starts, "snapshot_id": snapshot_id,
                                                       "reasons": reasons})
        yield from scored.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1)
    finally:
        ctx.execution_options.preserve_order = before


def _ranges_here(scorer: Scorer, lake: Lake, starts: list[int], snapshot_id: int, reasons: str) -> Iterator[pa.Table]:
    with lake.connect_lake() as con:
        for i in range(len(starts)):
            yield score_table(scorer, read_range(con, starts, i, snapshot_id), reasons)


def _write(batches: Iterator[pa.Table], schema: pa.Schema, path: Path) -> tuple[GradeTally, int]:
    """Every batch appended to the Parquet file at ``path`` (one row group each) and tallied."""
    tally, count = GradeTally(), 0
    with pq.ParquetWriter(path, schema) as writer:
        for table in batches:
            table = table.select(schema.names).cast(schema)
            writer.write_table(table)
            tally.add(table)
            count += 1
    return tally, count


def _file_batches(frame: pd.DataFrame, scorer: Scorer, rows: int, reasons: str) -> Iterator[pa.Table]:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for start in range(0, len(frame), rows):
        yield score_table(scorer, table.slice(start, rows), reasons)


def score_batch(settings: Settings, store: ObjectStore, lake: Lake, input_key: str = "") -> BatchResult:
    """Score ``input_key`` (a Parquet/CSV object of applications: read whole, scored in this process batch by
    batch) or, by default, every application of the feature store at the current lake snapshot, by the engine
    ``CREDITRISK_BATCH_SCORING_ENGINE`` chooses (see the module's docstring)."""
    client = registry.connect_for(settings)
    version = registry.alias_version(client, registry.CHAMPION)
    if version is None:
        raise ValueError("no model version has the `champion` alias: nothing to score with")
    scorer = load_scorer(settings, version, registry.CHAMPION)
    reasons, rows = settings.serve_reason_codes, settings.batch_scoring_rows
    engine: Engine = "local"
    if input_key:
        frame, stem = read_applications(store, input_key), PurePosixPath(input_key).stem
        columns: list[str] = list(frame.columns)
        source = pa.Schema.from_pandas(frame, preserve_index=False)
    else:
        stem = "applicant_features"
        with lake.connect_lake() as con:
            snapshot_id = Lake.snapshot_id(con)
            source = con.execute(f"SELECT * FROM {GOLD_TABLE}{Lake.as_of(snapshot_id)} LIMIT 0").to_arrow_table().schema
            count = int(con.execute(f"SELECT count(*) FROM {GOLD_TABLE}{Lake.as_of(snapshot_id)}").fetchone()[0])  # type: ignore[index]
            starts = key_ranges(con, rows, snapshot_id)
        columns = source.names
        engine = scoring_engine(settings, count)
    missing = [c for c in scorer.features if c not in columns]
    if missing:
        raise ValueError(f"{input_key or GOLD_TABLE} lacks feature column(s): {', '.join(missing[:10])}")
    schema = pa.schema([f for f in source if f.name not in ANSWER_SCHEMA.names] + list(ANSWER_SCHEMA))
    out_key = batch_scores_key(stem, version)
    with tempfile.TemporaryDirectory(prefix="creditrisk-batch-") as tmp:
        path = Path(tmp) / "scores.parquet"
        if input_key:
            tally, batches = _write(_file_batches(frame, scorer, rows, reasons), schema, path)
        elif engine == "ray":
            with ray_runtime(settings.ray_address, settings.workers):
                tally, batches = _write(_ranges_on_ray(scorer, lake, starts, snapshot_id, reasons), schema, path)
        else:
            tally, batches = _write(_ranges_here(scorer, lake, starts, snapshot_id, reasons), schema, path)
        store.put_file(out_key, path)
    return BatchResult(out_key, tally.rows, version, tally.decline_rate, tally.frame(), engine, batches)

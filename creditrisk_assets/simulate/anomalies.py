"""Render one landed file, injecting the configured anomalies, and record every injection.

Each kind draws from its own stream keyed by (seed, file key, kind), so the anomalies of a
file depend on nothing else. Order of application (later ones see the earlier effects):
empty_file (short-circuits everything), missing_column, extra_column, wrong_type,
duplicate_rows, malformed_row, wrong_encoding, corrupt_file.

* missing_column (file): one non-key column (not of role ``drop``) dropped; ``details.required``
  says whether silver must quarantine the file (required) or null-fill it (optional).
* extra_column (file): ``LEGACY_SCORE`` / ``BRANCH_CODE`` / ``SOURCE_SYSTEM`` inserted at a random position.
* wrong_type (rows; Parquet: file): in text files one column per file gets "1234,56"
  (comma decimal), a non-number ("n/a", "unknown", "-") or a date as DD/MM/YYYY; in Parquet a
  numeric column is written as strings.
* duplicate_rows (rows): exact copies of rows appended at the end of the file.
* malformed_row (rows, csv/jsonl only): a CSV line with one field too many or too few; a JSONL
  line that is not valid JSON (truncated, single quotes, missing brace).
* wrong_encoding (file, csv/csv.gz only): latin-1 instead of UTF-8; only files that contain
  non-ASCII text qualify (characters outside latin-1 become "?", counted in the details).
* corrupt_file (file): gzip / Parquet bytes cut in the middle; a plain CSV/JSONL cut in the
  middle of a line (that line keeps about half its fields / characters, the rest is gone).
* empty_file (file): zero bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ..contracts import Table
from .formats import (
    cell_tokens,
    csv_fields,
    csv_join,
    gzip_bytes,
    join_lines,
    parquet_bytes,
    single_token,
    text_lines,
    value_strings,
)
from .rand import file_stream

ID_COLUMNS = frozenset({"SK_ID_CURR", "SK_ID_BUREAU", "SK_ID_PREV"})
EXTRA_COLUMNS = ("LEGACY_SCORE", "BRANCH_CODE", "SOURCE_SYSTEM")
NOT_A_NUMBER = ("n/a", "unknown", "-")


@dataclass
class Injection:
    """One injected anomaly (a manifest entry)."""

    table: str
    key: str
    partition: str
    kind: str
    rows: int
    column: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "key": self.key, "partition": self.partition, "kind": self.kind,
                "rows": self.rows, "column": self.column, "details": self.details}


@dataclass
class RenderedFile:
    payload: bytes
    records: int  # data records written (duplicates and malformed lines included), before corruption
    injections: list[Injection]


@dataclass
class _File:
    """The file being rendered."""

    contract: Table
    key: str
    partition: str
    seed: int
    rates: Mapping[str, float]
    data: pa.Table  # the clean rows (typed)
    injections: list[Injection] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.contract.landing_format.removesuffix(".gz")

    @property
    def gz(self) -> bool:
        return self.contract.landing_format.endswith(".gz")

    def rng(self, kind: str) -> np.random.Generator:
        return file_stream(self.seed, self.key, kind)

    def fires(self, kind: str, rng: np.random.Generator) -> bool:
        rate = self.rates.get(kind, 0.0)
        return rate > 0 and bool(rng.random() < rate)

    def record(self, kind: str, rows: int, column: str | None = None, **details: Any) -> None:
        self.injections.append(Injection(self.contract.name, self.key, self.partition, kind, int(rows), column,
                                         details))

    def keys_of(self, rows: np.ndarray) -> list[Any]:
        """Primary-key values of clean rows (for the manifest)."""
        pk = list(self.contract.primary_key)
        picked = self.data.select(pk).take(pa.array(np.asarray(rows, dtype=np.int64))).to_pylist()
        return [r[pk[0]] if len(pk) == 1 else {k: _jsonable(r[k]) for k in pk} for r in picked]


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def render_file(contract: Table, key: str, partition: str, data: pa.Table, rates: Mapping[str, float],
                seed: int) -> RenderedFile:
    """The bytes of one landed file with its anomalies, and the record of what was injected."""
    f = _File(contract, key, partition, seed, rates, data)
    if f.fires("empty_file", f.rng("empty_file")):
        f.record("empty_file", data.num_rows)
        return RenderedFile(b"", 0, f.injections)
    table = _extra_column(f, _missing_column(f, data))
    if f.base == "parquet":
        payload, records = _render_parquet(f, table)
    else:
        payload, records = _render_text(f, table)
    return RenderedFile(payload, records, f.injections)


# ------------------------------------------------------------------------ column level

def _missing_column(f: _File, table: pa.Table) -> pa.Table:
    rng = f.rng("missing_column")
    if not f.fires("missing_column", rng):
        return table
    keys = set(f.contract.primary_key) | ID_COLUMNS
    # a drop column the file lacks is no anomaly silver could see: only written, non-drop columns go missing
    candidates = [c for c in f.contract.columns if c.name not in keys and c.role != "drop"
                  and c.name in table.column_names]
    optional = [c for c in candidates if not c.required]
    pool = optional if optional and rng.random() < 0.5 else candidates
    col = pool[int(rng.integers(len(pool)))]
    f.record("missing_column", table.num_rows, col.name, required=col.required)
    return table.drop_columns([col.name])


def _extra_column(f: _File, table: pa.Table) -> pa.Table:
    rng = f.rng("extra_column")
    if not f.fires("extra_column", rng):
        return table
    name = EXTRA_COLUMNS[int(rng.integers(len(EXTRA_COLUMNS)))]
    n = table.num_rows
    if name == "LEGACY_SCORE":
        values = pa.array(np.round(rng.uniform(300, 850, n), 3))
    elif name == "BRANCH_CODE":
        values = pa.array([f"BR{i:03d}" for i in rng.integers(0, 1000, n)], pa.string())
    else:
        values = pa.array(["core-v1", "core-v2", "partner-api"], pa.string()).take(pa.array(rng.integers(0, 3, n)))
    position = int(rng.integers(1, table.num_columns + 1))
    f.record("extra_column", n, name, position=position, type=str(values.type))
    return table.add_column(position, name, values)


def _numeric_columns(f: _File, table: pa.Table, kinds: tuple[str, ...]) -> list[str]:
    keys = set(f.contract.primary_key) | ID_COLUMNS
    names = {c.name: c.dtype for c in f.contract.columns}
    return [c for c in table.column_names if c not in keys and names.get(c) in kinds]


# ---------------------------------------------------------------------------- parquet

def _render_parquet(f: _File, table: pa.Table) -> tuple[bytes, int]:
    rng = f.rng("wrong_type")
    # a column without values (one the simulator has no model of) would be strings that break nothing
    numeric = [c for c in _numeric_columns(f, table, ("int", "float")) if table.column(c).null_count < table.num_rows]
    if numeric and f.fires("wrong_type", rng):
        col = numeric[int(rng.integers(len(numeric)))]
        i = table.column_names.index(col)
        table = table.set_column(i, col, value_strings(table.column(col)))
        f.record("wrong_type", table.num_rows, col, variant="parquet_string_column")
    table, _ = _duplicates_parquet(f, table)
    payload = parquet_bytes(table)
    if f.gz:
        payload = gzip_bytes(payload)
    rng = f.rng("corrupt_file")
    if f.fires("corrupt_file", rng):
        cut = len(payload) // 2
        f.record("corrupt_file", table.num_rows, None, variant="truncated_parquet" if not f.gz else "truncated_gzip",
                 bytes_before=len(payload), bytes_after=cut)
        payload = payload[:cut]
    return payload, table.num_rows


def _duplicate_sources(f: _File, n: int) -> np.ndarray:
    rng = f.rng("duplicate_rows")
    rate = f.rates.get("duplicate_rows", 0.0)
    k = int(rng.binomial(n, rate)) if rate > 0 and n else 0
    return np.sort(rng.choice(n, size=k, replace=False)) if k else np.zeros(0, np.int64)


def _duplicates_parquet(f: _File, table: pa.Table) -> tuple[pa.Table, np.ndarray]:
    src = _duplicate_sources(f, table.num_rows)
    if len(src):
        n = table.num_rows
        table = pa.concat_tables([table, table.take(pa.array(src))])
        f.record("duplicate_rows", len(src), None, row_ordinals=(src + 1).tolist(),
                 duplicate_ordinals=list(range(n + 1, n + len(src) + 1)), record_keys=f.keys_of(src))
    return table, src


# ------------------------------------------------------------------------------- text

def _render_text(f: _File, table: pa.Table) -> tuple[bytes, int]:
    tokens = {name: cell_tokens(table.column(name), f.base) for name in table.column_names}
    _wrong_type_text(f, table, tokens)
    lines = text_lines(tokens, f.base)
    n = len(lines)
    src = _duplicate_sources(f, n)
    if len(src):
        lines += [lines[i] for i in src]
        f.record("duplicate_rows", len(src), None, row_ordinals=(src + 1).tolist(),
                 duplicate_ordinals=list(range(n + 1, n + len(src) + 1)), record_keys=f.keys_of(src))
    _malformed(f, lines, n, set(src.tolist()))
    header = ",".join(table.column_names) if f.base == "csv" else None
    encoding = _encoding(f, lines)
    text = join_lines(lines, header)
    rng = f.rng("corrupt_file")
    corrupt = f.fires("corrupt_file", rng)
    if corrupt and not f.gz:
        text = _truncate_text(f, lines, header, len(table.column_names))
    payload = text.encode(encoding, errors="replace")
    if f.gz:
        payload = gzip_bytes(payload)
        if corrupt:
            cut = len(payload) // 2
            f.record("corrupt_file", len(lines), None, variant="truncated_gzip", bytes_before=len(payload),
                     bytes_after=cut)
            payload = payload[:cut]
    return payload, len(lines)


def _wrong_type_text(f: _File, table: pa.Table, tokens: dict[str, pa.Array]) -> None:
    rng = f.rng("wrong_type")
    rate = f.rates.get("wrong_type", 0.0)
    candidates = _numeric_columns(f, table, ("int", "float", "date", "timestamp"))
    n = table.num_rows
    k = int(rng.binomial(n, rate)) if rate > 0 and n and candidates else 0
    if not k:
        return
    col = candidates[int(rng.integers(len(candidates)))]
    dtype = f.contract.column(col).dtype
    rows = np.sort(rng.choice(n, size=k, replace=False))
    original = value_strings(table.column(col)).take(pa.array(rows)).to_pylist()
    cells = tokens[col].to_pylist()
    variants: dict[str, int] = {}
    for row, value in zip(rows.tolist(), original, strict=True):
        variant, bad = _bad_value(dtype, value, rng)
        variants[variant] = variants.get(variant, 0) + 1
        cells[row] = single_token(bad, f.base)
    tokens[col] = pa.array(cells, pa.string())
    f.record("wrong_type", k, col, variants=variants, row_ordinals=(rows + 1).tolist(), record_keys=f.keys_of(rows))


def _bad_value(dtype: str, value: str | None, rng: np.random.Generator) -> tuple[str, str]:
    """(variant, text) of a value of the wrong type for a ``dtype`` column."""
    if dtype in ("date", "timestamp") and value:
        d = dt.datetime.fromisoformat(value)
        return "date_format", d.strftime("%d/%m/%Y" if dtype == "date" else "%d/%m/%Y %H:%M")
    if dtype == "float" and value and rng.random() < 0.6:
        return "comma_decimal", value.replace(".", ",") if "." in value else value + ",00"
    return "not_a_number", NOT_A_NUMBER[int(rng.integers(len(NOT_A_NUMBER)))]


def _malformed(f: _File, lines: list[str], n: int, protected: set[int]) -> None:
    rng = f.rng("malformed_row")
    rate = f.rates.get("malformed_row", 0.0)
    eligible = np.setdiff1d(np.arange(n), np.fromiter(protected, np.int64, len(protected)))
    k = int(rng.binomial(len(eligible), rate)) if rate > 0 and len(eligible) else 0
    if not k:
        return
    rows = np.sort(rng.choice(eligible, size=k, replace=False))
    variants: dict[str, int] = {}
    for row in rows.tolist():
        variant, lines[row] = _break_line(lines[row], f.base, rng)
        variants[variant] = variants.get(variant, 0) + 1
    f.record("malformed_row", k, None, variants=variants, row_ordinals=(rows + 1).tolist(),
             record_keys=f.keys_of(rows))


def _break_line(line: str, fmt: str, rng: np.random.Generator) -> tuple[str, str]:
    if fmt == "csv":
        if rng.random() < 0.5:
            return "too_many_fields", line + ",EXTRA"
        return "too_few_fields", csv_join(csv_fields(line)[:-1])
    choice = int(rng.integers(3))
    if choice == 0:
        return "truncated_json", line[: max(1, len(line) // 2)]
    if choice == 1:
        return "single_quotes", line.replace('"', "'")
    return "missing_brace", line[:-1]


def _encoding(f: _File, lines: list[str]) -> str:
    rng = f.rng("wrong_encoding")
    if f.base != "csv" or not f.fires("wrong_encoding", rng):
        return "utf-8"
    non_ascii = sum(not line.isascii() for line in lines)
    if not non_ascii:
        return "utf-8"  # latin-1 of pure ASCII is UTF-8: nothing to inject
    text = "\n".join(lines)
    replaced = len(text) - len(text.encode("latin-1", errors="ignore").decode("latin-1"))
    f.record("wrong_encoding", non_ascii, None, encoding="latin-1", unencodable_chars_replaced=replaced)
    return "latin-1"


def _truncate_text(f: _File, lines: list[str], header: str | None, n_columns: int) -> str:
    """The file cut in the middle of a data line: the lines before it, then half of it, no line end."""
    mid = len(lines) // 2
    if f.base == "csv":
        fields = csv_fields(lines[mid])
        partial = csv_join(fields[: max(1, min(len(fields), n_columns) // 2)])
    else:
        partial = lines[mid][: max(1, len(lines[mid]) // 2)]
    f.record("corrupt_file", len(lines) - mid, None, variant="truncated_mid_line", records_before=len(lines),
             complete_records_kept=mid, partial_line_ordinal=mid + 1)
    head = [header] if header is not None else []
    return "\n".join(head + lines[:mid] + [partial])

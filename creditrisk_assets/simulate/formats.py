"""Serialise a typed table to landing bytes: CSV, JSONL, Parquet, optionally gzipped. Deterministic.

Text formats are built column-wise as "cell tokens" (the exact text of each value in the
file) with Arrow string kernels, then joined into lines, so anomaly injection can edit cells
and lines before the bytes exist.

* CSV: header row, ``,`` separator, ``\\n`` line ends, RFC-4180 quoting only where needed
  (a value holding ``,``, ``"``, CR or LF is quoted, inner quotes doubled); null = empty field.
* JSONL: one object per line, keys in contract order, ``null`` for nulls, ints as JSON ints,
  floats always with a decimal point or exponent, dates/timestamps as strings; raw UTF-8.
* Values: dates ``YYYY-MM-DD``; timestamps ``YYYY-MM-DDTHH:MM:SS`` (UTC, no zone suffix).
* Parquet: int64, float64, string, dates as DATE (date32), timestamps as TIMESTAMP (naive,
  UTC, ms after Parquet's coercion of seconds); zstd, dictionary encoding, format 2.6.
* gzip: level 6, ``mtime=0``, no file name, so identical input gives identical bytes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

_NEEDS_QUOTES = r'[",\r\n]'


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", compression_level=3, use_dictionary=True,
                   write_statistics=True, version="2.6", data_page_version="1.0", store_schema=True)
    return buf.getvalue()


# ----------------------------------------------------------------------------- values

def value_strings(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The text of every value by its Arrow type (null stays null)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    if pa.types.is_timestamp(arr.type):
        return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%S")
    text = pc.cast(arr, pa.string())
    if pa.types.is_floating(arr.type):
        has_point = pc.match_substring_regex(text, r"[.eEn]")
        text = pc.if_else(has_point, text, pc.binary_join_element_wise(text, ".0", ""))
    return text


def csv_quote(text: pa.Array) -> pa.Array:
    """RFC-4180: quote the values that need it."""
    needs = pc.fill_null(pc.match_substring_regex(text, _NEEDS_QUOTES), False)
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, text)


def json_quote(text: pa.Array) -> pa.Array:
    """JSON string literals of the values (UTF-8 kept as is)."""
    esc = pc.replace_substring(text, "\\", "\\\\")
    for raw, rep in (('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        esc = pc.replace_substring(esc, raw, rep)
    return pc.binary_join_element_wise('"', esc, '"', "")


def cell_tokens(arr: pa.Array | pa.ChunkedArray, fmt: str) -> pa.Array:
    """The exact text of every cell of a ``csv`` or ``jsonl`` file (nulls rendered, none left)."""
    text = value_strings(arr)
    is_text = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
    if fmt == "csv":  # numbers, dates and timestamps never need quotes
        return pc.fill_null(csv_quote(text) if is_text else text, "")
    numeric = pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
    return pc.fill_null(text if numeric else json_quote(text), "null")


def single_token(value: str, fmt: str) -> str:
    """The token of one string value (an injected wrong-type value)."""
    if fmt == "csv":
        return csv_join([value])
    return json.dumps(value, ensure_ascii=False)


def csv_join(fields: list[str]) -> str:
    """One CSV line from field values, quoted where needed."""
    return ",".join('"' + f.replace('"', '""') + '"' if any(ch in f for ch in ',"\r\n') else f for f in fields)


def csv_fields(line: str) -> list[str]:
    return next(csv.reader([line]))


# ------------------------------------------------------------------------------ lines

def text_lines(tokens: dict[str, pa.Array], fmt: str) -> list[str]:
    """Data lines (without line ends) from the cell tokens of each column."""
    if not tokens:
        return []
    if fmt == "csv":
        return pc.binary_join_element_wise(*tokens.values(), ",").to_pylist()
    parts: list[pa.Array | str] = []
    for i, (name, tok) in enumerate(tokens.items()):
        parts.append(("{" if i == 0 else ",") + json.dumps(name) + ":")
        parts.append(tok)
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "").to_pylist()


def join_lines(lines: list[str], header: str | None) -> str:
    """Header (CSV) and lines, each ending with ``\\n``."""
    head = [header] if header is not None else []
    return "\n".join(head + lines) + "\n"

"""Landing → bronze on hand-made files: every kind of bad input is accounted for, nothing lost."""

import datetime as dt
import gzip
import io
import json
import random
import re

import duckdb
import pandas as pd
import pytest

from creditrisk_assets.ingest.bronze import (
    cut_control_records,
    decode_text,
    file_format,
    has_control_bytes,
    ingest_partition,
    read_audit_log,
)
from creditrisk_assets.layout import bronze_partition_prefix
from creditrisk_assets.resources import Lake, ObjectStore

HOUR = dt.datetime(2026, 10, 1, 3)
PREFIX = "landing/application/2026-10-01/03/"
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")  # C0 controls but tab, LF, CR


def bronze_rows(store: ObjectStore, lake: Lake, table: str = "application") -> pd.DataFrame:
    keys = [o.key for o in store.list(bronze_partition_prefix(table, HOUR))]
    if not keys:
        return pd.DataFrame()
    con = lake.connect()
    files = ", ".join(f"'{store.uri(k)}'" for k in keys)
    return con.execute(f"SELECT * FROM read_parquet([{files}], union_by_name=true)").df()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def test_file_format_and_decode() -> None:
    assert file_format("part-0.csv.gz") == ("csv", True)
    assert file_format("part-0.jsonl") == ("jsonl", False)
    assert file_format("x.PARQUET") == ("parquet", False)
    assert decode_text("Müller".encode())[1] == ""
    text, note = decode_text("Müller".encode("latin-1"))
    assert text == "Müller" and "transcoded" in note


def test_good_csv_rows_and_lineage(folder_store: ObjectStore, lake: Lake) -> None:
    folder_store.put_bytes(PREFIX + "part-0.csv", b"SK_ID_CURR,NAME\n1,Ann\n2,\"Bo, Jr\"\n")
    result = ingest_partition(folder_store, lake, "application", HOUR, run_id="run-1")
    (audit,) = result.files
    assert (audit.status, audit.rows, audit.malformed_rows) == ("accepted", 2, 0)
    rows = bronze_rows(folder_store, lake)
    assert rows["NAME"].tolist() == ["Ann", "Bo, Jr"]
    assert set(rows["_ingest_run_id"]) == {"run-1"} and set(rows["_partition"]) == {"2026-10-01-03:00"}
    assert rows["_source_sha256"].iloc[0] == audit.sha256 and len(audit.sha256) == 64
    assert rows["_parse_error"].isna().all()


def test_malformed_csv_rows_are_kept_with_their_error(folder_store: ObjectStore, lake: Lake) -> None:
    folder_store.put_bytes(PREFIX + "part-0.csv", b"A,B,C\n1,x,2\n2,y\n3,z,4,5\n4,w,6\n")
    (audit,) = ingest_partition(folder_store, lake, "application", HOUR).files
    assert (audit.rows, audit.malformed_rows, audit.status) == (2, 2, "accepted_with_warnings")
    rows = bronze_rows(folder_store, lake)
    bad = rows[rows["_parse_error"].notna()].sort_values("_row_ordinal")
    assert bad["_raw_line"].tolist() == ["2,y", "3,z,4,5"]
    assert bad["_parse_error"].str.contains("MISSING COLUMNS").iloc[0]
    assert bad["_parse_error"].str.contains("TOO MANY COLUMNS").iloc[1]
    assert len(rows) == 4  # every line that entered is in bronze


def test_malformed_jsonl_lines_are_kept(folder_store: ObjectStore, lake: Lake) -> None:
    body = '{"A": 1, "B": "x"}\n{broken\n[1, 2]\n{"A": 2.5, "C": null}\n'
    folder_store.put_bytes(PREFIX + "part-0.jsonl", gzip.compress(body.encode(), mtime=0))
    folder_store.delete(PREFIX + "part-0.jsonl")
    folder_store.put_bytes(PREFIX + "part-0.jsonl.gz", gzip.compress(body.encode(), mtime=0))
    (audit,) = ingest_partition(folder_store, lake, "application", HOUR).files
    assert (audit.rows, audit.malformed_rows) == (2, 2)
    rows = bronze_rows(folder_store, lake)
    good = rows[rows["_parse_error"].isna()]
    assert good["A"].tolist() == ["1", "2.5"] and set(good.columns) >= {"A", "B", "C"}
    errors = set(rows["_parse_error"].dropna().str.split(":").str[0])
    assert errors == {"INVALID_JSON", "NOT_AN_OBJECT"}


def test_wrong_encoding_is_transcoded_and_flagged(folder_store: ObjectStore, lake: Lake) -> None:
    folder_store.put_bytes(PREFIX + "part-0.csv", "A,NAME\n1,Müller\n2,José\n".encode("latin-1"))
    (audit,) = ingest_partition(folder_store, lake, "application", HOUR).files
    assert audit.status == "accepted_with_warnings" and "not UTF-8" in audit.reason
    assert bronze_rows(folder_store, lake)["NAME"].tolist() == ["Müller", "José"]


@pytest.mark.parametrize(("name", "payload", "reason"), [
    ("part-0.csv.gz", gzip.compress(("A,B\n" + "".join(f"{i},{i * i}\n" for i in range(5000))).encode(), mtime=0)[:2000], "corrupt gzip"),
    ("part-0.parquet", parquet_bytes(pd.DataFrame({"A": range(100)}))[:150], "unreadable Parquet"),
    ("part-0.xlsx", b"PK\x03\x04", "unknown file type"),
    pytest.param("part-0.csv", "A,B\n1,x\n2,y\n".encode("utf-16"), "header holds control character 0x00 (NUL)",
                 id="utf16-csv"),
    pytest.param("part-0.csv", random.Random(7).randbytes(5000), "looks binary or corrupt", id="binary-garbage"),
    pytest.param("part-0.csv", b"A,B\n" + random.Random(8).randbytes(5000), "looks binary or corrupt",
                 id="header-then-binary"),
    pytest.param("part-0.csv", b"A,B\n" + b"".join(b"%d,x\x00\n" % i for i in range(10)) + b"10,ok\n",
                 "10 of 11 data records", id="csv-mostly-nul"),
    pytest.param("part-0.jsonl", b'{"A": 1}\n\x00\x00\x00\n\x1b[31m{"A": 2}\n', "2 of 3 JSONL lines hold control",
                 id="jsonl-mostly-control"),
])
def test_unreadable_files_are_rejected_and_kept_aside(folder_store: ObjectStore, lake: Lake, name: str,
                                                      payload: bytes, reason: str) -> None:
    folder_store.put_bytes(PREFIX + name, payload)
    folder_store.put_bytes(PREFIX + "part-1.csv", b"A,B\n1,2\n")
    result = ingest_partition(folder_store, lake, "application", HOUR)
    by_name = {f.source_key.rsplit("/", 1)[-1]: f for f in result.files}
    assert by_name[name].status == "rejected" and reason in by_name[name].reason
    assert by_name["part-1.csv"].status == "accepted"  # the other file still went through
    kept = folder_store.list("bronze/_rejected_files/application/")
    assert [o.key.rsplit("/", 1)[-1] for o in kept] == [name]
    assert folder_store.get_bytes(kept[0].key) == payload


def test_empty_files(folder_store: ObjectStore, lake: Lake) -> None:
    folder_store.put_bytes(PREFIX + "part-0.csv", b"")
    folder_store.put_bytes(PREFIX + "part-1.csv", b"A,B\n")
    files = ingest_partition(folder_store, lake, "application", HOUR).files
    assert [(f.status, f.rows) for f in files] == [("empty", 0), ("empty", 0)]


def test_missing_and_extra_columns_are_preserved_for_silver(folder_store: ObjectStore, lake: Lake) -> None:
    folder_store.put_bytes(PREFIX + "part-0.csv", b"A,B\n1,2\n")
    folder_store.put_bytes(PREFIX + "part-1.csv", b"A,B,EXTRA\n3,4,5\n")
    folder_store.put_bytes(PREFIX + "part-2.parquet", parquet_bytes(pd.DataFrame({"A": [5], "B": ["1,5"]})))
    ingest_partition(folder_store, lake, "application", HOUR)
    rows = bronze_rows(folder_store, lake).sort_values("A")
    assert rows["EXTRA"].tolist()[1] == "5" and rows["B"].tolist() == ["2", "4", "1,5"]


def test_reserved_column_names_reject_the_file(folder_store: ObjectStore, lake: Lake) -> None:
    folder_store.put_bytes(PREFIX + "part-0.csv", b"A,_raw_line\n1,2\n")
    (audit,) = ingest_partition(folder_store, lake, "application", HOUR).files
    assert audit.status == "rejected" and "reserved" in audit.reason


def test_reingest_is_idempotent_and_drops_stale_files(folder_store: ObjectStore, lake: Lake) -> None:
    folder_store.put_bytes(PREFIX + "part-0.csv", b"A\n1\n2\n")
    folder_store.put_bytes(PREFIX + "part-1.csv", b"A\n3\n")
    ingest_partition(folder_store, lake, "application", HOUR, run_id="r1")
    first = [o.key for o in folder_store.list(bronze_partition_prefix("application", HOUR))]
    ingest_partition(folder_store, lake, "application", HOUR, run_id="r2")
    assert [o.key for o in folder_store.list(bronze_partition_prefix("application", HOUR))] == first
    assert len(bronze_rows(folder_store, lake)) == 3
    folder_store.delete(PREFIX + "part-1.csv")
    ingest_partition(folder_store, lake, "application", HOUR, run_id="r3")
    assert len(bronze_rows(folder_store, lake)) == 2
    audit = read_audit_log(folder_store, lake)
    assert len(audit) == 1 and audit["ingest_run_id"].tolist() == ["r3"]  # replaced, not appended


def test_audit_log_is_queryable_from_duckdb(folder_store: ObjectStore, lake: Lake) -> None:
    folder_store.put_bytes(PREFIX + "part-0.csv", b"A\n1\n")
    folder_store.put_bytes("landing/bureau/2026-10-01/03/part-0.jsonl", json.dumps({"A": 1}).encode())
    ingest_partition(folder_store, lake, "application", HOUR)
    ingest_partition(folder_store, lake, "bureau", HOUR)
    con: duckdb.DuckDBPyConnection = lake.connect()
    glob = folder_store.uri("bronze/_audit") + "/**/*.parquet"
    got = con.execute(f"SELECT table_name, sum(rows) FROM read_parquet('{glob}') GROUP BY 1 ORDER BY 1").fetchall()
    assert got == [("application", 1), ("bureau", 1)]


def test_json_keys_that_are_empty_or_differ_only_by_case(folder_store: ObjectStore, lake: Lake) -> None:
    body = '{"A": 1, "": 2, "a": 3, "_x": 4}\n'  # found by the fuzz test: an empty key broke the SQL
    folder_store.put_bytes(PREFIX + "part-0.jsonl", body.encode())
    (audit,) = ingest_partition(folder_store, lake, "application", HOUR).files
    assert (audit.status, audit.rows) == ("accepted", 1)
    row = bronze_rows(folder_store, lake).iloc[0]
    assert (row["A"], row["EMPTY_KEY"], row["a__2"], row["KEY_x"]) == ("1", "2", "3", "4")


CONTROL_CSV = (b'A,NAME,C\n'
               b'1,Ann,x\n'
               b'2,Bo\x00b,y\n'                   # NUL in an unquoted field
               b'3,"Cy, Jr",z\n'
               b'4,"Di\x1b[0m",w\n'              # ESC inside a quoted field
               b'5,"multi\nline",v\n'            # a quoted newline is legitimate
               b'6,"Ed\nsecond\x07line",u\n'    # BEL in a quoted field that spans two lines
               b'7,too,many,fields\n'            # malformed for another reason: keeps its own error
               b'8,Fay\tTab,t\n'                 # tab is legitimate
               b'9,Gil,\x0c\x01\n'               # FF and SOH
               b'10,Hal,s\n')


@pytest.mark.parametrize("variant", ["lf", "crlf", "gzip"])  # fast path, CR path, gunzip path
def test_control_characters_quarantine_only_their_csv_records(folder_store: ObjectStore, lake: Lake,
                                                                variant: str) -> None:
    data, name = CONTROL_CSV, "part-0.csv"
    if variant == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif variant == "gzip":
        data, name = gzip.compress(data, mtime=0), "part-0.csv.gz"
    folder_store.put_bytes(PREFIX + name, data)
    folder_store.put_bytes(PREFIX + "part-1.csv", b"A,NAME,C\n11,Ivy,r\n")  # a clean file beside it
    files = {f.source_key.rsplit("/", 1)[-1]: f for f in ingest_partition(folder_store, lake, "application", HOUR).files}
    audit = files[name]
    assert (audit.status, audit.rows, audit.malformed_rows) == ("accepted_with_warnings", 5, 5)
    assert "control characters in 4 record(s) (line 3, 5, 7, 10)" in audit.reason
    assert "5 malformed row(s)" in audit.reason
    assert (files["part-1.csv"].status, files["part-1.csv"].rows) == ("accepted", 1)

    rows = bronze_rows(folder_store, lake)
    assert len(rows) == 11  # 10 data records of part-0 + 1 of part-1: every record that landed is in bronze
    good = rows[rows["_parse_error"].isna()].sort_values("_row_ordinal")
    assert sorted(good["A"].astype(int)) == [1, 3, 5, 8, 10, 11]
    assert good.set_index("A").loc[["3", "5", "8"], "NAME"].tolist() == ["Cy, Jr", "multi\nline", "Fay\tTab"]
    bad = rows[rows["_parse_error"].notna()].sort_values("_row_ordinal")
    assert bad["_row_ordinal"].tolist() == [3, 5, 7, 8, 10]  # line numbers of the landed file, header = 1
    assert bad["_raw_line"].tolist() == ["2,Bo\u2400b,y", '4,"Di\u241b[0m",w', '6,"Ed\nsecond\u2407line",u',
                                         "7,too,many,fields", "9,Gil,\u240c\u2401"]
    errors = bad["_parse_error"].tolist()
    assert errors[0].startswith("CONTROL_CHARACTER: 0x00 (NUL) at character 5")
    assert errors[1].startswith("CONTROL_CHARACTER: 0x1B (ESC) at character 6")
    assert errors[2].startswith("CONTROL_CHARACTER: 0x07 (BEL) at character 13")
    assert errors[3].startswith("TOO MANY COLUMNS")  # its line number survives the records taken out before it
    assert errors[4].startswith("CONTROL_CHARACTER: 0x0C (FF) at character 7") and "0x01 (SOH) x1" in errors[4]
    assert all("control picture" in e for e in errors if e.startswith("CONTROL"))
    strings = rows.select_dtypes("object").stack().dropna().astype(str)
    assert not strings.str.contains(CONTROL).any()  # no raw control character reached bronze


def test_control_characters_in_jsonl_lines(folder_store: ObjectStore, lake: Lake) -> None:
    body = (b'{"A": 1, "B": "x"}\n'
            b'{"A": 2, "B": "y\x00z"}\n'       # raw NUL inside a string: the line is taken out
            b'{"A": 3, "B": "tab\\tok"}\n'
            b'\x0c\n'                           # a line that is only a form feed is not a blank line
            b'{broken\n'
            b'{"A": 4, "B": "x\\u0000"}\n'     # an escaped NUL is valid JSON text, not a control byte
            b'\t{"A": 5}\n')                     # tab around JSON is whitespace
    folder_store.put_bytes(PREFIX + "part-0.jsonl", body)
    (audit,) = ingest_partition(folder_store, lake, "application", HOUR).files
    assert (audit.status, audit.rows, audit.malformed_rows) == ("accepted_with_warnings", 4, 3)
    assert "control characters in 2 line(s)" in audit.reason
    rows = bronze_rows(folder_store, lake)
    assert sorted(rows.loc[rows["_parse_error"].isna(), "A"].astype(int)) == [1, 3, 4, 5]
    bad = rows[rows["_parse_error"].notna()].sort_values("_row_ordinal")
    assert bad["_row_ordinal"].tolist() == [2, 4, 5]
    assert bad["_raw_line"].tolist() == ['{"A": 2, "B": "y\u2400z"}', "\u240c", "{broken"]
    assert [e.split(":")[0] for e in bad["_parse_error"]] == ["CONTROL_CHARACTER", "CONTROL_CHARACTER", "INVALID_JSON"]
    assert "0x00 (NUL) at character 17" in bad["_parse_error"].iloc[0]


def test_control_character_helpers() -> None:
    assert not has_control_bytes(b"A,B\r\n1,\tx\n\xc3\xa9\x7f\x80\x9b")  # tab, CR, LF, DEL, non-ASCII: fine
    assert all(has_control_bytes(b"ok" + bytes([c])) for c in [*range(0, 9), 11, 12, *range(14, 32)])
    text = 'H\n1\n"a\n\x00"\n\n2\x01\n3'
    kept, cut = cut_control_records(text + "\n" + "\n".join("x" for _ in range(4)))
    assert kept == "H\n1\n\n3\nx\nx\nx\nx"
    assert [(line, raw) for line, raw, _ in cut] == [(3, '"a\n\u2400"'), (5, "2\u2401")]
    assert cut_control_records("H\n1\n") == ("H\n1\n", [])

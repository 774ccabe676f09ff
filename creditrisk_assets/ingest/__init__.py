"""Landing → bronze: parse hourly drops into immutable Parquet with lineage and an audit log."""

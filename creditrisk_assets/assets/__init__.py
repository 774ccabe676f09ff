"""Thin Dagster wrappers: read inputs from resources, call one plain function, return metadata."""

import dagster as dg


def opens(where: str) -> dg.MetadataValue:
    """A link that opens from the asset page: an http(s) URL as a URL, anything else as a local path."""
    return dg.MetadataValue.url(where) if where.startswith(("http://", "https://")) else dg.MetadataValue.path(where)

"""Links in asset metadata open: reports in the object store as a local path or a presigned http URL."""

from __future__ import annotations

import datetime as dt
import urllib.parse
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from creditrisk_assets.assets import opens
from creditrisk_assets.layout import drift_report_key
from creditrisk_assets.resources import ObjectStore
from creditrisk_assets.settings import Settings

pytestmark = pytest.mark.integration


def test_a_report_link_opens_without_credentials(backend: tuple[Settings, ObjectStore]) -> None:
    settings, store = backend
    key = drift_report_key(dt.datetime(2026, 10, 3), dt.datetime(2026, 10, 3, 12), 1)
    body = b"<html><body>drift report</body></html>"
    store.put_bytes(key, body)
    link = store.link(key)
    value = opens(link)
    if settings.object_store == "s3":
        assert isinstance(value, dg.UrlMetadataValue) and link.startswith(settings.s3_endpoint)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
        assert {"Signature", "Expires"} <= set(query) or "X-Amz-Signature" in query  # signed, not public
        with urllib.request.urlopen(link, timeout=10) as r:  # noqa: S310 - a plain GET, no credentials sent
            assert r.status == 200 and r.read() == body
    else:
        assert isinstance(value, dg.PathMetadataValue) and Path(link).is_absolute()
        assert Path(link).read_bytes() == body

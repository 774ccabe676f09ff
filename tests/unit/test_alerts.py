"""send_alert against a real HTTP receiver on loopback: payload, a 500 answer, a closed port, a hang."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from creditrisk_assets.monitoring.alerts import Alert, send_alert

HOOK_PATH = "/services/T000/B000/s3cr3t-token"


@dataclass
class Receiver:
    url: str
    status: int
    received: list[dict[str, Any]] = field(default_factory=list)
    delay: threading.Event | None = None


def _serve(status: int, hang: bool = False) -> Iterator[Receiver]:
    rec = Receiver("", status, delay=threading.Event() if hang else None)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rec.received.append({"path": self.path, "content_type": self.headers["Content-Type"],
                                 "json": json.loads(body)})
            if rec.delay is not None:
                rec.delay.wait(5)
            self.send_response(rec.status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if rec.status == 200 else b"error")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}{HOOK_PATH}"
    try:
        yield rec
    finally:
        if rec.delay is not None:
            rec.delay.set()
        server.shutdown()
        server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    yield from _serve(200)


@pytest.fixture()
def failing_receiver() -> Iterator[Receiver]:
    yield from _serve(500)


@pytest.fixture()
def hanging_receiver() -> Iterator[Receiver]:
    yield from _serve(200, hang=True)


ALERT = Alert("drift", "Feature drift on creditrisk-pd v3",
              "3 consecutive drifted windows; retrain requested.",
              {"share_drifted": 0.42, "drifted_columns": "amt_credit, ext_source_1", "window": "2026-10-02"})


def test_payload_arrives_as_slack_json(receiver: Receiver) -> None:
    assert send_alert(receiver.url, ALERT, timeout=5) is True
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got["path"] == HOOK_PATH
    assert got["content_type"].startswith("application/json")
    msg = got["json"]
    assert "Feature drift on creditrisk-pd v3" in msg["text"] and "drift" in msg["text"]
    assert msg["blocks"][0] == {"type": "header", "text": {"type": "plain_text",
                                                           "text": "Feature drift on creditrisk-pd v3"}}
    assert msg["blocks"][1]["text"]["text"] == ALERT.text
    fields = [f["text"] for f in msg["blocks"][2]["fields"]]
    assert fields == ["*share_drifted*\n0.42", "*drifted_columns*\namt_credit, ext_source_1", "*window*\n2026-10-02"]


def test_long_content_respects_slack_limits(receiver: Receiver) -> None:
    alert = Alert("run_failed", "t" * 400, "x" * 5000, {f"k{i}": i for i in range(23)})
    assert send_alert(receiver.url, alert, timeout=5)
    blocks = receiver.received[0]["json"]["blocks"]
    assert len(blocks[0]["text"]["text"]) == 150
    assert len(blocks[1]["text"]["text"]) == 3000
    sections = [b for b in blocks if "fields" in b]
    assert [len(b["fields"]) for b in sections] == [10, 10, 3]


def test_server_error_returns_false_and_logs_without_the_url(failing_receiver: Receiver,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="creditrisk.alerts"):
        assert send_alert(failing_receiver.url, ALERT, timeout=5) is False
    assert len(failing_receiver.received) == 1  # it was delivered, and refused
    rec = caplog.records[-1]
    assert rec.levelno == logging.ERROR and rec.status == 500 and rec.alert_kind == "drift"
    assert "s3cr3t" not in caplog.text and "127.0.0.1" not in caplog.text


def test_closed_port_returns_false(caplog: pytest.LogCaptureFixture) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with caplog.at_level(logging.INFO, logger="creditrisk.alerts"):
        assert send_alert(f"http://127.0.0.1:{port}{HOOK_PATH}", ALERT, timeout=2) is False
    assert caplog.records[-1].error == "URLError"
    assert "s3cr3t" not in caplog.text


def test_timeout_returns_false(hanging_receiver: Receiver) -> None:
    assert send_alert(hanging_receiver.url, ALERT, timeout=0.3) is False
    assert len(hanging_receiver.received) == 1


def test_empty_url_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="creditrisk.alerts"):
        assert send_alert("", ALERT, timeout=1) is False
    assert caplog.records[-1].alert_title == ALERT.title


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "not a url"])
def test_non_http_url_is_refused(url: str) -> None:
    assert send_alert(url, ALERT, timeout=1) is False


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        Alert("meltdown", "t", "x")


def test_stability_alert_arrives_with_its_kind(receiver: Receiver) -> None:
    alert = Alert("stability", "population stability against champion v3",
                  "in the window ending 2026-10-03: SSI 0.31 (unstable), 2 feature(s) with CSI ≥ 0.25",
                  {"SSI": "0.310 (unstable)", "unstable features": "amt_income_total, name_income_type"})
    assert send_alert(receiver.url, alert, timeout=5)
    msg = receiver.received[0]["json"]
    assert msg["text"].startswith("[creditrisk stability] population stability")
    assert msg["blocks"][-1]["elements"][0]["text"] == ":scales: creditrisk · stability"

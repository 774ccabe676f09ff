"""Alerts to a Slack-compatible incoming webhook (plain ``urllib``; no extra dependency).

``send_alert`` never raises: an alert that cannot be delivered is logged (JSON, ``creditrisk.alerts``)
and reported as False, so a failing webhook never fails the run that raised the alert. The webhook
URL is a secret (its path is the credential): it is never logged. Alerts carry facts (model names,
counts, feature names, run ids), never applicant data.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("creditrisk.alerts")

KINDS = ("drift", "stability", "promotion_refused", "approval_required", "run_failed", "stale_asset")
_EMOJI = {"drift": ":chart_with_upwards_trend:", "stability": ":scales:", "promotion_refused": ":no_entry:",
          "approval_required": ":writing_hand:",
          "run_failed": ":x:", "stale_asset": ":hourglass:"}
# Slack Block Kit limits: header text 150 chars, section text 3000, 10 fields per section, 2000 per field.
_HEADER_MAX, _TEXT_MAX, _FIELDS_PER_SECTION, _FIELD_MAX = 150, 3000, 10, 2000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Alert:
    kind: str  # one of KINDS
    title: str
    text: str
    fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"alert kind {self.kind!r}: expected one of {', '.join(KINDS)}")

    def payload(self) -> dict[str, Any]:
        """Slack message: ``text`` (notification / fallback) and Block Kit ``blocks``."""
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": _cut(self.title, _HEADER_MAX)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(self.text, _TEXT_MAX)}},
        ]
        items = [{"type": "mrkdwn", "text": _cut(f"*{k}*\n{v}", _FIELD_MAX)} for k, v in self.fields.items()]
        for i in range(0, len(items), _FIELDS_PER_SECTION):
            blocks.append({"type": "section", "fields": items[i:i + _FIELDS_PER_SECTION]})
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"{_EMOJI[self.kind]} creditrisk · {self.kind}"}]})
        return {"text": f"[creditrisk {self.kind}] {self.title}: {self.text}", "blocks": blocks}


def send_alert(url: str, alert: Alert, *, timeout: float = 5.0) -> bool:
    """POST ``alert`` as JSON to ``url``; True when the webhook answered 2xx.

    Empty ``url``: the alert is only logged (False). A URL that is not http(s), a refused or timed-out
    connection, or a non-2xx answer: logged with the reason, False. Never raises.
    """
    facts = {"alert_kind": alert.kind, "alert_title": alert.title}
    if not url:
        log.warning("alert (no webhook configured)", extra={**facts, "alert_text": alert.text,
                                                            "alert_fields": alert.fields})
        return False
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        log.error("alert not sent: webhook URL is not http(s)", extra=facts)
        return False
    body = json.dumps(alert.payload(), default=str).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (OSError, ValueError) as exc:  # URLError, refused, timeout, bad host
        reason = getattr(exc, "reason", exc)
        log.error("alert not sent: webhook unreachable",
                  extra={**facts, "error": type(exc).__name__, "reason": type(reason).__name__})
        return False
    if 200 <= status < 300:
        log.info("alert sent", extra={**facts, "status": status})
        return True
    log.error("alert not sent: webhook refused it", extra={**facts, "status": status})
    return False

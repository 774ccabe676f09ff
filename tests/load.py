"""Client load for the serving fault tests: applications as a client sends them, one POST without retries, and
threads sending predictions while a replica or a node is killed."""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd


def application(gold: pd.DataFrame, i: int) -> dict[str, Any]:
    """One application's features as a client sends them (JSON types, nulls dropped)."""
    out = {}
    for k, v in gold.drop(columns=["decision_time"]).iloc[i].to_dict().items():
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        out[k] = int(v) if isinstance(v, np.integer) else (float(v) if isinstance(v, np.floating) else v)
    return out


def predict(url: str, body: dict[str, Any], request_id: str) -> tuple[int, str]:
    """One POST, no retry; (status, problem). A dropped or refused connection is -1, a wrong answer -2."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "x-request-id": request_id})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback only
            status, payload = r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:200].decode(errors="replace")
    except Exception as exc:  # noqa: BLE001 - a dropped or refused connection is a failed request
        return -1, repr(exc)[:200]
    if payload.get("request_id") != request_id or not 0.0 < payload.get("pd", -1) < 1.0:
        return -2, f"unexpected answer {str(payload)[:200]}"
    return status, ""


class Answer(NamedTuple):
    thread: int
    request_id: str
    status: int  # HTTP status; -1 a dropped or refused connection, -2 a wrong answer
    problem: str
    sent: float  # time.monotonic()
    answered: float


class Load:
    """Client threads sending predictions until stopped (or ``total`` requests): one ``Answer`` per request."""

    def __init__(self, url: str, bodies: list[dict[str, Any]], threads: int = 4, total: int | None = None,
                 prefix: str = "load") -> None:
        self.url, self.bodies, self.total, self.prefix = url, bodies, total, prefix
        self.results: list[Answer] = []
        self.stop = threading.Event()
        self._count = itertools.count()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, thread: int) -> None:
        while not self.stop.is_set():
            n = next(self._count)
            if self.total is not None and n >= self.total:
                return
            rid, sent = f"{self.prefix}-{uuid.uuid4().hex}", time.monotonic()
            status, problem = predict(self.url, self.bodies[n % len(self.bodies)], rid)
            self.results.append(Answer(thread, rid, status, problem, sent, time.monotonic()))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def failures(self) -> list[Answer]:
        return [r for r in self.results if r.status != 200]


def poll(condition: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.1) -> float:
    """Wait until ``condition()``; returns the seconds it took, fails the test after ``timeout_s``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{what} not within {timeout_s:.0f} s")
        time.sleep(every_s)
    return time.monotonic() - started

"""Find secrets in text: tracked files of the repository, run logs, anything.

A plain function (``scan_text``) with a fixed list of patterns, plus helpers to scan the files
git tracks. A finding never carries the secret itself, only where it is and a masked excerpt,
so printing findings does not leak what was found. Intentionally public values (the local-only
PII key, test-server credentials) are allow-listed by exact value, so any other value at the
same place is still reported.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: rule name -> pattern. Group ``secret`` (when present) is the part that is masked/allow-listed.
PATTERNS: dict[str, re.Pattern[str]] = {
    "aws_access_key_id": re.compile(r"\b(?P<secret>(?:AKIA|ASIA)[0-9A-Z]{16})\b"),
    "aws_secret_access_key": re.compile(
        r"(?i)aws_?secret_?access_?key\w*[\"']?\s*[:=]\s*[\"']?(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"),
    "private_key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----"),
    "slack_webhook": re.compile(r"(?P<secret>https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_/-]{20,})"),
    "slack_token": re.compile(r"\b(?P<secret>xox[abposr]-[A-Za-z0-9-]{10,})"),
    "github_token": re.compile(r"\b(?P<secret>(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}))"),
    "google_api_key": re.compile(r"\b(?P<secret>AIza[0-9A-Za-z_-]{35})"),
    "stripe_key": re.compile(r"\b(?P<secret>(?:sk|rk)_live_[0-9A-Za-z]{16,})"),
    "jwt": re.compile(r"\b(?P<secret>eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"),
    # credentials in a URL (scheme://user:<password>@host); ${VAR} / $(VAR) / <...> are placeholders
    "url_credentials": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:(?P<secret>[^\s:/@'\"$<>{}()]{4,})@"),
    # password = "literal", "api_key": "literal", SECRET_KEY='literal' (8+ chars, no $ interpolation)
    "password_literal": re.compile(
        r"(?i)(?:password|passwd|pwd|secret|api_?key|access_?key|private_?key|pii_?key|token)\w*[\"']?\s*[:=]\s*"
        r"[\"'](?P<secret>[^\"'\s$]{8,})[\"']"),
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    excerpt: str  # the line with the secret masked

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.excerpt}"


@dataclass(frozen=True)
class Allowed:
    """An intentionally public value: allowed only with this rule, in files matching ``path_glob``."""

    path_glob: str
    rule: str
    value: str
    why: str


ALLOWED: tuple[Allowed, ...] = (
    Allowed("creditrisk_assets/settings.py", "password_literal",
            "local-only-insecure-pii-key-do-not-use-in-production",
            "the embedded PII key: public by design, for local use only (production sets CREDITRISK_PII_KEY)"),
    Allowed("tests/unit/test_settings.py", "password_literal", "hunter2-secret",
            "a made-up value the settings test checks is masked"),
    Allowed("tests/unit/test_infra.py", "password_literal", "creditrisk-secrets",
            "the name of the Kubernetes Secret the workloads read, not a value"),
    Allowed("tests/unit/test_infra.py", "password_literal", "hunter22",
            "a made-up value in the Terraform the negative test must reject"),
)


def _mask(line: str, start: int, end: int) -> str:
    secret = line[start:end]
    shown = secret[:4] + "…" if len(secret) > 8 else "…"
    return (line[:start] + shown + line[end:]).strip()[:200]


def _allowed(path: str, rule: str, value: str, allowed: Iterable[Allowed]) -> bool:
    return any(a.rule == rule and a.value == value and Path(path).match(a.path_glob) for a in allowed)


def scan_text(text: str, path: str = "<text>", allowed: Iterable[Allowed] = ALLOWED) -> list[Finding]:
    """Every secret-looking match in ``text`` (one finding per match), minus allow-listed values."""
    allowed = tuple(allowed)
    out: list[Finding] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for rule, pattern in PATTERNS.items():
            for m in pattern.finditer(line):
                group = "secret" if "secret" in pattern.groupindex and m.group("secret") else 0
                value = m.group(group)
                if _allowed(path, rule, value, allowed):
                    continue
                out.append(Finding(path, lineno, rule, _mask(line, m.start(group), m.end(group))))
    return out


def tracked_files(root: Path) -> list[Path]:
    """Files git tracks under ``root`` (staged ones included)."""
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=root, check=True, capture_output=True).stdout
    return [root / p for p in listing.decode().split("\0") if p]


def scan_files(paths: Iterable[Path], root: Path, allowed: Iterable[Allowed] = ALLOWED,
               max_bytes: int = 5_000_000) -> list[Finding]:
    """Scan text files (binary files, i.e. with a NUL byte, and files over ``max_bytes`` are skipped)."""
    allowed = tuple(allowed)
    out: list[Finding] = []
    for path in paths:
        if not path.is_file() or path.stat().st_size > max_bytes:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        out += scan_text(data.decode("utf-8", errors="replace"), path.relative_to(root).as_posix(), allowed)
    return out


def scan_repo(root: Path, allowed: Iterable[Allowed] = ALLOWED) -> list[Finding]:
    """Every finding in the files git tracks under ``root``."""
    root = root.resolve()
    return scan_files(tracked_files(root), root, allowed)

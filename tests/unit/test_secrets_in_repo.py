"""No secret in any file git tracks; and the scanner provably finds planted ones."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from creditrisk_assets.secrets_scan import ALLOWED, PATTERNS, Allowed, scan_repo, scan_text

ROOT = Path(__file__).resolve().parents[2]

# Planted values are assembled at run time so that this tracked file holds none of them.
PLANTED = {
    "aws_access_key_id": "key_id = " + "AKIA" + "Q7X2" * 4,
    "aws_secret_access_key": "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYZ3X4M5N6P7",
    "private_key": "-----BEGIN " + "RSA PRIVATE KEY-----",
    "slack_webhook": "url: https://hooks.slack.com/" + "services/T0ABCDEF1/B0ABCDEF2/" + "x" * 24,
    "slack_token": "xox" + "b-1234567890-abcdefghij",
    "github_token": "gh" + "p_" + "a1B2" * 9,
    "google_api_key": "AI" + "za" + "S" * 35,
    "stripe_key": "sk" + "_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "jwt": "ey" + "JhbGciOiJIUzI1NiJ9.ey" + "JzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "url_credentials": "CREDITRISK_LAKE_CATALOG=postgres://app:" + "s3cr3tpw" + "@db.internal:5432/lake",
    "password_literal": "password = " + '"' + "correct-horse-battery" + '"',
}


def test_no_secrets_in_tracked_files() -> None:
    findings = scan_repo(ROOT)
    assert not findings, "secrets in tracked files (remove them, or allow-list a public value in " \
                         "creditrisk_assets/secrets_scan.py):\n" + "\n".join(map(str, findings))


def test_every_rule_has_a_planted_example() -> None:
    assert set(PLANTED) == set(PATTERNS)


@pytest.mark.parametrize("rule", sorted(PLANTED))
def test_scanner_catches_each_planted_secret(rule: str) -> None:
    findings = scan_text(PLANTED[rule], "planted.txt")
    assert rule in {f.rule for f in findings}, findings


def test_scan_repo_catches_a_planted_secret_in_a_tracked_file(tmp_path: Path) -> None:
    """The same entry point as the repository test, on a throwaway git repo with one planted secret."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "clean.py").write_text("API_URL = 'https://example.org'\npassword = os.environ['PW']\n")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.env").write_text("# deploy\n" + PLANTED["aws_access_key_id"] + "\n")
    (tmp_path / "untracked.txt").write_text(PLANTED["private_key"] + "\n")  # not added: not scanned
    subprocess.run(["git", "add", "clean.py", "config/settings.env"], cwd=tmp_path, check=True)
    findings = scan_repo(tmp_path)
    assert [(f.path, f.line, f.rule) for f in findings] == [("config/settings.env", 2, "aws_access_key_id")]
    assert "Q7X2Q7X2" not in str(findings[0]), "a finding must not print the secret"


@pytest.mark.parametrize("line", [
    'password: "${{ secrets.DB_PASSWORD }}"',  # a reference, not a value
    "api_key = settings.serve_api_key",
    "MLFLOW_BACKEND_STORE_URI=postgresql://$(USER):$(PASSWORD)@db/mlflow",
    'token = ""',
    "key_id = AKIA_NOT_A_KEY",
])
def test_references_and_placeholders_are_not_findings(line: str) -> None:
    assert scan_text(line) == []


def test_allow_list_is_exact_and_each_entry_is_needed() -> None:
    """An allowed value passes only at its place; elsewhere, or another value at its place, is found."""
    entry = ALLOWED[0]
    assign = "LOCAL_ONLY_PII_" + "KEY = "
    line = assign + f'"{entry.value}"'
    assert scan_text(line, entry.path_glob) == []
    assert [f.rule for f in scan_text(line, "creditrisk_assets/other.py")] == [entry.rule]
    assert [f.rule for f in scan_text(assign + '"another-long-value"', entry.path_glob)] == [entry.rule]
    # every allow-list entry still matches something in the repository (no stale exceptions)
    for a in ALLOWED:
        found = scan_repo(ROOT, allowed=[x for x in ALLOWED if x != a])
        assert any(f.rule == a.rule and Path(f.path).match(a.path_glob) for f in found), f"stale entry: {a}"


def test_allowed_type_is_frozen() -> None:
    with pytest.raises(AttributeError):
        ALLOWED[0].value = "x"  # type: ignore[misc]
    assert isinstance(ALLOWED[0], Allowed)

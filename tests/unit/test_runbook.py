"""Every command in docs/RUNBOOK.md exists: each `creditrisk <sub>` answers `--help` with exit 0 through the
real CLI, and each `make <target>` is a Makefile target."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from creditrisk_assets.cli import main as cli

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
#: a fenced code block, or an inline code span
CODE = re.compile(r"```[a-z]*\n(.*?)```|`([^`\n]+)`", re.DOTALL)


def commands(text: str) -> list[list[str]]:
    """Every command line in the runbook's code (blocks and inline spans), split like a shell would."""
    out = []
    for block, inline in CODE.findall(text):
        if inline and len(inline.split()) == 1:
            continue  # a word in prose (`creditrisk`, `make`), not a command
        for line in (block or inline).splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                try:
                    out.append(shlex.split(line))
                except ValueError:  # prose in a code span (an apostrophe): not a command
                    out.append(line.split())
    return out


def creditrisk_commands(text: str) -> set[tuple[str, ...]]:
    """The subcommand words of each `creditrisk ...` command (up to the first option or argument value)."""
    found = set()
    for argv in commands(text):
        if not argv or Path(argv[0]).name != "creditrisk":
            continue
        words = []
        for token in argv[1:]:
            if token.startswith("-") or not re.fullmatch(r"[a-z][a-z_-]*", token):
                break
            words.append(token)
        found.add(tuple(words))
    return found


def make_commands(text: str) -> set[str]:
    return {t for argv in commands(text) if argv[:1] == ["make"] for t in argv[1:] if not t.startswith("-")}


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def help_exit(words: tuple[str, ...]) -> int:
    with pytest.raises(SystemExit) as exc:
        cli([*words, "--help"])
    return int(exc.value.code or 0)


def test_the_runbook_names_commands_of_every_kind() -> None:
    text = RUNBOOK.read_text()
    subs = {w[0] for w in creditrisk_commands(text) if w}
    assert {"promote", "approve", "retire", "rollback", "models", "forget", "serve"} <= subs
    assert make_commands(text)
    for title in ("Drift alert", "Refused promotion", "Approval", "Serving down", "Rollback", "Erasure request"):
        assert f"## {title}" in text


@pytest.mark.parametrize("words", sorted(creditrisk_commands(RUNBOOK.read_text())), ids=" ".join)
def test_every_creditrisk_command_exists(words: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert words, "a bare `creditrisk` in the runbook: name the subcommand"
    assert help_exit(words) == 0, f"`creditrisk {' '.join(words)}` does not exist: {capsys.readouterr().err}"


def test_a_command_that_does_not_exist_is_caught(capsys: pytest.CaptureFixture[str]) -> None:
    assert help_exit(("unmake",)) != 0
    assert help_exit(("serve", "restart")) != 0
    assert creditrisk_commands("```bash\n.venv/bin/creditrisk promote --version 3 --by x\n```") == {("promote",)}
    assert creditrisk_commands("`creditrisk serve status`") == {("serve", "status")}
    assert creditrisk_commands("```\ncreditrisk\n```") == {()}  # a bare command in a block: flagged above


@pytest.mark.parametrize("target", sorted(make_commands(RUNBOOK.read_text())))
def test_every_make_target_exists(target: str) -> None:
    assert target in make_targets(), f"`make {target}` is not a target of the Makefile"

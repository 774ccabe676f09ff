"""The ``creditrisk`` command as a user runs it (a subprocess of the installed console script): ``--help``
lists every command on one line each, ``--version`` prints the package version, and a wrong setting or an
unreachable service is one line on stderr naming the setting, never a traceback; a bug keeps its traceback."""

from __future__ import annotations

import importlib.metadata
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from creditrisk_assets import cli
from tests.servers import free_port

CREDITRISK = Path(sys.executable).parent / "creditrisk"  # the console script of this environment


def run(*args: str, home: Path, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``creditrisk ARGS`` with only ``env`` set among the settings (nothing inherited from the caller's
    ``CREDITRISK_*`` or ``DAGSTER_HOME``), the data home under ``home``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CREDITRISK_", "DAGSTER_", "MLFLOW_"))}
    base.update({"CREDITRISK_HOME": str(home / "home"), "PYTHONWARNINGS": "ignore"}, **(env or {}))
    return subprocess.run([str(CREDITRISK), *args], env=base, cwd=home, capture_output=True, text=True,
                          timeout=timeout, check=False)


def one_error_line(done: subprocess.CompletedProcess[str], command: str) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"creditrisk {command}: "), lines[0]
    return lines[0]


def test_help_lists_every_command_on_one_line(tmp_path: Path) -> None:
    done = run("--help", home=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    listed = {name: [line for line in lines if line.strip().startswith(name + "  ")] for name in cli.COMMANDS}
    assert all(len(found) == 1 for found in listed.values()), listed
    for name, text in cli.COMMANDS.items():
        assert listed[name][0].split(None, len(name.split()))[-1].strip() == text
    # the commands dispatched before argparse are there too
    assert {"simulate", "import homecredit", "import table", "serve", "demo"} <= set(cli.COMMANDS)
    assert {"promote", "approve", "retire", "rollback", "models", "forget", "retention"} <= set(cli.COMMANDS)
    assert "--version" in done.stdout


def test_version_is_the_package_version(tmp_path: Path) -> None:
    done = run("--version", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"creditrisk {importlib.metadata.version('creditrisk')}"


@pytest.mark.parametrize("words", sorted(cli.COMMANDS), ids=str)
def test_every_listed_command_answers_help(words: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([*words.split(), "--help"])
    assert exc.value.code in (0, None), capsys.readouterr().err
    assert "usage: creditrisk " + words in capsys.readouterr().out


def test_an_unknown_command_is_one_line(tmp_path: Path) -> None:
    done = run("unmake", home=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "'unmake'" in done.stderr


@pytest.mark.parametrize("argv", [["models"], ["simulate", "--hours", "1", "--no-progress"], ["serve", "status"],
                                  ["retention"]], ids=" ".join)
def test_a_wrong_setting_is_one_line_naming_it(tmp_path: Path, argv: list[str]) -> None:
    done = run(*argv, home=tmp_path, env={"CREDITRISK_SERVE_PORT": "notaport"})
    assert done.returncode == 2
    line = one_error_line(done, argv[0])
    assert "CREDITRISK_SERVE_PORT='notaport'" in line
    assert not (tmp_path / "home" / "objectstore").exists()  # nothing was written


def test_an_unreachable_mlflow_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = run("models", home=tmp_path, env={"CREDITRISK_MLFLOW_TRACKING_URI": closed})
    assert done.returncode == 1
    line = one_error_line(done, "models")
    assert closed in line and "CREDITRISK_MLFLOW_TRACKING_URI" in line


def test_an_unreachable_object_store_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    done = run("retention", home=tmp_path, env={
        "CREDITRISK_OBJECT_STORE": "s3", "CREDITRISK_S3_ENDPOINT": closed, "CREDITRISK_S3_BUCKET": "creditrisk",
        # throwaway keys made at run time: no credential-looking literal in the repository
        "CREDITRISK_S3_ACCESS_KEY_ID": secrets.token_hex(8), "CREDITRISK_S3_SECRET_ACCESS_KEY": secrets.token_hex(16)})
    assert done.returncode == 1
    line = one_error_line(done, "retention")
    assert closed in line and "CREDITRISK_S3_ENDPOINT" in line


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(argv: list[str]) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "dispatch", broken)
    with pytest.raises(ZeroDivisionError):
        cli.main(["models"])
    assert cli.failure_exit(KeyError("x")) is None

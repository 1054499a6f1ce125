"""The command line surface: help texts and one-line errors for bad flags."""

from __future__ import annotations

import subprocess
import sys

import pytest

from balance_tui import cli


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """cli.main(argv) -> (exit code, stdout, stderr), whether it returns or argparse exits."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_main_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, ["--help"])
    assert code == 0
    for name in cli.COMMANDS:
        assert name in out
    assert "--bootstrap-servers" in out


@pytest.mark.parametrize("command", ["broker", "produce", "down"])
def test_subcommand_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run_cli(capsys, [command, "--help"])
    assert code == 0
    assert f"balance-tui {command}" in out
    assert "--topic" in out  # every command accepts the settings flags


def test_broker_help_documents_port_and_reuse(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_cli(capsys, ["broker", "--help"])
    assert "--port" in out and "--reuse" in out and "exit 0" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, ["--version"])
    assert code == 0 and out.startswith("balance-tui ")


@pytest.mark.parametrize("argv", [
    ["--no-such-flag"],
    ["broker", "--no-such-flag"],
    ["broker", "--port", "70000"],
    ["broker", "--port", "ninety"],
    ["no-such-command"],
])
def test_bad_flag_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run_cli(capsys, argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("balance-tui") and "error" in lines[0]


def test_python_dash_m_help() -> None:
    result = subprocess.run([sys.executable, "-m", "balance_tui", "--help"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "usage: balance-tui" in result.stdout
    assert result.stderr == ""


def test_python_dash_m_unknown_flag() -> None:
    result = subprocess.run([sys.executable, "-m", "balance_tui", "--frobnicate"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--frobnicate" in result.stderr

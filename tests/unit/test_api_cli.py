"""The dashboard's --http-port and --http-host flags: one-line errors, and the HTTP stack only when asked."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.unit.test_cli import run_cli


@pytest.mark.parametrize("value", ["70000", "-1", "eighty", ""])
def test_a_bad_port_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], value: str) -> None:
    code, out, err = run_cli(capsys, ["--headless", "--http-port", value])
    assert code == 2 and out == ""
    assert err.startswith("balance-tui: error: invalid setting http_port: ") and err.count("\n") == 1, err


def test_a_port_in_use_is_one_line_before_any_broker_is_asked(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # Nothing listens on the bootstrap port: the HTTP error must come first, at once.
        code, _, err = run_cli(capsys, ["--headless", "--http-port", str(port), "--bootstrap-servers", "127.0.0.1:9"])
    assert code == 1
    assert err == (f"balance-tui: error: cannot serve the HTTP API on 127.0.0.1:{port}: the port is in use "
                   "(choose another --http-port)\n")


def test_the_flags_are_documented_in_the_dashboards_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, ["dashboard", "--help"])
    assert code == 0 and "--http-port" in out and "--http-host" in out


def test_the_http_stack_is_not_imported_without_http_port() -> None:
    probe = ("import sys; from balance_tui.cli import build_parser; build_parser().parse_args(['--headless']); "
             "heavy = sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'prometheus_client', 'balance_tui.api')"
             " if m in sys.modules); print(heavy)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"

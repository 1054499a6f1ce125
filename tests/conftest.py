"""Shared fixtures: isolated state/config dirs, one embedded broker per session, unique names.

Set BALANCE_TUI_TEST_BOOTSTRAP=host:port to run the broker tests against an
external cluster instead of the embedded Tansu broker.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # `from tests.helpers import ...` works however pytest was launched (not only `python -m pytest`).
    sys.path.insert(0, str(ROOT))

TEST_BOOTSTRAP_ENV = "BALANCE_TUI_TEST_BOOTSTRAP"


@dataclass(frozen=True)
class ExternalBroker:
    """An already running cluster named by BALANCE_TUI_TEST_BOOTSTRAP."""

    bootstrap: str


@pytest.fixture(scope="session", autouse=True)
def isolated_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point XDG state/config dirs at a temp dir and drop the user's balance-tui/lab env vars.

    os.environ is changed (not just patched in-process), so subprocesses started by
    tests inherit the isolation. `locations` reads platformdirs at call time, so the
    change takes effect even though `balance_tui.locations` may already be imported.
    """
    root = tmp_path_factory.mktemp("xdg")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(root / "state"))
        patch.setenv("XDG_CONFIG_HOME", str(root / "config"))
        if sys.platform == "darwin":  # platformdirs ignores XDG_* on macOS; it follows HOME
            patch.setenv("HOME", str(root / "home"))
        for name in list(os.environ):
            if (name.startswith("BALANCE_TUI_") and name != TEST_BOOTSTRAP_ENV) or name.startswith("Kafka__"):
                patch.delenv(name)
        from balance_tui import locations

        state = locations.state_dir()
        assert state.is_relative_to(root), f"state dir {state} escapes the test sandbox {root}"
        yield root


@pytest.fixture(scope="session")
def broker(isolated_state: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One started broker for the whole session: `.bootstrap` is its `host:port`."""
    external = os.environ.get(TEST_BOOTSTRAP_ENV)
    if external:
        yield ExternalBroker(external)
        return
    from balance_tui.kafka.broker import EmbeddedBroker

    embedded = EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log")
    embedded.start(timeout=30.0)
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture
def client_config(broker: object) -> dict[str, str]:
    """librdkafka base properties for the session broker (a fresh dict per test)."""
    return {"bootstrap.servers": broker.bootstrap}  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def unique() -> Callable[[str], str]:
    """`unique(prefix)` -> prefix + 8 hex chars, for topic and group names that never collide."""

    def make(prefix: str) -> str:
        return f"{prefix}{uuid.uuid4().hex[:8]}"

    return make

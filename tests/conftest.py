"""Shared fixtures: isolated state/config dirs, one embedded broker per session, unique names.

Broker-backed tests run once per engine in BALANCE_TUI_TEST_ENGINES (default
`tansu,kafka`), each against one broker started for the whole session. Set
BALANCE_TUI_TEST_BOOTSTRAP=host:port to run them against an external cluster instead.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# No timing in tests: Hypothesis's per-example deadline failed a cold first run (imports and caches warming).
settings.register_profile("balance-tui", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("balance-tui")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # `from tests.helpers import ...` works however pytest was launched (not only `python -m pytest`).
    sys.path.insert(0, str(ROOT))

TEST_BOOTSTRAP_ENV = "BALANCE_TUI_TEST_BOOTSTRAP"
#: Which brokers the broker-backed tests run against, comma-separated: tansu, kafka (default both).
ENGINES_ENV = "BALANCE_TUI_TEST_ENGINES"


@dataclass(frozen=True)
class ExternalBroker:
    """An already running cluster named by BALANCE_TUI_TEST_BOOTSTRAP."""

    bootstrap: str
    engine: str = "external"


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
            ours = name.startswith("BALANCE_TUI_") and name not in (TEST_BOOTSTRAP_ENV, ENGINES_ENV)
            if ours or name.startswith("Kafka__"):
                patch.delenv(name)
        from balance_tui import locations

        state = locations.state_dir()
        assert state.is_relative_to(root), f"state dir {state} escapes the test sandbox {root}"
        yield root


def _engines() -> list[str]:
    """The brokers the broker-backed tests run against: BALANCE_TUI_TEST_ENGINES (default both)."""
    if os.environ.get(TEST_BOOTSTRAP_ENV):
        return ["external"]
    names = [name.strip() for name in os.environ.get(ENGINES_ENV, "tansu,kafka").split(",") if name.strip()]
    unknown = sorted(set(names) - {"tansu", "kafka"})
    if unknown or not names:
        raise pytest.UsageError(f"{ENGINES_ENV} must list tansu and/or kafka, got {os.environ.get(ENGINES_ENV)!r}")
    return names


ENGINES = _engines()


class SessionBrokers:
    """One broker per engine for the whole session, started on first use, stopped at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: dict[str, object] = {}
        self.unavailable: dict[str, str] = {}

    def get(self, engine: str) -> object:
        if engine in self.unavailable:
            pytest.skip(f"Apache Kafka tests skipped: {self.unavailable[engine]}")
        if engine not in self.started:
            self.started[engine] = self._start(engine)
        return self.started[engine]

    def _start(self, engine: str) -> object:
        if engine == "external":
            return ExternalBroker(os.environ[TEST_BOOTSTRAP_ENV])
        workdir = self.root / engine
        workdir.mkdir(parents=True, exist_ok=True)
        if engine == "tansu":
            from balance_tui.kafka.brokers.tansu import TansuBroker

            return TansuBroker(log_path=workdir / "tansu.log").start(timeout=30.0)
        from balance_tui.kafka.brokers.apache import KafkaBroker
        from balance_tui.kafka.brokers.distribution import KafkaUnavailable

        try:
            broker = KafkaBroker(data_dir=workdir / "data", fresh=True, **KAFKA_TEST_OPTIONS)
        except KafkaUnavailable as error:
            self.unavailable[engine] = str(error)
            pytest.skip(f"Apache Kafka tests skipped: {error}")
        return broker.start(timeout=60.0)

    def stop(self) -> None:
        for broker in self.started.values():
            stop = getattr(broker, "stop", None)
            if stop is not None:
                stop()


#: The session's Apache Kafka: no initial rebalance delay, so a new test group is assigned at once
#: (the default 3 s is what the lab and the demo show; tests never measure it).
KAFKA_TEST_OPTIONS: dict[str, object] = {"initial_rebalance_delay_ms": 0}


@pytest.fixture(scope="session")
def session_brokers(isolated_state: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionBrokers]:
    brokers = SessionBrokers(tmp_path_factory.mktemp("brokers"))
    try:
        yield brokers
    finally:
        brokers.stop()


@pytest.fixture(scope="session", params=ENGINES)
def broker(request: pytest.FixtureRequest, session_brokers: SessionBrokers) -> object:
    """The session broker of each engine in turn: `.bootstrap` is its `host:port`, `.engine` its kind."""
    return session_brokers.get(request.param)


@pytest.fixture(scope="session")
def kafka_broker(session_brokers: SessionBrokers) -> object:
    """The session's Apache Kafka, for what only Kafka shows (DescribeGroups, KIP-848, static membership)."""
    if os.environ.get(TEST_BOOTSTRAP_ENV) or "kafka" not in ENGINES:
        pytest.skip(f"needs Apache Kafka (not in {ENGINES_ENV}={','.join(ENGINES)})")
    return session_brokers.get("kafka")


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

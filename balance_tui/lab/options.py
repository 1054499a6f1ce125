"""Provides the lab's options, its constants (the lab's 6 partitions, session timeouts, traffic
profiles) and its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from balance_tui.config import Settings
from balance_tui.core.assignment import utc_now
from balance_tui.core.traffic import PROFILES
from balance_tui.errors import UserError
from balance_tui.session_log import STATS_SECONDS

SCENARIOS = ("scale", "crash", "strategies", "static", "chaos")
PARTITIONS = 6  # the lab's banking.transactions
#: The lab's appsettings.json: SessionTimeoutMs 10000, HeartbeatIntervalMs 3000.
LAB_SESSION_TIMEOUT_MS = 10_000
LAB_HEARTBEAT_INTERVAL_MS = 3_000
#: `--fast`: the test suite's values (Tansu then holds each join round 1 s instead of 5 s).
FAST_SESSION_TIMEOUT_MS = 2_000
FAST_HEARTBEAT_INTERVAL_MS = 500
#: The lab's worker: "Traitement: 500 tx/sec max" per consumer.
LAB_WORK_MS = 2.0
#: The lab's own strategy (BalanceConsumerService: PartitionAssignmentStrategy.CooperativeSticky).
LAB_STRATEGY = "cooperative-sticky"
#: scale tells the lab's scaling story (one worker saturates at 1000 tx/s); the others run at peak.
DEFAULT_PROFILES = {"scale": "black-friday", "crash": "peak", "strategies": "peak", "static": "peak", "chaos": "peak"}
#: Each member logs `stats` this often; holds are counted in these lines.
STATS_INTERVAL_S = STATS_SECONDS
POLL_S = 0.1

class LabStepFailed(UserError):
    """A step's assignment was not reached in time, or a process the lab needs died."""


@dataclass(frozen=True)
class LabOptions:
    scenario: str
    output: Path
    strategy: str  # scale and crash
    session_timeout_ms: int
    heartbeat_interval_ms: int
    profile: str
    #: `stats` lines each live member logs between steps (the load the step runs under).
    hold: int
    #: Connection settings of an explicit cluster; None: start an embedded broker.
    cluster: Settings | None
    argv: tuple[str, ...] = ()
    work_ms: float = 2.0  # the lab's worker: "Traitement: 500 tx/sec max"
    #: Settings flags given on the lab's command line and passed on to every member (`--changelog off`).
    member_flags: tuple[str, ...] = ()
    #: The broker started when no cluster is given: auto, kafka or tansu (settings.broker_engine).
    engine: str = "auto"
    kafka_version: str = "4.4.0"
    kafka_home: Path | None = None
    #: Members get stable ids (`--instance-id lab-<group>-w1`): static membership (KIP-345).
    static: bool = False
    #: chaos: seconds of fault injection, the schedule's seed, members, and which kinds of fault.
    duration_s: float = 120.0
    seed: int = 0
    members: int = 3
    faults: tuple[str, ...] = ()

    @property
    def step_timeout_s(self) -> float:
        """Deadline of one step: cooperative-sticky on Tansu needs several join rounds of session/2."""
        return 60.0 + 8 * self.session_timeout_ms / 1000

    @property
    def produce_rate(self) -> float:
        return float(PROFILES[self.profile])


def default_output(scenario: str) -> Path:
    from balance_tui import locations

    return locations.state_dir() / "lab" / f"{scenario}-{utc_now().strftime('%Y%m%dT%H%M%SZ')}"



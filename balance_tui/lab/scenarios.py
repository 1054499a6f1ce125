"""Provides the lab's scenarios (scale, crash, strategies, static, chaos) as steps on a `LabRun`."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from balance_tui.config import CONSUMER_PROTOCOL
from balance_tui.lab.chaos import ChaosRun
from balance_tui.lab.measure import (
    STRATEGY_ORDER,
)
from balance_tui.lab.runs import LabRun


def run_scale(lab: LabRun) -> None:
    """1 → 2 → 3 → 6 → 8 members (balanced each time, 2 idle at 8), then back to 1 by clean stops."""
    group = lab.group("scale", lab.options.strategy, directory=lab.output)
    count = 0
    for target in (1, 2, 3, 6, 8):
        group.join(f"up-{target}", target - count, label=f"+{target - count}")
        count = target
    for target in (6, 3, 2, 1):
        newest_first = sorted(group.live(), key=group.members.index, reverse=True)
        group.leave(f"down-{target}", newest_first[:count - target], label=f"−{count - target}")
        count = target


def run_crash(lab: LabRun) -> None:
    """Three members under load, W2 is SIGKILLed, the two survivors take over all 6 partitions."""
    group = lab.group("crash", lab.options.strategy, directory=lab.output)
    group.join("three", 3, label="3 start")
    w2 = group.members[1]
    group.kill("crash", w2, label="kill -9 W2")


def run_strategies(lab: LabRun) -> None:
    """For range, roundrobin, cooperative-sticky, and KIP-848's consumer protocol where the broker serves
    it: 2 members, a 3rd joins, W1 leaves, W2 is killed."""
    from balance_tui.kafka.admin import describe_broker_of

    serves_kip848 = describe_broker_of(lab.client_config).consumer_protocol
    for strategy in STRATEGY_ORDER:
        if strategy == CONSUMER_PROTOCOL and not serves_kip848:
            lab.say(f"{lab.broker_label} does not serve KIP-848's consumer protocol: no column for it")
            continue
        group = lab.group(strategy, strategy)
        group.join("two", 2, label="2 start")
        group.join("join", 1, label="W3 joins")
        w1, w2 = group.members[0], group.members[1]
        group.leave("leave", [w1], label="W1 leaves")
        group.kill("crash", w2, label="kill -9 W2")
        group.close()  # the next strategy runs alone on the machine


def run_static(lab: LabRun) -> None:
    """Static membership (KIP-345): two groups of two members, `static` with stable ids, `dynamic` without.
    In each, W2 is SIGKILLed and restarted at once: the static one is handed its partitions back within
    its session timeout and nobody else is revoked; the dynamic one joins as a new member."""
    for label, static in (("static", True), ("dynamic", False)):
        group = lab.group(label, lab.options.strategy, static=static)
        group.join("two", 2, label="2 start")
        group.restart("restart", group.members[1], label="kill -9 W2, restart it")
        group.close()


def run_chaos(lab: LabRun) -> None:
    """Members under traffic, faults at seeded times, then convergence and `verify` (balance_tui.lab.chaos)."""
    lab.chaos = ChaosRun(lab)
    lab.chaos.run()


SCENARIO_STEPS: dict[str, Callable[[LabRun], None]] = {
    "scale": run_scale, "crash": run_crash, "strategies": run_strategies, "static": run_static, "chaos": run_chaos,
}


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a lab like Ctrl+C does: everything it started is stopped first."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

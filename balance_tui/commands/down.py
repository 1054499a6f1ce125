"""Stop the broker and traffic generator started by `balance-tui demo` (or `balance-tui broker`).

Reads the pid files in the state directory's run/ folder, stops each recorded
process that is still a balance-tui or tansu process (SIGTERM, then SIGKILL after
a few seconds), removes the pid files and prints one line per stopped service.
"""

from __future__ import annotations

import argparse

from balance_tui.config import Settings
from balance_tui.kafka.brokers.process import stop_recorded

#: Stops local processes by their pid files: the Kafka client settings are not checked.
USES_KAFKA = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=None,
                        help="only stop what was started for this broker port")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="grace period after SIGTERM before SIGKILL (default 5)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    lines = stop_recorded(port=args.port, timeout=args.timeout)
    for line in lines:
        print(line)
    if not lines:
        print("nothing to stop")
    return 0

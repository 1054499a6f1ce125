"""Produce lab-shaped bank transactions, keyed by customerId, at a steady rate.

Rate: `--rate N` transactions per second (0: as fast as possible) or `--profile`
normal|peak|black-friday (100, 300, 1000 tx/s, the lab's scenarios). `--rate` wins
when both are given; with neither, the normal profile (100 tx/s) applies.
Runs until `--count`, `--duration` (whichever comes first) or Ctrl+C / SIGTERM,
which flush what is queued and print the summary. A broker that stops answering pauses
the generator; one that comes back as a new cluster (the embedded broker restarted) gets
the topic recreated and a new producer. Each is said in one line as it happens, and the
status line shows delivery failures live. Exits 1 if any message failed delivery, 3 if
no broker answers at the start.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from balance_tui.config import Settings
from balance_tui.core.traffic import PROFILES, TrafficGenerator
from balance_tui.kafka.admin import wait_for_broker
from balance_tui.kafka.producer import ProduceReport, produce


def number_arg(kind: type, minimum: float, *, strict: bool = False, maximum: float | None = None
            ) -> Callable[[str], Any]:
    """argparse type: a number of `kind` >= minimum (> minimum if strict), <= maximum."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        too_low = value <= minimum if strict else value < minimum
        if too_low or (maximum is not None and value > maximum):
            bound = f"{'>' if strict else '>='} {minimum:g}" + (f" and <= {maximum:g}" if maximum is not None else "")
            raise argparse.ArgumentTypeError(f"{text} must be {bound}")
        return value
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=number_arg(float, 0), default=None, metavar="N",
                        help="transactions per second, 0 for as fast as possible (wins over --profile)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="the lab's load scenarios: normal 100, peak 300, black-friday 1000 tx/s "
                             "(default: normal)")
    parser.add_argument("--count", type=number_arg(int, 1), default=None, metavar="N",
                        help="stop after N transactions (default: until Ctrl+C)")
    parser.add_argument("--duration", type=number_arg(float, 0, strict=True), default=None, metavar="S",
                        help="stop after S seconds (default: until Ctrl+C)")
    parser.add_argument("--customers", type=number_arg(int, 1, maximum=1_000_000), default=50, metavar="N",
                        help="number of customers CUST-001..CUST-N (default 50)")
    parser.add_argument("--seed", type=number_arg(int, 0), default=None, metavar="S",
                        help="random seed: same seed, same transactions (default: a random seed, printed)")
    parser.add_argument("--bad-ratio", type=number_arg(float, 0, maximum=1), default=0.0, metavar="F",
                        help="share of deliberately malformed messages, 0..1 (default 0)")
    parser.add_argument("--connect-timeout", type=number_arg(float, 0, strict=True), default=10.0, metavar="S",
                        help="give up if no broker answers within S seconds (default 10)")


def resolve_rate(args: argparse.Namespace) -> float:
    """Transactions per second: `--rate` if given, else the profile's, else the normal profile's."""
    return args.rate if args.rate is not None else PROFILES[args.profile or "normal"]


def run(args: argparse.Namespace, settings: Settings) -> int:
    rate = resolve_rate(args)
    generator = TrafficGenerator(customers=args.customers, seed=args.seed, bad_ratio=args.bad_ratio)
    # Checked here too (produce() does it again, cheaply) so that an unreachable broker is
    # the only line printed, not the banner below followed by the error.
    wait_for_broker(settings.client_config(), args.connect_timeout)
    pace = "as fast as possible" if rate == 0 else f"{rate:g} tx/s"
    if args.rate is None:
        pace += f" (profile {args.profile or 'normal'})"
    limits = [f"{args.count:,} transactions" if args.count else "", f"{args.duration:g}s" if args.duration else ""]
    until = " or ".join(limit for limit in limits if limit) or "Ctrl+C"
    print(f"producing to {settings.topic} at {settings.bootstrap_servers}: {pace}, "
          f"{args.customers} customers, seed {generator.seed}, bad ratio {args.bad_ratio:g}, "
          f"until {until}", file=sys.stderr, flush=True)

    status = StatusLine(sys.stderr) if sys.stderr.isatty() else None

    def say(line: str) -> None:
        if status:
            status.clear()
        print(f"balance-tui: {line}", file=sys.stderr, flush=True)

    stop = threading.Event()
    with _stop_on_signals(stop):
        try:
            report = produce(settings, generator, rate=rate, count=args.count, duration=args.duration,
                             stop=stop, on_status=status.update if status else None, on_event=say,
                             connect_timeout=args.connect_timeout)
        finally:
            if status:
                status.clear()
    print(summary(report, settings.topic, malformed=generator.bad_generated), file=sys.stderr, flush=True)
    return 1 if report.failed or report.first_error else 0


def summary(report: ProduceReport, topic: str, malformed: int = 0) -> str:
    """The end-of-run report: totals, rate, per-partition counts and delivery failures."""
    bad = f", {malformed:,} of them deliberately malformed" if malformed else ""
    lines = [
        f"produced {report.delivered:,} of {report.sent:,} transactions to {topic} in {report.seconds:.2f}s "
        f"({report.rate:,.0f} tx/s){bad}",
        f"per partition: {_partitions(report) or 'none'}",
    ]
    if report.failed:
        lines.append(f"delivery failures: {report.failed:,} (first: {report.first_error})")
    else:
        lines.append("delivery failures: 0")
    if report.reconnects:
        lines.append(f"broker restarts: {report.reconnects} (topic and producer recreated each time; "
                     f"partition counts cover every broker of the run)")
    if report.unreachable_seconds is not None:
        lines.append(f"the broker was unreachable for the last {report.unreachable_seconds:.0f}s")
    return "\n".join(lines)


def _partitions(report: ProduceReport) -> str:
    return " ".join(f"P{partition}={count:,}" for partition, count in report.per_partition.items())


def status_text(report: ProduceReport, rate: float) -> str:
    """The live status: rate, totals, failures with the latest reason, and a broker that does not answer."""
    parts = [f"{rate:,.0f} tx/s", f"sent {report.sent:,}", f"delivered {report.delivered:,}"]
    if report.failed:
        parts.append(f"failed {report.failed:,} (last: {report.last_error})")
    if report.unreachable_seconds is not None:
        parts.insert(0, f"broker unreachable for {report.unreachable_seconds:.0f}s, paused")
    elif report.in_flight:
        parts.append(f"in flight {report.in_flight:,}")
    if report.reconnects:
        parts.append(f"broker restarts {report.reconnects}")
    parts.append(_partitions(report))
    return "  ".join(part for part in parts if part)


class StatusLine:
    """One line on a terminal, rewritten in place with `\\r`: rate over the last interval and totals."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._previous: ProduceReport | None = None

    def update(self, report: ProduceReport) -> None:
        previous = self._previous
        self._previous = report
        if previous is not None and report.seconds > previous.seconds:
            rate = (report.sent - previous.sent) / (report.seconds - previous.seconds)
        else:
            rate = report.sent / report.seconds if report.seconds > 0 else 0.0
        line = status_text(report, rate)
        # \x1b[K clears what a longer previous line left behind.
        self._stream.write(f"\r{line}\x1b[K")
        self._stream.flush()

    def clear(self) -> None:
        if self._previous is not None:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM ask the loop to stop (flush, summary, exit 0); a second SIGINT aborts."""
    def request_stop(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

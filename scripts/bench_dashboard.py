"""Benchmark: the dashboard under load. Consumption rate and key-press latency.

Fills a topic on an embedded broker, then runs the real app (`App.run_test`, headless
terminal 120x40) with the real consumer worker reading that backlog as fast as it can
(work_ms=0). Meanwhile it presses `?` and measures the time until the help screen is
mounted and laid out, then `escape`, every 500 ms. Prints the consumption rate and key latency
percentiles. Usage: python scripts/bench_dashboard.py [--count 500000] [--customers 10000]
[--changelog on|off]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from textual import events

from balance_tui.config import load_settings
from balance_tui.core.traffic import TrafficGenerator
from balance_tui.kafka.admin import ensure_topic
from balance_tui.kafka.brokers.tansu import TansuBroker
from balance_tui.kafka.producer import produce
from balance_tui.kafka.worker import ConsumerWorker, tune_garbage_collector
from balance_tui.ui.app import BalanceApp
from balance_tui.ui.screens.help import HelpScreen


async def until(condition, timeout: float = 60.0, step: float = 0.0005) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit("benchmark condition not met in time")
        await asyncio.sleep(step)


async def run_dashboard(settings, count: int) -> tuple[float, list[float], int]:
    worker = ConsumerWorker(settings)
    app = BalanceApp(settings, worker, crash=lambda: None)
    latencies: list[float] = []
    async with app.run_test(size=(120, 40)):
        await until(lambda: worker.tracker.assignment and not worker.restoring)
        started, already = time.perf_counter(), worker.consumed
        while worker.consumed < count:
            # A key event straight into the app's queue, as the terminal driver posts it.
            # (Pilot.press waits for the process to go idle, which it never does under load.)
            pressed = time.perf_counter()
            app.post_message(events.Key("question_mark", "?"))
            await until(lambda: isinstance(app.screen, HelpScreen) and app.screen.is_mounted
                        and app.screen.size.height > 0)
            latencies.append((time.perf_counter() - pressed) * 1000)
            app.post_message(events.Key("escape", None))
            await until(lambda: not isinstance(app.screen, HelpScreen))
            await asyncio.sleep(0.5)
        elapsed = time.perf_counter() - started
        rate = (count - already) / elapsed
        rows = len(app.balances.table.rows) if hasattr(app.balances.table, "rows") else -1
        worker.stop("bench")
        await until(lambda: app.worker_stopped is not None, timeout=60)
    return rate, latencies, rows


def main() -> int:
    tune_garbage_collector()  # as `balance-tui` itself does
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--changelog", choices=["on", "off"], default="off")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    with TansuBroker(log_path=workdir / "tansu.log") as broker:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        base = {"bootstrap_servers": broker.bootstrap, "topic": topic, "work_ms": 0, "strategy": "range",
                "session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "changelog": args.changelog,
                "group": f"bench-{uuid.uuid4().hex[:8]}", "session_log": str(workdir / "dashboard.jsonl")}
        settings = load_settings(base)
        ensure_topic(settings.client_config(), topic, 6)
        produce(settings, TrafficGenerator(customers=args.customers, seed=7), rate=0, count=args.count,
                duration=None)
        print(f"filled {topic}: {args.count:,} transactions, {args.customers:,} customers", file=sys.stderr)
        rate, latencies, _ = asyncio.run(run_dashboard(settings, args.count))
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    print(f"| dashboard, work_ms=0, changelog {args.changelog} | {args.count:,} tx, {args.customers:,} customers | "
          f"{rate:,.0f} tx/s | key → help screen: p50 {statistics.median(latencies):.1f} ms, "
          f"p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms ({len(latencies)} presses) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

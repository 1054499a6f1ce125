"""Benchmark: headless consumption with work_ms=0 (the worker alone, no UI).

Fills a fresh topic on an embedded broker, then lets a fresh consumer group read it
from the beginning and reports transactions per second (parse + ledger + bookkeeping).
Usage: python scripts/bench_consume.py [--count 500000] [--customers 10000] [--runs 3] [--changelog on|off]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from balance_tui.config import load_settings
from balance_tui.core.traffic import TrafficGenerator
from balance_tui.kafka.admin import ensure_topic
from balance_tui.kafka.brokers.tansu import TansuBroker
from balance_tui.kafka.producer import produce
from balance_tui.kafka.worker import ConsumerWorker, tune_garbage_collector
from balance_tui.messages import PartitionsAssigned


def consume_rate(settings, count: int) -> float:
    worker = ConsumerWorker(settings, publish_balances=False)  # as in --headless
    assigned = threading.Event()
    worker.start(lambda message: assigned.set() if isinstance(message, PartitionsAssigned) else None)
    if not assigned.wait(60):
        raise SystemExit("no assignment within 60 s")
    started, already = time.perf_counter(), worker.consumed
    deadline = started + 600
    while worker.consumed < count:
        if time.perf_counter() > deadline:
            raise SystemExit(f"only {worker.consumed} of {count} consumed in 600 s")
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    worker.stop("bench")
    worker.join(60)
    return (count - already) / elapsed


def main() -> int:
    tune_garbage_collector()  # as `balance-tui` itself does
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--changelog", choices=["on", "off"], default="on",
                        help="write the balance changelog while consuming (default on)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-consume-"))
    with TansuBroker(log_path=workdir / "tansu.log") as broker:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        base = {"bootstrap_servers": broker.bootstrap, "topic": topic, "work_ms": 0,
                "session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "strategy": "range",
                "changelog": args.changelog}
        settings = load_settings(base)
        ensure_topic(settings.client_config(), topic, 6)
        report = produce(settings, TrafficGenerator(customers=args.customers, seed=7), rate=0,
                         count=args.count, duration=None)
        print(f"filled {topic}: {report.delivered:,} transactions, {args.customers:,} customers", file=sys.stderr)
        rates = []
        for run in range(args.runs):
            settings = load_settings({**base, "group": f"bench-{uuid.uuid4().hex[:8]}",
                                      "session_log": str(workdir / f"run{run}.jsonl")})
            rate = consume_rate(settings, args.count)
            rates.append(rate)
            print(f"run {run + 1}: {rate:,.0f} tx/s", file=sys.stderr)
    print(f"| headless consume, work_ms=0, changelog {args.changelog} | {args.count:,} tx, {args.customers:,} customers | "
          f"best {max(rates):,.0f} tx/s | median {statistics.median(rates):,.0f} tx/s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

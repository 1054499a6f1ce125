"""Benchmark: headless consumption with work_ms=0 (the worker alone, no UI).

Fills a fresh topic on an embedded broker, then lets a fresh consumer group read it
from the beginning and reports transactions per second (parse + ledger + bookkeeping).
Usage: python scripts/bench_consume.py [--count 500000] [--customers 10000] [--runs 3] [--changelog on|off]
       [--api off,on,scraped]

--api on: the worker also publishes balances and feeds the HTTP API's store, as with --http-port;
--api scraped: the same, with a client fetching /api/Balance/balances and /metrics 10 times a second.
Several modes (comma-separated) take turns within each run, so a busy machine slows them alike.
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


def consume_rate(settings, count: int, api: str = "off") -> float:
    worker = ConsumerWorker(settings, publish_balances=api != "off")  # as in --headless (with --http-port)
    assigned = threading.Event()
    server, scraping = None, threading.Event()
    sink = lambda message: assigned.set() if isinstance(message, PartitionsAssigned) else None  # noqa: E731
    if api != "off":
        from balance_tui.api.server import start_api
        from balance_tui.api.store import ApiStore
        from balance_tui.api.tee import TeeWorker

        server = start_api("127.0.0.1", 0, ApiStore(worker.consumer_id, settings.group, settings.topic,
                                                    acknowledges_balances=True), quiet=True)
        worker = TeeWorker(worker, server.store)
        if api == "scraped":
            threading.Thread(target=_scrape, args=(server.url, scraping), daemon=True).start()
    worker.start(sink)
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
    scraping.set()
    if server is not None:
        server.stop()
    return (count - already) / elapsed


def _scrape(url: str, done: threading.Event) -> None:
    import httpx

    with httpx.Client(base_url=url, timeout=10) as client:
        while not done.wait(0.1):
            client.get("/api/Balance/balances")
            client.get("/metrics")


def main() -> int:
    tune_garbage_collector()  # as `balance-tui` itself does
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--changelog", choices=["on", "off"], default="on",
                        help="write the balance changelog while consuming (default on)")
    parser.add_argument("--api", default="off",
                        help="off, on (feed the HTTP API as --http-port does), scraped (and poll it 10 times a "
                             "second), or several, comma-separated (default off)")
    args = parser.parse_args()
    modes = args.api.split(",")
    if not set(modes) <= {"off", "on", "scraped"}:
        raise SystemExit(f"--api: {args.api!r} is not off, on, scraped or a list of them")
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
        rates: dict[str, list[float]] = {mode: [] for mode in modes}
        for run in range(args.runs):
            for mode in modes:
                settings = load_settings({**base, "group": f"bench-{uuid.uuid4().hex[:8]}",
                                          "session_log": str(workdir / f"run{run}-{mode}.jsonl")})
                rate = consume_rate(settings, args.count, mode)
                rates[mode].append(rate)
                print(f"run {run + 1}, API {mode}: {rate:,.0f} tx/s", file=sys.stderr)
    for mode, found in rates.items():
        api = "" if mode == "off" else f", API {mode}"
        print(f"| headless consume, work_ms=0, changelog {args.changelog}{api} | {args.count:,} tx, "
              f"{args.customers:,} customers | best {max(found):,.0f} tx/s | median {statistics.median(found):,.0f} tx/s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

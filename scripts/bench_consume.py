"""Benchmark: headless consumption against the client's own limit, with the changelog on and off.

Fills one fresh topic on an embedded broker, then, in each run and in turn on that same topic:
- `bare`: a loop that only does librdkafka `consume()` and one `json.loads` per message (the limit);
- `off`: `balance-tui --headless --work-ms 0 --changelog off` (parse, ledger, bookkeeping);
- `on`: the same with the changelog (the default: record cache, transactional flushes, offsets in them);
each reading everything from the beginning in a new group (every other run takes the modes in reverse
order: a broker holding more groups and changelogs reads a little slower). It prints each mode's rate (best and
median over the runs), the broker's CPU while it ran (CPU seconds per second: 1.0 is one core),
for the worker modes the worker thread's own CPU share and its CPU time per transaction while
the clock ran (where a mode's cost goes: more work in the thread, or the thread kept waiting),
and the ratios the changelog is judged by (docs/performance.md).

Usage: python scripts/bench_consume.py [--count 500000] [--customers 10000] [--runs 3] [--modes bare,off,on]
       [--api off,on,scraped] [--engine tansu|kafka]

--api on: the worker also publishes balances and feeds the HTTP API's store, as with --http-port;
--api scraped: the same, with a client fetching /api/Balance/balances and /metrics 10 times a second
(with the changelog as `--changelog` says, default on).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from balance_tui.config import Settings, load_settings
from balance_tui.core.traffic import TrafficGenerator
from balance_tui.kafka.admin import ensure_topic
from balance_tui.kafka.brokers import choose_engine, make_broker
from balance_tui.kafka.producer import produce
from balance_tui.kafka.worker import ConsumerWorker, tune_garbage_collector
from balance_tui.messages import PartitionsAssigned

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str, thread: int | None = None) -> float:
    """User + system CPU time so far of a process (`"self"` for this one; its threads included), or of
    one of its threads (`thread`, the thread's native id)."""
    stat = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class WorkerCpu:
    """The worker thread's CPU while the clock ran: its share of one core, and per transaction."""

    share: float
    per_transaction_us: float


def bare_rate(settings, count: int) -> float:
    """consume() + json.loads and nothing else, with the worker's fetch settings."""
    consumer = Consumer({**settings.client_config(), "group.id": f"bare-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "queued.min.messages": 1_000_000})
    consumer.assign([TopicPartition(settings.topic, p, OFFSET_BEGINNING) for p in range(6)])
    loads, seen = json.loads, 0
    first = consumer.consume(1, 30)  # the clock starts with the first message, as for the worker
    if not first:
        raise SystemExit("the bare loop got nothing in 30 s")
    started = time.perf_counter()
    while seen < count - 1:
        for message in consumer.consume(1000, 1.0):
            if message.error() is None:
                loads(message.value())
                seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return seen / elapsed


def worker_rate(settings, count: int, api: str = "off", cpu: list[WorkerCpu] | None = None) -> float:
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
    # Restores first (an empty changelog, each partition's writer fenced): the clock starts once every
    # partition is consumed, so partitions still fencing do not count against the changelog's rate.
    while worker.consumed == 0 or (worker.state.changelog is not None and worker.state.changelog.restoring):
        time.sleep(0.001)
    thread = worker.native_id
    assert thread is not None
    started, already, thread_started = time.perf_counter(), worker.consumed, cpu_seconds("self", thread)
    deadline = started + 600
    while worker.consumed < count:
        if time.perf_counter() > deadline:
            raise SystemExit(f"only {worker.consumed} of {count} consumed in 600 s")
        time.sleep(0.005)
    elapsed, thread_busy = time.perf_counter() - started, cpu_seconds("self", thread) - thread_started
    if cpu is not None:
        cpu.append(WorkerCpu(thread_busy / elapsed, thread_busy / (count - already) * 1e6))
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


def measured(broker_pid: int, run: Callable[[], float]) -> tuple[float, float]:
    """(rate, broker CPU seconds per wall second) of one run."""
    cpu, wall = cpu_seconds(broker_pid), time.perf_counter()
    rate = run()
    return rate, (cpu_seconds(broker_pid) - cpu) / (time.perf_counter() - wall)


def main() -> int:
    tune_garbage_collector()  # as `balance-tui` itself does
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="bare,off,on", help="bare, off, on, comma-separated (default all)")
    parser.add_argument("--changelog", choices=["on", "off"], default="on", help="for --api modes (default on)")
    parser.add_argument("--api", default=None,
                        help="off, on (feed the HTTP API as --http-port does), scraped (and poll it 10 times a "
                             "second), or several, comma-separated: measures these instead of --modes")
    parser.add_argument("--engine", choices=["tansu", "kafka"], default="tansu")
    args = parser.parse_args()
    modes = [f"api-{mode}" for mode in args.api.split(",")] if args.api else args.modes.split(",")
    if not set(modes) <= {"bare", "off", "on", "api-off", "api-on", "api-scraped"}:
        raise SystemExit(f"unknown mode in {modes}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-consume-"))
    choice = choose_engine(args.engine, Settings().kafka_version)
    options = {"data_dir": workdir / "data"} if choice.engine == "kafka" else {}
    with make_broker(choice, log_path=workdir / "broker.log", **options) as broker:
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        base = {"bootstrap_servers": broker.bootstrap, "topic": topic, "work_ms": 0,
                "session_timeout_ms": 6000, "heartbeat_interval_ms": 500, "strategy": "range"}
        settings = load_settings(base)
        ensure_topic(settings.client_config(), topic, 6)
        report = produce(settings, TrafficGenerator(customers=args.customers, seed=7), rate=0,
                         count=args.count, duration=None)
        print(f"filled {topic} on {args.engine}: {report.delivered:,} transactions, {args.customers:,} customers",
              file=sys.stderr)
        found: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
        worker_cpu: dict[str, list[WorkerCpu]] = {mode: [] for mode in modes}
        for run in range(args.runs):
            # Every run leaves more on the broker (groups, changelog topics), and the later modes of a run
            # were measured slower: every other run takes the modes in reverse, so none is always last.
            for mode in modes if run % 2 == 0 else modes[::-1]:
                changelog = mode == "on" or (mode.startswith("api-") and args.changelog == "on")
                settings = load_settings({**base, "changelog": changelog, "group": f"bench-{uuid.uuid4().hex[:8]}",
                                          "session_log": str(workdir / f"run{run}-{mode}.jsonl")})
                if mode == "bare":
                    result = measured(broker.pid, partial(bare_rate, settings, args.count))
                else:
                    api = mode.removeprefix("api-") if mode.startswith("api-") else "off"
                    result = measured(broker.pid, partial(worker_rate, settings, args.count, api, worker_cpu[mode]))
                found[mode].append(result)
                thread = (f", worker thread {worker_cpu[mode][-1].share:.2f} of a core, "
                          f"{worker_cpu[mode][-1].per_transaction_us:.2f} µs CPU per tx") if mode != "bare" else ""
                print(f"run {run + 1}, {mode}: {result[0]:,.0f} tx/s, broker CPU {result[1]:.2f}{thread}",
                      file=sys.stderr)
    names = {"bare": "bare consume() + json.loads", "off": "headless, changelog off",
             "on": "headless, changelog on", "api-off": "headless, API off", "api-on": "headless, API on",
             "api-scraped": "headless, API on, scraped 10/s"}
    print(f"| mode ({args.count:,} tx, {args.customers:,} customers, {args.engine}) | best | median | "
          "broker CPU (median) | worker thread: share of a core, µs CPU per tx (medians) |")
    print("|---|---|---|---|---|")
    best = {}
    for mode, results in found.items():
        rates = [rate for rate, _ in results]
        best[mode] = max(rates)
        thread = (f"{statistics.median(c.share for c in worker_cpu[mode]):.2f}, "
                  f"{statistics.median(c.per_transaction_us for c in worker_cpu[mode]):.2f} µs") \
            if worker_cpu[mode] else "-"
        print(f"| {names[mode]} | {max(rates):,.0f} tx/s | {statistics.median(rates):,.0f} tx/s | "
              f"{statistics.median(cpu for _, cpu in results):.2f} | {thread} |")
    if {"bare", "off", "on"} <= set(best):
        print(f"\nchangelog on / bare loop: {best['on'] / best['bare']:.2f} (goal ≥ 0.5); "
              f"changelog on / changelog off: {best['on'] / best['off']:.2f} (goal ≥ 0.9); "
              f"changelog off / bare loop: {best['off'] / best['bare']:.2f}  (best of each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

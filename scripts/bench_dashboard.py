"""Benchmark: the dashboard under load, at bank scale. Consumption rate, key and filter latency, memory.

For each customer count in `--customers` (default 10,000, 100,000 and 1,000,000) it fills a new
topic on one embedded broker (`balance-tui produce --rate 0` in a child process; at least
`--count` transactions and 3 per customer, so that about 95% of the customers appear), then
runs the real app (`App.run_test`, headless terminal 120x40) with the real consumer worker
reading that backlog as fast as it can (work_ms=0). Meanwhile it presses `?` every 500 ms and
measures the time until the help screen is mounted, laid out and drawn, then `escape`. Once the
backlog is read it types customer ids into the `/` filter, one key at a time, and measures each
key until the screen after it is drawn. It reads the broker's and its own CPU time
(utime + stime in /proc/<pid>/stat) before and after consuming, and its resident memory.

Usage: python scripts/bench_dashboard.py [--customers 10000,100000,1000000] [--count 500000]
[--changelog on|off] [--press-every 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from textual import events

from balance_tui.config import Settings, load_settings
from balance_tui.kafka.admin import ensure_topic
from balance_tui.kafka.brokers.tansu import TansuBroker
from balance_tui.kafka.worker import ConsumerWorker, tune_garbage_collector
from balance_tui.ui.app import BalanceApp
from balance_tui.ui.screens.help import HelpScreen

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_consume import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
TRANSACTIONS_PER_CUSTOMER = 3
#: Typed into the filter, one key at a time: from "c" (every customer) to one customer.
FILTER_SAMPLES = 3


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def spread(values: list[float]) -> str:
    if not values:
        return "–"
    return (f"p50 {statistics.median(values):.1f} / p95 {percentile(values, 0.95):.1f} / "
            f"max {max(values):.1f} ms ({len(values)})")


@dataclass
class Run:
    customers: int
    count: int
    rate: float = 0.0
    keys_ms: list[float] = field(default_factory=list)
    filter_ms: list[float] = field(default_factory=list)
    rows: int = 0
    ledger_customers: int = 0
    memory_bytes: int = 0
    broker_share: float = 0.0
    own_share: float = 0.0
    #: The cyclic garbage collector's collections while consuming, by generation (seconds each).
    collections: dict[int, list[float]] = field(default_factory=dict)
    #: Rows in the table at each `?` press, beside `keys_ms`.
    rows_at_press: list[int] = field(default_factory=list)
    #: How long the UI thread spent in each slice of a batch of balances and in each frame's `draw`, ms.
    batch_ms: list[float] = field(default_factory=list)
    draw_ms: list[float] = field(default_factory=list)
    #: (start, end) perf_counter times of each slice, frame and collection, and of each `?` pressed,
    #: answered (the help action starts) and drawn: where the slow keys' time went.
    batch_spans: list[tuple[float, float]] = field(default_factory=list)
    draw_spans: list[tuple[float, float]] = field(default_factory=list)
    collection_spans: list[tuple[float, float]] = field(default_factory=list)
    key_spans: list[tuple[float, float]] = field(default_factory=list)
    actions: list[float] = field(default_factory=list)


def timed(target: object, name: str, into: list[float], spans: list[tuple[float, float]] | None = None) -> None:
    """Wrap the instance's method `name` to record its duration in ms (the benchmark's own probe)."""
    method = getattr(target, name)

    def wrapper(*args: object) -> object:
        started = time.perf_counter()
        try:
            return method(*args)
        finally:
            ended = time.perf_counter()
            into.append((ended - started) * 1000)
            if spans is not None:
                spans.append((started, ended))

    setattr(target, name, wrapper)


class CollectionTimer:
    """Times the garbage collector's collections, per generation, through `gc.callbacks`."""

    def __init__(self) -> None:
        self.durations: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.spans: list[tuple[float, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            ended = time.perf_counter()
            self.durations[info["generation"]].append(ended - self._started)
            self.spans.append((self._started, ended))

    def start(self) -> CollectionTimer:
        gc.callbacks.append(self)
        return self

    def stop(self) -> dict[int, list[float]]:
        gc.callbacks.remove(self)
        return self.durations


async def until(condition, timeout: float = 120.0, step: float = 0.0005) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit("benchmark condition not met in time")
        await asyncio.sleep(step)


async def drawn(app: BalanceApp) -> None:
    """Until the screen after everything posted so far has been refreshed."""
    done = asyncio.Event()
    app.call_after_refresh(done.set)
    await asyncio.wait_for(done.wait(), 60)


def key_event(character: str) -> events.Key:
    return events.Key({"-": "minus", "/": "slash"}.get(character, character), character)


async def measure_filter(app: BalanceApp, needles: list[str]) -> list[float]:
    """Each key typed into the filter, until the table shows its result and the screen is drawn."""
    table = app.balances.table
    latencies = []
    for needle in needles:
        app.post_message(key_event("/"))
        await until(lambda: app.focused is app.balances.filter_input)
        for typed in range(1, len(needle) + 1):
            pressed, expected = time.perf_counter(), needle[:typed].casefold()
            app.post_message(key_event(needle[typed - 1]))
            await until(lambda expected=expected: table.filter_text == expected)
            await drawn(app)
            latencies.append((time.perf_counter() - pressed) * 1000)
        app.post_message(events.Key("escape", None))
        await until(lambda: table.filter_text == "" and app.focused is table)
    return latencies


async def run_dashboard(settings: Settings, run: Run, broker_pid: int, press_every: float) -> None:
    worker = ConsumerWorker(settings)
    app = BalanceApp(settings, worker, crash=lambda: None)
    timed(app, "draw", run.draw_ms, run.draw_spans)  # before mount, where the refresh timer takes it
    help_action = app.action_help

    def answered() -> None:
        run.actions.append(time.perf_counter())
        help_action()

    app.action_help = answered  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)):
        timed(app.balances.table, "_take_some", run.batch_ms, run.batch_spans)  # one slice of a batch

        await until(lambda: worker.tracker.assignment and not worker.restoring)
        memory_before = resident_bytes()
        broker_before, own_before = cpu_seconds(broker_pid), cpu_seconds("self")
        started, already = time.perf_counter(), worker.consumed
        collections = CollectionTimer().start()
        while worker.consumed < run.count:
            # A key event straight into the app's queue, as the terminal driver posts it.
            # (Pilot.press waits for the process to go idle, which it never does under load.)
            pressed = time.perf_counter()
            app.post_message(events.Key("question_mark", "?"))
            await until(lambda: isinstance(app.screen, HelpScreen) and app.screen.is_mounted
                        and app.screen.size.height > 0)
            await drawn(app)  # on screen: a help screen kept from the last press is mounted at once
            drawn_at = time.perf_counter()
            run.keys_ms.append((drawn_at - pressed) * 1000)
            run.key_spans.append((pressed, drawn_at))
            run.rows_at_press.append(len(app.balances.table.book))
            app.post_message(events.Key("escape", None))
            await until(lambda: not isinstance(app.screen, HelpScreen))
            await asyncio.sleep(press_every)  # the pace of the presses, not synchronisation
        elapsed = time.perf_counter() - started
        run.collections = collections.stop()
        run.collection_spans = collections.spans
        run.rate = (run.count - already) / elapsed
        run.broker_share = (cpu_seconds(broker_pid) - broker_before) / elapsed
        run.own_share = (cpu_seconds("self") - own_before) / elapsed
        table = app.balances.table
        await until(lambda: worker.balances.dirty == set() and not table._dirty, timeout=60)
        run.rows = len(table.book)
        run.ledger_customers = len(worker.state.ledger.customers)
        run.memory_bytes = resident_bytes() - memory_before
        # Customers the generator made: CUST-001 ... (the middle one, and two more).
        picks = [run.customers // 2 + 1, run.customers // 3 + 1, run.customers - 1]
        run.filter_ms = await measure_filter(app, [f"CUST-{n:03d}" for n in picks[:FILTER_SAMPLES]])
        worker.stop("bench")
        await until(lambda: app.worker_stopped is not None, timeout=300)


def fill(broker: TansuBroker, settings: Settings, customers: int, count: int) -> None:
    """`balance-tui produce` in its own process, with this checkout's code."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "balance_tui", "produce", "--bootstrap-servers", broker.bootstrap,
               "--topic", settings.topic, "--rate", "0", "--count", str(count), "--customers", str(customers),
               "--seed", "7"]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=environment, cwd=ROOT, stdout=subprocess.DEVNULL)
    print(f"filled {settings.topic}: {count:,} transactions, {customers:,} customers in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)


def main() -> int:
    tune_garbage_collector()  # as `balance-tui` itself does
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", default="10000,100000,1000000",
                        help="comma-separated customer counts, one run each (default: %(default)s)")
    parser.add_argument("--count", type=int, default=500_000,
                        help=f"transactions per run, at least {TRANSACTIONS_PER_CUSTOMER} per customer")
    parser.add_argument("--changelog", choices=["on", "off"], default="off")
    parser.add_argument("--press-every", type=float, default=0.5, help="seconds between two `?` presses")
    parser.add_argument("--gc-young", type=int, default=None,
                        help="the young generation's threshold instead of the app's (an experiment)")
    args = parser.parse_args()
    if args.gc_young is not None:
        gc.set_threshold(args.gc_young, *gc.get_threshold()[1:])
    counts = [int(value.replace("_", "").replace(",", "")) for value in args.customers.split(",") if value]
    workdir = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    runs = []
    with TansuBroker(log_path=workdir / "tansu.log") as broker:
        assert broker.pid is not None
        for customers in counts:
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            base = {"bootstrap_servers": broker.bootstrap, "topic": topic, "work_ms": 0, "strategy": "range",
                    "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "changelog": args.changelog,
                    "group": f"bench-{uuid.uuid4().hex[:8]}", "session_log": str(workdir / f"{topic}.jsonl")}
            settings = load_settings(base)
            ensure_topic(settings.client_config(), topic, 6)
            run = Run(customers, max(args.count, TRANSACTIONS_PER_CUSTOMER * customers))
            fill(broker, settings, customers, run.count)
            asyncio.run(run_dashboard(settings, run, broker.pid, args.press_every))
            runs.append(run)
            print(row_of(run, args.changelog), flush=True)
            print(details_of(run), flush=True)
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)")
    print(HEADER)
    for run in runs:
        print(row_of(run, args.changelog))
    return 0


HEADER = ("| customers | changelog | tx | rows | consumed tx/s | key → help screen | filter key → drawn "
          "| memory / customer | broker CPU | dashboard CPU | full GCs |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def details_of(run: Run) -> str:
    """Where a key's time may go: the UI thread's own blocks, and the presses once the table is full."""
    full = [ms for ms, rows in zip(run.keys_ms, run.rows_at_press, strict=False) if rows >= 0.9 * run.rows]
    slowest = sorted(zip(run.keys_ms, run.rows_at_press, strict=False), reverse=True)[:5]
    return (f"  {run.customers:,} customers: key with the table at >= 90% of its rows: {spread(full)}\n"
            f"  slowest keys (ms, rows then): {', '.join(f'{ms:.0f} ({rows:,})' for ms, rows in slowest)}\n"
            f"  UI thread per slice of a batch of balances: {spread(run.batch_ms)}; "
            f"per frame (draw): {spread(run.draw_ms)}\n"
            f"  the slowest tenth of the keys: {slow_key_breakdown(run)}\n"
            f"  garbage collections (both threads): " + "; ".join(
                f"generation {generation}: {len(times)}, {sum(times) * 1000:.0f} ms in all, longest "
                f"{max(times, default=0) * 1000:.0f} ms" for generation, times in sorted(run.collections.items())))


def overlap(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of `spans` inside start..end."""
    return sum(max(0.0, min(end, stop) - max(start, begin)) for begin, stop in spans)


def slow_key_breakdown(run: Run) -> str:
    """The slowest tenth of the keys, on average: queued until the help action ran, then in collections,
    in slices of batches, in frames of the dashboard, and the rest (the help screen's own work, the
    worker holding the interpreter). A collection during a slice or a frame counts in both."""
    keys = sorted(run.key_spans, key=lambda span: span[1] - span[0], reverse=True)
    slow = keys[:max(1, len(keys) // 10)]
    if not slow or not run.actions:
        return "–"
    totals = dict.fromkeys(("queued", "collections", "slices", "frames", "rest"), 0.0)
    for start, end in slow:
        action = next((at for at in run.actions if start <= at <= end), end)
        parts = {"collections": overlap(run.collection_spans, start, end),
                 "slices": overlap(run.batch_spans, start, end), "frames": overlap(run.draw_spans, start, end)}
        totals["queued"] += action - start
        for name, seconds in parts.items():
            totals[name] += seconds
        totals["rest"] += (end - start) - sum(parts.values())
    mean = {name: seconds * 1000 / len(slow) for name, seconds in totals.items()}
    return (f"{sum((end - start) for start, end in slow) * 1000 / len(slow):.0f} ms on average "
            f"({len(slow)} keys): queued until the action {mean['queued']:.0f} ms; within the whole key: "
            f"collections {mean['collections']:.0f}, batch slices {mean['slices']:.0f}, dashboard frames "
            f"{mean['frames']:.0f}, the rest {mean['rest']:.0f} ms")


def row_of(run: Run, changelog: str) -> str:
    per_customer = run.memory_bytes / max(1, run.ledger_customers)
    pauses = run.collections.get(2, [])
    gcs = f"{len(pauses)}, longest {max(pauses) * 1000:.0f} ms" if pauses else "none"
    return (f"| {run.customers:,} | {changelog} | {run.count:,} | {run.rows:,} | {run.rate:,.0f} | "
            f"{spread(run.keys_ms)} | {spread(run.filter_ms)} | {per_customer:,.0f} B | "
            f"{run.broker_share:.0%} of a core | {run.own_share:.0%} of a core | {gcs} |")


if __name__ == "__main__":
    raise SystemExit(main())

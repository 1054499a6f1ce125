"""Benchmark: `parse_transaction` per message, the msgspec fast path against the pydantic reference.

No broker: the messages are generated (bytes, as the consumer gets them) and parsed in a loop,
the objects released as in the worker. Each path runs on the same messages, rounds interleaved;
it prints the best and the median of the rounds in µs per message, and the speed-up of each.
Usage: python scripts/bench_parse.py [--count 20000] [--rounds 9] [--baseline FILE]
(--baseline: a transaction.py of another version, e.g. `git show 2b96fd8:balance_tui/core/transaction.py`,
whose parse_transaction is timed too.)
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from balance_tui.core.traffic import TrafficGenerator
from balance_tui.core.transaction import Transaction, parse_transaction, parse_transaction_reference

Parser = Callable[[bytes], object]


def message_shapes(count: int) -> dict[str, list[bytes]]:
    """The generator's messages, and the same with the timestamps other producers write.

    The generator stamps a batch with one clock reading and the lab writes whole seconds, so in
    the first four shapes every message has the timestamp of the one before (what
    `parse_transaction` remembers); in the "each different" shapes none has.
    """
    generated = [value for _, value in TrafficGenerator(seed=1, customers=50).next_batch(count)]
    stamp = re.compile(rb'"timestamp":"[^"]*"')

    def with_timestamp(text: bytes) -> list[bytes]:
        return [stamp.sub(b'"timestamp":"' + text + b'"', value) for value in generated]

    def each_timestamp_different(digits: int, zone: bytes) -> list[bytes]:
        start = datetime(2026, 2, 8, 22, tzinfo=UTC)
        texts = [(start + timedelta(microseconds=index * 1001)).strftime("%Y-%m-%dT%H:%M:%S.%f").encode()
                 for index in range(len(generated))]
        return [stamp.sub(b'"timestamp":"' + text[: 20 + digits] + b"7" * (digits - 6) + zone + b'"', value)
                for text, value in zip(texts, generated, strict=True)]

    return {
        "generator (ms, Z)": generated,
        "whole seconds, Z (the lab's)": with_timestamp(b"2026-02-08T22:00:00Z"),
        ".NET (7 digits, Z)": with_timestamp(b"2026-02-08T22:00:00.1234567Z"),
        "Python (us, +00:00)": with_timestamp(b"2026-02-08T22:00:00.123456+00:00"),
        "each different (ms, Z)": each_timestamp_different(3, b"Z"),
        "each different (.NET)": each_timestamp_different(7, b"Z"),
        "each different (Python)": each_timestamp_different(6, b"+00:00"),
    }


def seconds_per_message(parse: Parser, messages: list[bytes]) -> float:
    started = time.perf_counter()
    for message in messages:
        parse(message)
    return (time.perf_counter() - started) / len(messages)


def load_baseline(path: str) -> Parser:
    spec = importlib.util.spec_from_file_location("baseline_transaction", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module.parse_transaction


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000, help="messages per shape")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--baseline", metavar="FILE", help="also time parse_transaction from this file")
    args = parser.parse_args()

    fast_path = "fast (msgspec)"
    paths: dict[str, Parser] = {"reference (pydantic)": parse_transaction_reference, fast_path: parse_transaction}
    if args.baseline:
        paths = {"baseline": load_baseline(args.baseline), **paths}
    shapes = message_shapes(args.count)
    for messages in shapes.values():  # the paths must agree before their speed means anything
        for message in messages[:500]:
            fast, reference = parse_transaction(message), parse_transaction_reference(message)
            assert isinstance(fast, Transaction) and fast == reference, (message, fast, reference)

    # As the worker runs: long-lived objects frozen, a large young generation.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    print(f"parse: {args.count:,} messages per shape, {args.rounds} rounds interleaved, µs per message, "
          f"best / median (Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at start)")
    # With --baseline the old code is what the speed-up compares with; without, the reference model
    # (the old hot path's pydantic model plus the checks added since, so slower than the old code).
    compared_with = "baseline" if args.baseline else "reference (pydantic)"
    print(f"{'shape':32s}" + "".join(f"{name:>24s}" for name in paths)
          + f"{'fast vs ' + compared_with.split()[0] + ', best / median':>33s}")
    for shape, messages in shapes.items():
        timings: dict[str, list[float]] = {name: [] for name in paths}
        for parse in paths.values():  # warm-up, untimed: first calls fill pydantic's and msgspec's caches
            seconds_per_message(parse, messages)
        for _ in range(args.rounds):
            for name, parse in paths.items():
                timings[name].append(seconds_per_message(parse, messages) * 1e6)
        best = {name: min(values) for name, values in timings.items()}
        cells = "".join(f"{best[name]:>13.2f} / {statistics.median(values):<8.2f}" for name, values in timings.items())
        median = {name: statistics.median(values) for name, values in timings.items()}
        ratios = f"{best[compared_with] / best[fast_path]:.1f}x / {median[compared_with] / median[fast_path]:.1f}x"
        print(f"{shape:32s}{cells}{ratios:>33s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

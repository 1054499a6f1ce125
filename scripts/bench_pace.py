"""Benchmark the throttled generator's CPU: `balance-tui produce --rate N` for the lab's rates.

Starts its own Tansu broker on a free port, runs the real CLI (`python -m balance_tui
produce`) once per rate for `--warmup` + `--seconds` seconds, and reads the producer
process's CPU time (user + system, librdkafka's threads included) from /proc/<pid>/stat at
the end of the warm-up and `--seconds` later, so start-up (imports, producer id) is left
out. Prints the share of one core per rate and a markdown table row for docs/performance.md.
Linux only (/proc).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

from balance_tui.kafka.brokers.tansu import TansuBroker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_consume import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent


def one_rate(bootstrap: str, rate: float, warmup: float, seconds: float) -> tuple[float, str]:
    """(share of one core over the measured window, the command's summary)."""
    topic = f"bench-pace-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "balance_tui", "produce", "--bootstrap-servers", bootstrap,
               "--topic", topic, "--rate", f"{rate:g}", "--duration", f"{warmup + seconds + 2:g}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        time.sleep(warmup)  # a benchmark's measuring window, not synchronisation
        before, started = cpu_seconds(process.pid), time.monotonic()
        time.sleep(seconds)
        used, elapsed = cpu_seconds(process.pid) - before, time.monotonic() - started
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        sys.exit(f"produce --rate {rate:g} failed ({process.returncode}): {stderr.strip()}")
    summary = next((line for line in stderr.splitlines() if line.startswith("produced ")), stderr.strip())
    return used / elapsed, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,300,1000", help="comma-separated tx/s (default 100,300,1000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per rate (default 20)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds left out at the start (default 5)")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("bench_pace reads /proc: Linux only")

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
          file=sys.stderr)
    shares: list[str] = []
    with TansuBroker(port=0) as broker:
        for rate in (float(text) for text in args.rates.split(",")):
            share, summary = one_rate(broker.bootstrap, rate, args.warmup, args.seconds)
            print(f"--rate {rate:g}: {share:.1%} of one core over {args.seconds:g}s  ({summary})")
            shares.append(f"{rate:g} tx/s: {share:.1%}")
    print(f"| {date.today()} | `scripts/bench pace` ({args.seconds:g} s after {args.warmup:g} s warm-up) | "
          f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()} | "
          f"{', '.join(shares)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

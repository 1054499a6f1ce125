"""Benchmark: restoring partitions from the balance changelog.

Writes changelog records for N customers (R records each, as an uncompacted changelog
holds one record per applied transaction) over 6 partitions, then times
`ChangelogRestorer` reading all 6 partitions to their end, as a new owner does.
Usage: python scripts/bench_restore.py [--customers 10000] [--records-per-customer 1] [--partitions 6]
[--engine tansu|kafka] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from confluent_kafka import Producer

from balance_tui.config import Settings
from balance_tui.core.changelog import encode_state
from balance_tui.core.ledger import CustomerState
from balance_tui.kafka.admin import RDKAFKA_LOGGER, ensure_topic
from balance_tui.kafka.brokers import choose_engine, make_broker
from balance_tui.kafka.changelog import ChangelogRestorer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_consume import cpu_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--records-per-customer", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=6, help="spread the customers over this many (default 6)")
    parser.add_argument("--engine", choices=["tansu", "kafka"], default="tansu")
    parser.add_argument("--profile", action="store_true", help="cProfile the restore")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    choice = choose_engine(args.engine, Settings().kafka_version)
    options = {"data_dir": workdir / "data"} if choice.engine == "kafka" else {}
    with make_broker(choice, log_path=workdir / "broker.log", **options) as broker:
        config = {"bootstrap.servers": broker.bootstrap}
        topic = f"bench-{uuid.uuid4().hex[:8]}.balances-changelog"
        ensure_topic(config, topic, args.partitions)
        producer = Producer({**config, "linger.ms": 10, "batch.num.messages": 10_000,
                             "queue.buffering.max.messages": 2_000_000, "logger": RDKAFKA_LOGGER})
        now = datetime.now(UTC)
        offsets = [0] * args.partitions
        for round_ in range(args.records_per_customer):
            for number in range(args.customers):
                partition = number % args.partitions
                state = CustomerState(f"CUST-{number:06d}", {"EUR": Decimal(round_ * 100 + number).scaleb(-2)},
                                      round_ + 1, now, f"TX-{round_}-{number}", {f"FR76{number:010d}"},
                                      partition, offsets[partition])
                offsets[partition] += 1
                while True:
                    try:
                        producer.produce(topic, encode_state(state), state.customer_id, partition)
                        break
                    except BufferError:
                        producer.poll(0.05)
        assert producer.flush(60) == 0
        records = args.customers * args.records_per_customer
        restorer = ChangelogRestorer(config, topic, "bench")
        broker_cpu = cpu_seconds(broker.pid)
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        started = time.perf_counter()
        restorer.start(list(range(args.partitions)))
        done = []
        while len(done) < args.partitions:
            done.extend(restorer.step(50_000))
            if time.perf_counter() - started > 300:
                raise SystemExit("restore did not finish in 300 s")
        elapsed = time.perf_counter() - started
        if profile is not None:
            profile.disable()
            pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(12)
        broker_share = (cpu_seconds(broker.pid) - broker_cpu) / elapsed
        customers = sum(len(restore.states) for restore, _ in done)
        restorer.close()
    assert customers == args.customers, (customers, args.customers)
    print(f"restored {customers:,} customers from {records:,} records in {elapsed:.2f} s on {args.engine}",
          file=sys.stderr)
    print(f"| restore on {args.engine}, {args.records_per_customer} record(s) per customer | {customers:,} customers, "
          f"{records:,} records | {elapsed:.2f} s | {elapsed / customers * 100_000:.2f} s per 100,000 customers | "
          f"{records / elapsed:,.0f} records/s | broker CPU {broker_share:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

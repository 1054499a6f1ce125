"""Benchmark: restoring partitions from the balance changelog.

Writes changelog records for N customers (R records each, as an uncompacted changelog
holds one record per applied transaction) over 6 partitions, then times
`ChangelogRestorer` reading all 6 partitions to their end, as a new owner does.
Usage: python scripts/bench_restore.py [--customers 10000] [--records-per-customer 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from confluent_kafka import Producer

from balance_tui.core.changelog import encode_state
from balance_tui.core.ledger import CustomerState
from balance_tui.kafka.admin import ensure_topic
from balance_tui.kafka.brokers.tansu import TansuBroker
from balance_tui.kafka.changelog import ChangelogRestorer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--records-per-customer", type=int, default=1)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    with TansuBroker(log_path=workdir / "tansu.log") as broker:
        config = {"bootstrap.servers": broker.bootstrap}
        topic = f"bench-{uuid.uuid4().hex[:8]}.balances-changelog"
        ensure_topic(config, topic, 6)
        producer = Producer({**config, "linger.ms": 10, "batch.num.messages": 10_000,
                             "queue.buffering.max.messages": 2_000_000})
        now = datetime.now(timezone.utc)
        offsets = [0] * 6
        for round_ in range(args.records_per_customer):
            for number in range(args.customers):
                partition = number % 6
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
        started = time.perf_counter()
        restorer.start(list(range(6)))
        done = []
        while len(done) < 6:
            done.extend(restorer.step(50_000))
            if time.perf_counter() - started > 300:
                raise SystemExit("restore did not finish in 300 s")
        elapsed = time.perf_counter() - started
        customers = sum(len(restore.states) for restore, _ in done)
        restorer.close()
    assert customers == args.customers, (customers, args.customers)
    print(f"restored {customers:,} customers from {records:,} records in {elapsed:.2f} s", file=sys.stderr)
    print(f"| restore, {args.records_per_customer} record(s) per customer | {customers:,} customers, "
          f"{records:,} records | {elapsed:.2f} s | {elapsed / customers * 10_000:.2f} s per 10,000 customers | "
          f"{records / elapsed:,.0f} records/s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The producing loop behind `balance-tui produce`: rate control, delivery reports, status.

Keys are customer ids and the partitioner is librdkafka's `murmur2_random`, the
algorithm of the Java and kafka-python clients, so a customer's transactions land on
the same partition whichever client produced them (librdkafka's default, CRC32,
would disagree; see `core.traffic.murmur2_partition`).

Every message gets a delivery report through one producer-wide callback: delivered
messages are counted per partition, failures are counted and the first error kept.
Nothing is dropped silently: what is still queued when the final flush gives up is
counted as failed too.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from balance_tui.config import Settings
from balance_tui.core.traffic import TrafficGenerator
from balance_tui.kafka import error_reason
from balance_tui.kafka.admin import RDKAFKA_LOGGER, ensure_topic, wait_for_broker

#: Producer properties tuned for throughput; the user's `[librdkafka]` settings override them.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "partitioner": "murmur2_random",        # Java-compatible key hashing (see module docstring)
    # Retries must neither reorder a customer's transactions nor duplicate one (a balance
    # would count it twice). Costs ~15% at --rate 0 and ~0.5 s before the first delivery
    # (producer id); see docs/performance.md.
    "enable.idempotence": True,
    # Fill batches. The embedded broker's fetch cost grows with the number of record batches in
    # a partition (docs/broker.md): at the lab's 100 tx/s a 10 ms linger makes one-record batches
    # and saturates it within minutes. 200 ms keeps a partition to 5 batches a second; at --rate 0
    # batches fill (batch.num.messages) long before the linger matters.
    "linger.ms": 200,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "message.timeout.ms": 30_000,            # a dead broker shows up as failures after 30 s, not 5 min
    "compression.type": "none",              # CPU is the bottleneck on a 2-core laptop, not bandwidth
}

#: Messages generated per step when unthrottled: large enough to amortise the loop, small
#: enough that stop requests and status updates stay prompt (a step is ~5 ms).
UNTHROTTLED_STEP = 1000

#: Throttled: never more than this many seconds' worth of messages in one go (smoothness).
MAX_BURST_SECONDS = 0.05

#: Longest single wait, so Ctrl+C and `stop` are noticed quickly even at very low rates.
MAX_WAIT_SECONDS = 0.1


@dataclass
class ProduceReport:
    """What a produce run did so far (live, for the status line) or in total (at the end)."""

    sent: int = 0
    """Messages handed to the producer."""
    delivered: int = 0
    """Messages the broker acknowledged."""
    failed: int = 0
    """Messages that will never be delivered (delivery error, or still queued after the flush)."""
    first_error: str | None = None
    per_partition: dict[int, int] = field(default_factory=dict)
    """Delivered messages per partition."""
    seconds: float = 0.0
    """Time since the first message was produced (including the final flush at the end)."""

    @property
    def in_flight(self) -> int:
        """Messages sent but neither delivered nor failed yet."""
        return self.sent - self.delivered - self.failed

    @property
    def rate(self) -> float:
        """Delivered messages per second over the whole run."""
        return self.delivered / self.seconds if self.seconds > 0 else 0.0


class TokenBucket:
    """Rate control: `rate` tokens per second, at most `burst_seconds` worth saved up.

    So 100/s is one message every ~10 ms rather than 100 at the top of each second, and a
    stall (a slow poll, a suspended laptop) is not followed by a catch-up burst.
    """

    def __init__(self, rate: float, now: float, burst_seconds: float = MAX_BURST_SECONDS) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, rate * burst_seconds)
        self.tokens = 1.0  # the first message goes out at once
        self.updated = now

    def take(self, now: float) -> int:
        """Refill for the time elapsed since the last call, then take every whole token."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        whole = int(self.tokens)
        self.tokens -= whole
        return whole

    def wait(self) -> float:
        """Seconds until the next whole token (0 if one is there)."""
        return max(0.0, (1.0 - self.tokens) / self.rate)


class _DeliveryTally:
    """Collects delivery reports; called from `poll()`/`flush()` on the producing thread."""

    __slots__ = ("per_partition", "failed", "first_error", "fatal")

    def __init__(self) -> None:
        self.per_partition: defaultdict[int, int] = defaultdict(int)
        self.failed = 0
        self.first_error: str | None = None
        self.fatal: str | None = None

    def callback(self) -> Callable[[KafkaError | None, Message], None]:
        # A closure over locals: this runs once per message, so keep it to a few bytecodes.
        per_partition = self.per_partition

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is None:
                per_partition[message.partition()] += 1
            else:
                self.record_failure(error.str(), 1)

        return on_delivery

    def on_error(self, error: KafkaError) -> None:
        """Client-level errors: transient ones (broker down) show up as delivery failures
        after `message.timeout.ms`; a fatal one (idempotence broken) ends the run."""
        if error.fatal() and self.fatal is None:
            self.fatal = error.str()

    def record_failure(self, reason: str, count: int) -> None:
        self.failed += count
        if self.first_error is None:
            self.first_error = reason

    def report(self, sent: int, seconds: float) -> ProduceReport:
        per_partition = dict(sorted(self.per_partition.items()))
        return ProduceReport(sent=sent, delivered=sum(per_partition.values()), failed=self.failed,
                             first_error=self.first_error, per_partition=per_partition, seconds=seconds)


def produce(
    settings: Settings,
    generator: TrafficGenerator,
    rate: float | None,
    count: int | None,
    duration: float | None,
    stop: threading.Event | None = None,
    on_status: Callable[[ProduceReport], None] | None = None,
    *,
    status_interval: float = 0.5,
    connect_timeout: float = 10.0,
    flush_timeout: float = 30.0,
) -> ProduceReport:
    """Produce `generator`'s messages to `settings.topic` until `count`, `duration` or `stop`.

    `rate` is in messages per second; None or 0 means as fast as possible. The topic is
    created with `settings.partitions` if missing; BrokerUnreachable if nothing answers
    within `connect_timeout`. `on_status` gets a live report every `status_interval` s.
    At the end the producer is flushed (at most `flush_timeout` s) and the final report
    returned; undelivered messages are counted in `failed`, never dropped silently.
    """
    client_config = settings.client_config()
    wait_for_broker(client_config, connect_timeout)
    ensure_topic(client_config, settings.topic, settings.partitions)

    tally = _DeliveryTally()
    config: dict[str, Any] = {**PRODUCER_DEFAULTS, **client_config,
                              "on_delivery": tally.callback(), "error_cb": tally.on_error,
                              "logger": RDKAFKA_LOGGER}
    producer = Producer(config)
    stop = stop or threading.Event()
    topic = settings.topic
    send = producer.produce
    poll = producer.poll

    started = time.monotonic()
    deadline = started + duration if duration is not None else None
    remaining = count
    sent = 0
    next_status = started + status_interval if on_status is not None else float("inf")
    bucket = TokenBucket(rate, started) if rate else None

    try:
        while not stop.is_set() and remaining != 0 and tally.fatal is None:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_status:
                on_status(tally.report(sent, now - started))  # type: ignore[misc]
                next_status = now + status_interval
            if bucket is not None:
                step = bucket.take(now)
                if step == 0:
                    wait = bucket.wait()
                    if deadline is not None:
                        wait = min(wait, deadline - now)
                    # Waiting inside poll() serves delivery reports meanwhile.
                    poll(max(0.0, min(wait, MAX_WAIT_SECONDS, next_status - now)))
                    continue
            else:
                step = UNTHROTTLED_STEP
            if remaining is not None:
                step = min(step, remaining)
                remaining -= step
            for key, value in generator.next_batch(step):
                try:
                    send(topic, value, key)
                except BufferError:
                    if not _send_when_room(producer, topic, key, value, stop):
                        break
                sent += 1
            poll(0)
    except KafkaException as error:
        # produce() refuses messages once the producer is in a fatal state.
        tally.fatal = tally.fatal or error_reason(error)
    finally:
        undelivered = _flush(producer, flush_timeout)
        if undelivered:
            tally.record_failure(f"{undelivered} message(s) still queued after waiting "
                                 f"{flush_timeout:g}s for the broker", undelivered)
    if tally.fatal is not None and tally.first_error is None:
        tally.first_error = f"fatal producer error: {tally.fatal}"
    return tally.report(sent, time.monotonic() - started)


def _send_when_room(producer: Producer, topic: str, key: bytes, value: bytes, stop: threading.Event) -> bool:
    """The local queue is full: serve delivery reports until the message fits; False if stopped first."""
    while not stop.is_set():
        producer.poll(0.05)
        try:
            producer.produce(topic, value, key)
            return True
        except BufferError:
            continue
    return False



def _flush(producer: Producer, timeout: float) -> int:
    """Flush in short slices (so signals are handled); return how many messages remain queued."""
    deadline = time.monotonic() + timeout
    remaining = len(producer)
    while remaining and time.monotonic() < deadline:
        remaining = producer.flush(min(0.5, max(0.0, deadline - time.monotonic())))
    return remaining

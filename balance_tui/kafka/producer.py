"""The producing loop behind `balance-tui produce`: rate control, delivery reports, status,
and a broker that goes away and comes back.

Keys are customer ids and the partitioner is librdkafka's `murmur2_random`, the
algorithm of the Java and kafka-python clients, so a customer's transactions land on
the same partition whichever client produced them (librdkafka's default, CRC32,
would disagree; see `core.traffic.murmur2_partition`).

Every message gets a delivery report through one producer-wide callback: delivered
messages are counted per partition, failures are counted and the first error kept.
Nothing is dropped silently: what is still queued when the final flush gives up is
counted as failed too.

A broker that goes away (docs/performance.md, "Broker restarts"): librdkafka says
`_ALL_BROKERS_DOWN` through `error_cb`, or deliveries stop while messages are in flight.
The loop then stops generating, says so in one line, and asks every second who answers at
the bootstrap servers (a metadata request naming no topic, which creates nothing):

* the same cluster, with the topic: the broker only was unreachable; librdkafka resends
  what it holds (idempotence keeps that exact) and the loop resumes;
* a different cluster, or the topic is gone: the embedded broker keeps everything in
  memory, so a restarted one is a new, empty cluster that never issued our producer id.
  librdkafka's idempotent producer would retry on UNKNOWN_PRODUCER_ID forever (its epoch
  bump keeps a producer id the new broker never gave out) until `message.timeout.ms`, and
  sometimes ends in a fatal UNKNOWN_PRODUCER_ID. So the old producer is purged (what it
  still held is counted as failed and never resent, so nothing can arrive twice), the topic
  is created with the configured partition count, a new producer takes over, the
  generator re-opens every account (`TrafficGenerator.reopen_accounts`) and the loop resumes.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from balance_tui.config import Settings
from balance_tui.core.traffic import TrafficGenerator
from balance_tui.errors import UserError
from balance_tui.kafka import error_reason
from balance_tui.kafka.admin import (
    RDKAFKA_LOGGER,
    ensure_topic,
    topic_partition_count,
    wait_for_broker,
)

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
    # A metadata request naming the topic must not create it: Tansu would give it its default
    # 4 partitions (a restarted broker has no topics) and every key would hash elsewhere.
    # produce() creates the topic itself, with the configured partition count.
    "allow.auto.create.topics": False,
}

#: Messages generated per step when unthrottled: large enough to amortise the loop, small
#: enough that stop requests and status updates stay prompt (a step is ~5 ms).
UNTHROTTLED_STEP = 1000

#: Throttled: never more than this many seconds' worth of messages in one go (smoothness).
MAX_BURST_SECONDS = 0.05

#: Longest single wait, so Ctrl+C and `stop` are noticed quickly even at very low rates.
MAX_WAIT_SECONDS = 0.1

#: Shortest wait while no token is due. Waking once per token costs ~1,000 loop turns a second
#: at 1000 tx/s for nothing: the messages wait `linger.ms` (200 ms) in librdkafka anyway.
MIN_WAIT_SECONDS = 0.005

#: How often the loop looks at the connection (delivery progress, broker-down reports).
WATCH_INTERVAL = 0.25

#: No delivery report for this long while messages are in flight: ask who the broker is.
STALL_SECONDS = 3.0

#: While the broker is suspect, how often to ask, and how long one question may take.
PROBE_INTERVAL = 1.0
PROBE_TIMEOUT = 0.5

#: Local queue full: serve delivery reports this long before trying again.
QUEUE_FULL_WAIT = 0.05


@dataclass
class ProduceReport:
    """What a produce run did so far (live, for the status line) or in total (at the end)."""

    sent: int = 0
    """Messages handed to the producer."""
    delivered: int = 0
    """Messages the broker acknowledged."""
    failed: int = 0
    """Messages that will never be delivered (delivery error, purged after a broker restart,
    or still queued after the final flush)."""
    first_error: str | None = None
    per_partition: dict[int, int] = field(default_factory=dict)
    """Delivered messages per partition (every broker of the run together)."""
    seconds: float = 0.0
    """Time since the first message was produced (including the final flush at the end)."""
    last_error: str | None = None
    """The most recent failure's reason (the status line shows it)."""
    reconnects: int = 0
    """Times a restarted broker was found and the topic and the producer recreated."""
    unreachable_seconds: float | None = None
    """How long the broker has not been answering; None while it answers."""

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


def poll_timeout(seconds: float) -> float:
    """`seconds` as a timeout for `Producer.poll()`: whole milliseconds, rounded up.

    confluent-kafka truncates the timeout to whole milliseconds, so `poll(0.0009)` returns
    at once: a loop waiting for a token due in under a millisecond (every wait at 1000 tx/s)
    spun on a whole core. The half millisecond added survives the truncation of
    `seconds * 1000` (1.001 * 1000 is 1000.9999999999999).
    """
    if seconds <= 0:
        return 0.0
    return (math.ceil(seconds * 1000 - 1e-9) + 0.5) / 1000


def throttled_wait(bucket: TokenBucket, now: float, limits: Sequence[float | None] = ()) -> float:
    """How long the loop waits in `poll()` while `bucket` has no whole token.

    Until the next token, but at least MIN_WAIT_SECONDS (the bucket keeps what accrues
    meanwhile, so the rate stays exact) and at most MAX_WAIT_SECONDS or the nearest of
    `limits` (deadline, next status line); a poll timeout, never 0.
    """
    wait = min(max(bucket.wait(), MIN_WAIT_SECONDS), MAX_WAIT_SECONDS)
    for limit in limits:
        if limit is not None:
            wait = min(wait, limit - now)
    return poll_timeout(wait) or poll_timeout(1e-3)


class _DeliveryTally:
    """Collects delivery reports; called from `poll()`/`flush()` on the producing thread."""

    __slots__ = ("failed", "fatal", "first_error", "last_error", "per_partition")

    def __init__(self) -> None:
        self.per_partition: defaultdict[int, int] = defaultdict(int)
        self.failed = 0
        self.first_error: str | None = None
        self.last_error: str | None = None
        self.fatal: str | None = None

    def callback(self) -> Callable[[KafkaError | None, Message], None]:
        # A closure over locals: this runs once per message, so keep it to a few bytecodes.
        per_partition = self.per_partition

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is None:
                partition = message.partition()
                if partition is not None:  # always set on a delivered message: narrows the stubs' Optional
                    per_partition[partition] += 1
            else:
                self.record_failure(error.str(), 1)

        return on_delivery

    def record_failure(self, reason: str, count: int) -> None:
        self.failed += count
        self.last_error = reason
        if self.first_error is None:
            self.first_error = reason

    def settled(self) -> int:
        """Messages delivered or failed so far."""
        return sum(self.per_partition.values()) + self.failed

    def report(self, sent: int, seconds: float, **extra: Any) -> ProduceReport:
        per_partition = dict(sorted(self.per_partition.items()))
        return ProduceReport(sent=sent, delivered=sum(per_partition.values()), failed=self.failed,
                             first_error=self.first_error, per_partition=per_partition, seconds=seconds,
                             last_error=self.last_error, **extra)


class _Connection:
    """The current Producer and the cluster it writes to.

    `watch()` notices a broker that stopped answering and one that came back, possibly
    as a new cluster (see the module docstring); `say` gets one line for each.
    """

    def __init__(self, settings: Settings, tally: _DeliveryTally, generator: TrafficGenerator,
                 say: Callable[[str], None], connect_timeout: float) -> None:
        self._client_config = settings.client_config()
        self._topic = settings.topic
        self._partitions = settings.partitions
        self._bootstrap = settings.bootstrap_servers
        self._tally = tally
        self._generator = generator
        self._say = say
        self._generation = 0
        self.down_reason: str | None = None
        """librdkafka said every broker is down (error_cb); cleared when one answers."""
        self.outage_since: float | None = None
        """When a probe first went unanswered; None while the broker answers."""
        self.gave_up = False
        """A fatal producer error with the same broker still there: nothing left to try."""
        self.reconnects = 0
        self.producer = self._new_producer()
        answer = self._probe(connect_timeout)
        # The broker answered wait_for_broker() a moment ago; if it is gone again, the first
        # probe of watch() says so. A cluster without an id is told apart by the topic alone.
        self.cluster_id = answer[0] if answer else None
        self._failed_before_outage = 0
        self._settled = 0
        self._progress_at = time.monotonic()
        self._next_probe = 0.0

    @property
    def paused(self) -> bool:
        """True while nothing should be handed to the producer (broker unreachable, producer broken)."""
        return self.outage_since is not None or self._tally.fatal is not None

    def watch(self, now: float) -> bool:
        """Check on the broker if anything is suspect; True if the producer was replaced."""
        tally = self._tally
        settled = tally.settled()
        if settled != self._settled:
            self._settled, self._progress_at = settled, now
        stalled = len(self.producer) > 0 and now - self._progress_at >= STALL_SECONDS
        suspect = stalled or self.paused or self.down_reason is not None
        if not suspect or now < self._next_probe:
            return False
        self._next_probe = now + PROBE_INTERVAL
        answer = self._probe(PROBE_TIMEOUT)
        if answer is None:
            if self.outage_since is None:
                self.producer.poll(0)  # reports already in: len() counts them until served
                self.outage_since = now
                self._failed_before_outage = tally.failed
                reason = f" ({self.down_reason})" if self.down_reason else ""
                self._say(f"broker unreachable at {self._bootstrap}{reason}: {len(self.producer):,} messages "
                          f"not acknowledged yet; paused, waiting for it to answer")
            return False
        cluster_id, has_topic = answer
        if cluster_id == self.cluster_id and has_topic:
            self.down_reason = None
            self._progress_at = now  # slow but there: look again only after another stall
            if tally.fatal is not None:
                self.gave_up = True
            elif self.outage_since is not None:
                self._say(f"broker answers again after {now - self.outage_since:.1f}s (same cluster): "
                          f"{tally.failed - self._failed_before_outage:,} messages failed meanwhile; resuming")
                self.outage_since = None
            return False
        return self._replace(now, cluster_id)

    def close(self) -> None:
        self._generation += 1  # the last producer's late error reports are not ours to act on

    def _replace(self, now: float, cluster_id: str | None) -> bool:
        """A restarted broker: count what the old producer held as failed, recreate topic and producer."""
        tally = self._tally
        failed_before = self._failed_before_outage if self.outage_since is not None else tally.failed
        old = self.producer
        old.purge(in_queue=True, in_flight=True, blocking=True)
        stuck = old.flush(1.0)  # serves the purge's delivery reports: each one counts as failed
        if stuck:
            tally.record_failure(f"{stuck} message(s) held by the producer of the previous broker", stuck)
        try:
            created = ensure_topic(self._client_config, self._topic, self._partitions)
            partitions = topic_partition_count(self._client_config, self._topic)
        except UserError as error:
            if self.outage_since is None:
                self.outage_since = now
                self._failed_before_outage = failed_before
            self._say(f"broker restarted, but the topic cannot be created yet ({error}); retrying")
            return False
        why = "a new cluster" if cluster_id != self.cluster_id else f"topic {self._topic} is gone"
        self.close()
        self.producer = self._new_producer()
        del old  # destroyed here, on our thread: it holds nothing any more
        self.cluster_id = cluster_id
        self.down_reason = None
        tally.fatal = None  # it was the old producer's
        self.outage_since = None
        self.reconnects += 1
        self._settled, self._progress_at = tally.settled(), now
        self._generator.reopen_accounts()
        layout = f"{partitions} partitions" if partitions is not None else "partitions unknown"
        if partitions is not None and partitions != self._partitions:
            layout += f", not {self._partitions}: keys hash differently"
        self._say(f"broker restarted ({why} at {self._bootstrap}): {tally.failed - failed_before:,} messages "
                  f"failed (never acknowledged, not resent); {'created' if created else 'found'} topic "
                  f"{self._topic} ({layout}), new producer, accounts re-opened; producing again")
        return True

    def _new_producer(self) -> Producer:
        self._generation += 1
        generation = self._generation
        tally = self._tally

        def on_error(error: KafkaError) -> None:
            # Transient errors (broker down) show up as delivery failures after `message.timeout.ms`
            # and as a paused loop at once; a fatal one stops the producer until watch() decides.
            if generation != self._generation:
                return
            if error.code() == KafkaError._ALL_BROKERS_DOWN:
                self.down_reason = error.str()
            elif error.fatal() and tally.fatal is None:
                tally.fatal = error.str()

        config: dict[str, Any] = {**PRODUCER_DEFAULTS, **self._client_config,
                                  "on_delivery": tally.callback(), "error_cb": on_error,
                                  "logger": RDKAFKA_LOGGER}
        return Producer(config)

    def _probe(self, timeout: float) -> tuple[str | None, bool] | None:
        """(cluster id, whether our topic exists) from a metadata answer, or None if nobody answers."""
        try:
            metadata = self.producer.list_topics(timeout=timeout)
        except KafkaException:
            return None
        if not metadata.brokers:
            return None
        found = metadata.topics.get(self._topic)
        return metadata.cluster_id, found is not None and found.error is None


def produce(
    settings: Settings,
    generator: TrafficGenerator,
    rate: float | None,
    count: int | None,
    duration: float | None,
    stop: threading.Event | None = None,
    on_status: Callable[[ProduceReport], None] | None = None,
    *,
    on_event: Callable[[str], None] | None = None,
    status_interval: float = 0.5,
    connect_timeout: float = 10.0,
    flush_timeout: float = 30.0,
) -> ProduceReport:
    """Produce `generator`'s messages to `settings.topic` until `count`, `duration` or `stop`.

    `rate` is in messages per second; None or 0 means as fast as possible. The topic is
    created with `settings.partitions` if missing; BrokerUnreachable if nothing answers
    within `connect_timeout`. `on_status` gets a live report every `status_interval` s,
    `on_event` one line when the broker goes away, comes back, or restarted (the run then
    goes on with a new producer on the new broker). At the end the producer is flushed (at
    most `flush_timeout` s, 1 s while the broker is unreachable) and the final report
    returned; undelivered messages are counted in `failed`, never dropped silently.
    """
    client_config = settings.client_config()
    wait_for_broker(client_config, connect_timeout)
    ensure_topic(client_config, settings.topic, settings.partitions)

    tally = _DeliveryTally()
    connection = _Connection(settings, tally, generator, on_event or (lambda line: None), connect_timeout)
    loop = _ProduceLoop(settings.topic, generator, connection, tally, rate=rate, count=count, duration=duration,
                        on_status=on_status, status_interval=status_interval)
    try:
        loop.run(stop or threading.Event())
    finally:
        # A broker known to be away gets one second, not the full flush timeout.
        waited = min(flush_timeout, 1.0) if connection.paused else flush_timeout
        undelivered = _flush(loop.producer, waited)
        connection.close()
        if undelivered:
            tally.record_failure(f"{undelivered} message(s) still queued after waiting "
                                 f"{waited:g}s for the broker", undelivered)
    if tally.fatal is not None and tally.first_error is None:
        tally.first_error = f"fatal producer error: {tally.fatal}"
    return loop.report(time.monotonic())


class _ProduceLoop:
    """One `produce()` run: what is left to generate and hand over, the rate, and when to look at
    the broker and report. One turn of `run()` per batch (up to UNTHROTTLED_STEP messages) or wait."""

    def __init__(self, topic: str, generator: TrafficGenerator, connection: _Connection, tally: _DeliveryTally, *,
                 rate: float | None, count: int | None, duration: float | None,
                 on_status: Callable[[ProduceReport], None] | None, status_interval: float) -> None:
        self.topic = topic
        self.generator = generator
        self.connection = connection
        self.tally = tally
        self.on_status = on_status
        self.status_interval = status_interval
        self.started = started = time.monotonic()
        self.deadline = started + duration if duration is not None else None
        self.remaining = count
        self.sent = 0
        self.pending: list[tuple[bytes, bytes]] = []  # generated, not yet taken by the producer's queue
        self.next_status = started + status_interval if on_status is not None else float("inf")
        self.next_watch = started + WATCH_INTERVAL
        self.bucket = TokenBucket(rate, started) if rate else None
        self._use(connection.producer)

    def _use(self, producer: Producer) -> None:
        self.producer = producer
        self.send, self.poll = producer.produce, producer.poll

    def report(self, now: float) -> ProduceReport:
        outage = self.connection.outage_since
        return self.tally.report(self.sent, now - self.started, reconnects=self.connection.reconnects,
                                 unreachable_seconds=None if outage is None else now - outage)

    def run(self, stop: threading.Event) -> None:
        """Until `count` messages are handed over, the `duration` is up, `stop` is set, or the producer is lost."""
        while not stop.is_set():
            now = time.monotonic()
            if self.remaining == 0 and not self.pending:
                break
            last_round = False
            if self.deadline is not None and now >= self.deadline:
                if self.bucket is None or self.pending or self.connection.paused:
                    break
                # Waits last at least MIN_WAIT_SECONDS: send what accrued up to the deadline, no more.
                now, last_round = self.deadline, True
            if not self._look_after(now):
                break
            if self.connection.paused:
                self.poll(MAX_WAIT_SECONDS)  # serves delivery reports and error_cb meanwhile
                continue
            if not self.pending:
                bucket = self.bucket
                step = UNTHROTTLED_STEP if bucket is None else bucket.take(now)
                if bucket is not None and step == 0:
                    if last_round:
                        break
                    # Waiting inside poll() serves delivery reports meanwhile.
                    self.poll(throttled_wait(bucket, now, (self.deadline, self.next_status, self.next_watch)))
                    continue
                self._generate(step)
            self._hand_over_pending()
            if last_round:
                break

    def _look_after(self, now: float) -> bool:
        """The broker watched and the status reported when due; False once the producer is beyond help."""
        if now >= self.next_watch:
            self.next_watch = now + WATCH_INTERVAL
            connection = self.connection
            if connection.watch(now):
                self._use(connection.producer)
                if self.bucket is not None:
                    self.bucket = TokenBucket(self.bucket.rate, now)  # no burst after the pause
            if connection.gave_up:
                return False
        if now >= self.next_status and self.on_status is not None:
            self.on_status(self.report(now))
            self.next_status = now + self.status_interval
        return True

    def _generate(self, step: int) -> None:
        if self.remaining is not None:
            step = min(step, self.remaining)
            self.remaining -= step
        self.pending = self.generator.next_batch(step)

    def _hand_over_pending(self) -> None:
        pending = self.pending
        taken = _hand_over(self.send, self.topic, pending, self.tally)
        self.sent += taken
        if taken < len(pending):
            self.pending = pending[taken:]
            if self.tally.fatal is None:
                self.poll(QUEUE_FULL_WAIT)  # local queue full: serve delivery reports, then retry
        else:
            self.pending = []
            self.poll(0)


def _hand_over(send: Callable[..., None], topic: str, batch: list[tuple[bytes, bytes]],
               tally: _DeliveryTally) -> int:
    """Give `batch` to the producer in order; how many it took before its queue filled up or it broke."""
    taken = 0
    try:
        for taken, (key, value) in enumerate(batch):  # noqa: B007 - `taken` is read after a break
            send(topic, value, key)
    except BufferError:
        return taken
    except KafkaException as error:
        # produce() refuses messages once the producer is in a fatal state.
        tally.fatal = tally.fatal or error_reason(error)
        return taken
    return len(batch)


def _flush(producer: Producer, timeout: float) -> int:
    """Flush in short slices (so signals are handled); return how many messages remain queued."""
    deadline = time.monotonic() + timeout
    remaining = len(producer)
    while remaining and time.monotonic() < deadline:
        remaining = producer.flush(min(0.5, max(0.0, deadline - time.monotonic())))
    return remaining

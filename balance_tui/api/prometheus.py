"""`GET /metrics`: the member in Prometheus text format, read from a store snapshot at scrape time.

Names follow Prometheus conventions: `balance_tui_` prefix, base units (seconds), `_total`
for counters, enum-like states as one 0/1 series per value. Every series carries `group`,
`topic` and `consumer_id`; per-partition series add `partition`. Series marked "derived" in
their help text are computed from what the worker publishes today (docs/api.md says which
message fields would make them exact).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from balance_tui.api.store import (
    REBALANCE_KINDS,
    ApiSnapshot,
    ApiStore,
    HistogramSnapshot,
)
from balance_tui.core.lag import AlertState, DrainState, LagStatus
from balance_tui.core.rows import ConsumerStatus

MEMBER_LABELS = ("group", "topic", "consumer_id")
PARTITION_LABELS = (*MEMBER_LABELS, "partition")
GROUP_STATES = ("stable", "rebalancing", "unknown")


def _buckets(histogram: HistogramSnapshot) -> list[tuple[str, float]]:
    bounds = [repr(float(bound)) for bound in histogram.buckets] + ["+Inf"]
    return list(zip(bounds, (float(count) for count in histogram.cumulative), strict=True))


class BalanceCollector:
    """A prometheus_client collector over an `ApiStore`: nothing is updated on the hot path."""

    def __init__(self, store: ApiStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        yield from snapshot_metrics(self.store.snapshot())


def snapshot_metrics(snapshot: ApiSnapshot) -> Iterator[Metric]:
    member = [snapshot.group, snapshot.topic, snapshot.consumer_id]
    yield from _member_gauges(snapshot, member)
    yield from _counter_metrics(snapshot, member)
    yield from _duration_and_partition_metrics(snapshot, member)


def _gauge(member: list[str], name: str, documentation: str, value: float,
           labels: tuple[str, ...] = MEMBER_LABELS, values: list[str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    family.add_metric(values or member, value)
    return family


def _counter(member: list[str], name: str, documentation: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=MEMBER_LABELS)
    family.add_metric(member, value)
    return family


def _member_gauges(snapshot: ApiSnapshot, member: list[str]) -> Iterator[Metric]:
    yield _gauge(member, "balance_tui_start_time_seconds", "When this member started, in Unix seconds.",
                 snapshot.started_at.timestamp())
    status = GaugeMetricFamily("balance_tui_consumer_status",
                               "1 for this member's current status, 0 for the others.",
                               labels=(*MEMBER_LABELS, "status"))
    for each in ConsumerStatus:
        status.add_metric([*member, each.value], 1.0 if each is snapshot.status else 0.0)
    yield status
    group_state = GaugeMetricFamily(
        "balance_tui_group_state",
        "1 for the group's state: the broker's (DescribeGroups) where it describes groups, else derived from "
        "the members' heartbeats and this member's status.",
        labels=(*MEMBER_LABELS, "state"))
    for state in GROUP_STATES:
        group_state.add_metric([*member, state], 1.0 if state == snapshot.group_state else 0.0)
    yield group_state
    view = snapshot.group_view
    yield _gauge(member, "balance_tui_group_members", "Members of the group as this member sees them (heartbeats).",
                 len(view.rows) if view is not None else 0)
    yield _gauge(member, "balance_tui_group_unowned_partitions", "Partitions of the topic that no member claims.",
                 len(view.unowned) if view is not None else 0)
    yield _gauge(member, "balance_tui_assigned_partitions", "Partitions assigned to this member.",
                 len(snapshot.assignment))
    yield _gauge(member, "balance_tui_paused", "1 while consumption is paused by hand (partitions kept).",
                 1.0 if snapshot.paused else 0.0)
    yield _gauge(member, "balance_tui_customers", "Customers whose balances this member holds.", snapshot.customers)
    if snapshot.last_message_at is not None:
        yield _gauge(member, "balance_tui_last_message_timestamp_seconds",
                     "When records last arrived, in Unix seconds.",
                     snapshot.last_message_at.timestamp())


def _counter_metrics(snapshot: ApiSnapshot, member: list[str]) -> Iterator[Metric]:
    counters = snapshot.counters
    yield _counter(member, "balance_tui_messages_consumed", "Records read from the transactions topic.",
                   counters.consumed)
    yield _counter(member, "balance_tui_transactions_applied", "Transactions applied to a balance.", counters.applied)
    yield _counter(member, "balance_tui_transactions_skipped",
                   "Failed and Rejected transactions (read, change nothing).",
                   counters.skipped)
    yield _counter(member, "balance_tui_transactions_replayed",
                   "Transactions read again after a restore, already in the restored state "
                   "(not applied twice).",
                   counters.replayed)
    yield _counter(member, "balance_tui_errors", "Processing and Kafka client errors.", counters.errors)
    rejected = CounterMetricFamily(
        "balance_tui_messages_rejected",
        "Records that are not transactions, by reason.",
        labels=(*MEMBER_LABELS, "reason"))
    for reason, count in sorted(snapshot.rejected_by_reason.items()):
        rejected.add_metric([*member, reason], count)
    yield rejected
    events = CounterMetricFamily("balance_tui_rebalance_events", "Rebalance callbacks on this member, by kind.",
                                 labels=(*MEMBER_LABELS, "kind"))
    for kind in REBALANCE_KINDS:
        events.add_metric([*member, kind], snapshot.rebalance_events.get(kind, 0))
    yield events


def _duration_and_partition_metrics(snapshot: ApiSnapshot, member: list[str]) -> Iterator[Metric]:
    counters = snapshot.counters
    for name, documentation, histogram in (
        ("balance_tui_rebalance_duration_seconds",
         "From the join (or revoke) to the assignment that ended it.", snapshot.rebalance_duration),
        ("balance_tui_partition_pause_duration_seconds",
         "Per partition given back here: from its revoke to its assignment (not consumed meanwhile).",
         snapshot.pause_duration),
        ("balance_tui_restore_duration_seconds",
         "Restoring a moved partition's balances from the changelog, per partition.", snapshot.restore_duration),
    ):
        family = HistogramMetricFamily(name, documentation, labels=MEMBER_LABELS)
        family.add_metric(member, _buckets(histogram), histogram.total)
        yield family

    latency = GaugeMetricFamily(
        "balance_tui_end_to_end_latency_seconds",
        "Producer timestamp to balance applied, over the last minute's window, at a quantile.",
        labels=(*MEMBER_LABELS, "quantile"))
    for quantile, milliseconds in (("0.5", counters.latency_p50_ms), ("0.99", counters.latency_p99_ms)):
        if milliseconds is not None:
            latency.add_metric([*member, quantile], milliseconds / 1000.0)
    yield latency

    lag = GaugeMetricFamily("balance_tui_partition_lag_messages",
                            "Per owned partition: high watermark minus position.", labels=PARTITION_LABELS)
    position = GaugeMetricFamily("balance_tui_partition_position",
                                 "Per owned partition: the next offset to read.", labels=PARTITION_LABELS)
    high = GaugeMetricFamily("balance_tui_partition_high_watermark",
                             "Per owned partition: the log end offset from fetch responses.", labels=PARTITION_LABELS)
    for row in snapshot.partitions:
        if not row.mine:
            continue
        values = [*member, str(row.partition)]
        if row.lag is not None:
            lag.add_metric(values, row.lag)
        if row.position is not None:
            position.add_metric(values, row.position)
        if row.high_watermark is not None:
            high.add_metric(values, row.high_watermark)
    yield from (lag, position, high)
    consumed = CounterMetricFamily(
        "balance_tui_partition_messages_consumed",
        "Records read per partition while owned here.", labels=PARTITION_LABELS)
    for partition, count in sorted(snapshot.consumed_by_partition.items()):
        consumed.add_metric([*member, str(partition)], count)
    yield consumed
    yield from lag_metrics(snapshot, member)
    applied = CounterMetricFamily(
        "balance_tui_partition_transactions_applied",
        "Transactions applied per partition (not the failed, rejected or replayed ones).",
        labels=PARTITION_LABELS)
    for partition, count in sorted(snapshot.applied_by_partition.items()):
        applied.add_metric([*member, str(partition)], count)
    yield applied


def lag_metrics(snapshot: ApiSnapshot, member: list[str]) -> Iterator[Metric]:
    """Lag in seconds, Burrow's status, time to drain and the alert (docs/lag.md); nothing before the first view."""
    view = snapshot.lag
    if view is None:
        return
    if view.lag_seconds is not None:
        family = GaugeMetricFamily("balance_tui_lag_seconds",
                                   "Age of the oldest unconsumed record over my partitions.", labels=MEMBER_LABELS)
        family.add_metric(member, view.lag_seconds)
        yield family
    if view.balance_delay is not None:
        family = GaugeMetricFamily("balance_tui_balance_delay_seconds",
                                   "How far behind real time my balances are (0 when caught up).",
                                   labels=MEMBER_LABELS)
        family.add_metric(member, view.balance_delay)
        yield family
    status = GaugeMetricFamily("balance_tui_lag_status",
                               "1 for the worst Burrow-style status of my partitions over lag_window, "
                               "0 for the others.",
                               labels=(*MEMBER_LABELS, "status"))
    for lag_status in LagStatus:
        status.add_metric([*member, lag_status.name], 1.0 if lag_status is view.status else 0.0)
    yield status
    drain = GaugeMetricFamily("balance_tui_drain_state", "1 for my partitions' drain state, 0 for the others.",
                              labels=(*MEMBER_LABELS, "state"))
    for drain_state in DrainState:
        drain.add_metric([*member, drain_state.value], 1.0 if drain_state is view.drain else 0.0)
    yield drain
    seconds = GaugeMetricFamily("balance_tui_partition_lag_seconds",
                                "Per owned partition: age of the oldest unconsumed record.", labels=PARTITION_LABELS)
    to_drain = GaugeMetricFamily("balance_tui_partition_time_to_drain_seconds",
                                 "Per owned partition draining (or caught up: 0): time to drain at the last "
                                 "10 s' rates.",
                                 labels=PARTITION_LABELS)
    not_draining = GaugeMetricFamily("balance_tui_partition_not_draining",
                                     "Per owned partition: 1 when arrivals keep up with or outpace consumption.",
                                     labels=PARTITION_LABELS)
    partition_status = GaugeMetricFamily("balance_tui_partition_lag_status",
                                         "Per owned partition: 1 for its Burrow-style status, 0 for the others.",
                                         labels=(*PARTITION_LABELS, "status"))
    for partition in view.partitions:
        values = [*member, str(partition.partition)]
        if partition.lag_seconds is not None:
            seconds.add_metric(values, partition.lag_seconds)
        if partition.drain_seconds is not None:
            to_drain.add_metric(values, partition.drain_seconds)
        not_draining.add_metric(values, 1.0 if partition.drain is DrainState.NOT_DRAINING else 0.0)
        for each in LagStatus:
            partition_status.add_metric([*values, each.name], 1.0 if each is partition.status else 0.0)
    yield from (seconds, to_drain, not_draining, partition_status)
    alert = view.alert
    if alert is None:
        return
    state = GaugeMetricFamily("balance_tui_lag_alert_state",
                              f"The lab's alert rule (lag above {alert.threshold} for {alert.for_seconds:g} s): "
                              "1 for its state, 0 for the others.", labels=(*MEMBER_LABELS, "state"))
    for alert_state in AlertState:
        state.add_metric([*member, alert_state.value], 1.0 if alert_state is alert.state else 0.0)
    yield state
    if alert.raised_at is not None:
        family = GaugeMetricFamily("balance_tui_lag_alert_raised_timestamp_seconds",
                                   "While in alert: when it was raised, in Unix seconds.", labels=MEMBER_LABELS)
        family.add_metric(member, alert.raised_at)
        yield family
    raised = CounterMetricFamily("balance_tui_lag_alerts_raised", "Lag alerts raised since the member started.",
                                 labels=MEMBER_LABELS)
    raised.add_metric(member, alert.raised_total)
    yield raised


def build_registry(store: ApiStore) -> CollectorRegistry:
    """A private registry: this member's collector and the process, platform and GC collectors."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(BalanceCollector(store))
    return registry


def exposition(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The scrape body and its content type (text format, or OpenMetrics when the scraper asks for it)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type

"""The API's JSON documents, built from store snapshots: the lab's field names, then ours.

Amounts stay Decimal here and are written as exact JSON numbers by `exact_json` (docs/api.md).
Times are ISO 8601 UTC with milliseconds, as in the session log and the exports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

from balance_tui.api.exact_json import decimal_literal
from balance_tui.api.store import ApiSnapshot, StreamEvent
from balance_tui.core.assignment import iso_ms
from balance_tui.core.export import LAB_EVENT_TYPES, history_entry
from balance_tui.core.group import GroupLag, group_lag
from balance_tui.core.lag_view import LagView, alert_document
from balance_tui.core.rows import BalanceRow

#: The lab's bank works in euros: a customer with several currencies shows this one as `balance`.
LAB_CURRENCY = "EUR"


def _time(moment: datetime | None) -> str | None:
    return iso_ms(moment) if moment is not None else None


_ZERO = timedelta(0)


def fast_iso_ms(moment: datetime) -> str:
    """`iso_ms` for UTC times without strftime (a tenth of its cost): `/balances` writes one per customer."""
    if moment.utcoffset() != _ZERO:
        return iso_ms(moment)
    return moment.isoformat(timespec="milliseconds")[:23] + "Z"


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# -- balances -----------------------------------------------------------------------------------


def lab_currency(currencies: Sequence[str]) -> str:
    """The currency the lab's single `balance` is in: the only one, else EUR, else the first by name."""
    if len(currencies) == 1:
        return currencies[0]
    return LAB_CURRENCY if LAB_CURRENCY in currencies else min(currencies)


def customer_document(rows: Sequence[BalanceRow]) -> dict[str, Any]:
    """The lab's `CustomerBalance` for one customer's rows (one per currency, same customer)."""
    by_currency: dict[str, Decimal] = {row.currency: row.balance for row in rows}
    currency = lab_currency(sorted(by_currency))
    first = rows[0]
    return {
        "customerId": first.customer_id,
        "balance": by_currency[currency],
        "currency": currency,
        "balancesByCurrency": {code: by_currency[code] for code in sorted(by_currency)},
        "transactionCount": first.transaction_count,
        "lastUpdated": fast_iso_ms(first.last_updated),
        "lastTransactionId": first.last_transaction_id,
        "partition": first.partition,
    }


def _by_customer(rows: Iterable[BalanceRow]) -> list[list[BalanceRow]]:
    """Rows sorted by customer, grouped per customer."""
    groups: list[list[BalanceRow]] = []
    for row in rows:
        if groups and groups[-1][0].customer_id == row.customer_id:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def balances_document(rows: Iterable[BalanceRow]) -> dict[str, Any]:
    """`GET /balances`: `count` customers and their balances, sorted by customer (rows come sorted)."""
    customers = [customer_document(group) for group in _by_customer(rows)]
    return {"count": len(customers), "balances": customers}


def balances_body(rows: Iterable[BalanceRow]) -> bytes:
    """`exact_json.dumps(balances_document(rows))`, written directly: a third of the time for 10,000 customers.

    The same bytes (a unit test compares both); the dashboard's scraper of choice polls this one.
    """
    text = encode_basestring_ascii
    parts = []
    for group in _by_customer(rows):
        by_currency = {row.currency: row.balance for row in group}
        codes = sorted(by_currency)
        currency = lab_currency(codes)
        first = group[0]
        partition = "null" if first.partition is None else int.__repr__(first.partition)
        parts.append(
            f'{{"customerId":{text(first.customer_id)},"balance":{decimal_literal(by_currency[currency])},'
            f'"currency":{text(currency)},"balancesByCurrency":{{'
            + ",".join(f"{text(code)}:{decimal_literal(by_currency[code])}" for code in codes)
            + f'}},"transactionCount":{int.__repr__(first.transaction_count)},'
              f'"lastUpdated":"{fast_iso_ms(first.last_updated)}","lastTransactionId":{text(first.last_transaction_id)},'
              f'"partition":{partition}}}')
    return f'{{"count":{len(parts)},"balances":[{",".join(parts)}]}}'.encode("ascii")


def not_found_document(customer_id: str) -> dict[str, Any]:
    return {"error": f"Customer {customer_id} not found"}


# -- the consumer ---------------------------------------------------------------------------------


def metrics_document(snapshot: ApiSnapshot) -> dict[str, Any]:
    """The lab's `ConsumerGroupMetrics`, then what balance-tui measures."""
    counters = snapshot.counters
    return {
        "consumerId": snapshot.consumer_id,
        "groupId": snapshot.group,
        "status": snapshot.status.value,
        "assignedPartitions": list(snapshot.assignment),
        "messagesConsumed": counters.consumed,
        "balanceUpdates": counters.applied,
        # The lab counts errors in processing its messages; Kafka's own errors are in `errors`.
        "processingErrors": counters.processing_errors,
        "partitionOffsets": {str(row.partition): row.position for row in snapshot.partitions
                             if row.mine and row.position is not None},
        "rebalancingHistory": [history_entry(entry) for entry in snapshot.history],
        "startedAt": iso_ms(snapshot.started_at),
        "lastMessageAt": _time(snapshot.last_message_at),
        "topic": snapshot.topic,
        "strategy": snapshot.strategy,
        "statusDetail": snapshot.status_detail,
        "paused": snapshot.paused,
        "generation": snapshot.generation,
        "memberId": snapshot.member_id,
        "rejectedMessages": counters.rejected,
        "lastRejection": counters.last_rejection,
        "skippedTransactions": counters.skipped,
        "lag": counters.lag,
        "messagesPerSecond": _rounded(counters.rate, 1),
        "latencyP50Ms": _rounded(counters.latency_p50_ms, 1),
        "latencyP99Ms": _rounded(counters.latency_p99_ms, 1),
        "workMs": snapshot.work_ms,
        "customers": snapshot.customers,
        "totalRebalancingEvents": snapshot.history_total,
        **lag_fields(snapshot.lag),
    }


def lag_fields(view: LagView | None) -> dict[str, Any]:
    """`/metrics`' lag figures of my partitions together (docs/lag.md); nulls before the worker's first view."""
    return {
        "lagSeconds": _rounded(view.lag_seconds, 1) if view is not None else None,
        "lagStatus": view.status.name if view is not None else None,
        "lagStatusPartitions": list(view.worst) if view is not None else [],
        "drainState": view.drain.value if view is not None else None,
        "timeToDrainSeconds": _rounded(view.drain_seconds, 1) if view is not None else None,
        "balanceDelaySeconds": _rounded(view.balance_delay, 1) if view is not None else None,
        "lagAlert": alert_document(view.alert) if view is not None else None,
    }


def rebalancing_history_document(snapshot: ApiSnapshot) -> dict[str, Any]:
    """The lab's `/rebalancing-history`: newest first."""
    return {
        "consumerId": snapshot.consumer_id,
        "currentPartitions": list(snapshot.assignment),
        "totalRebalancingEvents": snapshot.history_total,
        "history": [history_entry(entry) for entry in reversed(snapshot.history)],
    }


def timespan_text(seconds: float) -> str:
    """A duration as .NET writes a TimeSpan (the lab's `uptime`): `[d.]hh:mm:ss.fffffff`."""
    ticks = max(0, round(seconds * 10_000_000))
    whole, fraction = divmod(ticks, 10_000_000)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    text = f"{days}." if days else ""
    text += f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return text + (f".{fraction:07d}" if fraction else "")


def health_document(snapshot: ApiSnapshot, now: datetime) -> tuple[dict[str, Any], bool]:
    """The lab's health check and whether it is healthy (200) or degraded (503)."""
    healthy = snapshot.consuming
    uptime = max(0.0, (now - snapshot.started_at).total_seconds())
    return {
        "status": "Healthy" if healthy else "Degraded",
        "consumerId": snapshot.consumer_id,
        "consumerStatus": snapshot.status.value,
        "assignedPartitions": list(snapshot.assignment),
        "messagesConsumed": snapshot.counters.consumed,
        "lastMessageAt": _time(snapshot.last_message_at),
        "uptime": timespan_text(uptime),
        "statusDetail": snapshot.status_detail,
        "paused": snapshot.paused,
        "uptimeSeconds": round(uptime, 3),
    }, healthy


def liveness_document(silence_seconds: float, threshold_seconds: float,
                      stopped_reason: str | None) -> tuple[dict[str, Any], bool]:
    """Alive while the consumer thread keeps posting; idle, paused and rebalancing members do post."""
    alive = stopped_reason is None and silence_seconds <= threshold_seconds
    return {
        "alive": alive,
        "secondsSinceWorkerMessage": round(silence_seconds, 3),
        "thresholdSeconds": threshold_seconds,
        "stoppedReason": stopped_reason,
    }, alive


# -- the group and the partitions ----------------------------------------------------------------------


def group_document(snapshot: ApiSnapshot) -> dict[str, Any]:
    """The Group panel's view: every member as its heartbeats describe it, and group-wide lag."""
    view = snapshot.group_view
    members = [] if view is None else [{
        "consumerId": row.consumer_id,
        "host": row.host,
        "pid": row.pid,
        "strategy": row.strategy,
        "status": "Silent" if row.silent else row.status,
        "assignedPartitions": list(row.partitions),
        "generation": row.generation,
        "lag": row.lag,
        "messagesPerSecond": round(row.rate, 1),
        "workMs": row.work_ms,
        "heartbeatAgeSeconds": round(row.heartbeat_age, 3),
        "silent": row.silent,
        "rebalanceExpectedInSeconds": _rounded(row.rebalance_expected_in, 1),
        "lastSeen": iso_ms(row.last_seen),
        "isSelf": row.is_self,
        "lagSeconds": _rounded(row.lag_seconds, 1),
        "lagStatus": row.lag_status,
        "lagAlert": row.lag_alert,
        "lagAlertSince": iso_ms(row.lag_alert_since) if row.lag_alert_since is not None else None,
    } for row in view.rows]
    return {
        "consumerId": snapshot.consumer_id,
        "groupId": snapshot.group,
        "topic": snapshot.topic,
        "state": snapshot.group_state,
        "memberCount": len(members),
        "members": members,
        "unownedPartitions": [] if view is None else list(view.unowned),
        "capacity": None if view is None else view.capacity,
        "partitionLag": [] if view is None else [{
            "partition": lag.partition, "owner": lag.owner, "committed": lag.committed,
            "logEnd": lag.log_end, "lag": lag.lag, "stale": lag.stale,
        } for lag in view.partition_lag],
        "source": None if view is None else view.source,
        "crossCheck": [] if view is None else list(view.cross_check),
        "problem": None if view is None else view.problem,
        "lag": None if view is None else group_lag_document(group_lag(view.rows)),
    }


def group_lag_document(lag: GroupLag) -> dict[str, Any] | None:
    if lag.status is None:
        return None
    return {"status": lag.status, "worstMembers": list(lag.worst), "alertingMembers": list(lag.alerting),
            "alertSince": iso_ms(lag.alert_since) if lag.alert_since is not None else None,
            "lagSeconds": _rounded(lag.lag_seconds, 1)}


def partitions_document(snapshot: ApiSnapshot) -> dict[str, Any]:
    """Every partition of the topic: its owner, and for mine what this member reads; others from heartbeats."""
    view = snapshot.group_view
    group_lag = {lag.partition: lag for lag in view.partition_lag} if view is not None else {}
    partitions = []
    lag = snapshot.lag
    for row in snapshot.partitions:
        reported = group_lag.get(row.partition)
        mine = lag.partition(row.partition) if lag is not None and row.mine else None
        owner = snapshot.consumer_id if row.mine else (reported.owner if reported is not None else None)
        partitions.append({
            "partition": row.partition,
            "owner": owner,
            "mine": row.mine,
            "state": row.state.value,
            "position": row.position,
            "highWatermark": row.high_watermark,
            "lag": row.lag if row.mine else (reported.lag if reported is not None else None),
            "messagesPerSecond": round(row.rate, 1),
            "committed": reported.committed if reported is not None else None,
            "restoredRecords": row.restored,
            "restoreTotal": row.restore_total,
            "lagSeconds": _rounded(mine.lag_seconds, 1) if mine is not None else None,
            "lagSecondsBasis": mine.lag_seconds_basis.value if mine is not None and mine.lag_seconds_basis else None,
            "lagStatus": mine.status.name if mine is not None else None,
            "lagStatusReason": mine.reason if mine is not None else None,
            "drainState": mine.drain.value if mine is not None else None,
            "timeToDrainSeconds": _rounded(mine.drain_seconds, 1) if mine is not None else None,
            "balanceDelaySeconds": _rounded(mine.balance_delay, 1) if mine is not None else None,
        })
    return {"consumerId": snapshot.consumer_id, "topic": snapshot.topic, "partitions": partitions}


# -- the live stream -------------------------------------------------------------------------------------


def event_document(event: StreamEvent, consumer_id: str) -> dict[str, Any]:
    """One stream event's data: a timeline entry as in `rebalancingHistory`, or a status change."""
    if event.entry is not None:
        return {"consumerId": consumer_id, **history_entry(event.entry)}
    return {
        "consumerId": consumer_id,
        "timestamp": iso_ms(event.at),
        "eventType": "StatusChanged",
        "status": event.status,
        "details": event.detail,
        "assignment": list(event.assignment),
    }


def stream_hello_document(snapshot: ApiSnapshot) -> dict[str, Any]:
    """The first event of every stream: where the member stands now."""
    return {
        "consumerId": snapshot.consumer_id,
        "timestamp": iso_ms(snapshot.taken_at),
        "eventType": "Hello",
        "status": snapshot.status.value,
        "assignment": list(snapshot.assignment),
        "generation": snapshot.generation,
        "strategy": snapshot.strategy,
    }


#: Stream event names: the timeline kinds (`assigned`, `revoked`, ...) and `status`, `hello`, `overflow`.
STREAM_EVENT_NAMES = (*LAB_EVENT_TYPES, "status", "hello", "overflow")

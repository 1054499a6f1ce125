"""The OpenAPI description of the documents in `documents.py` (for Swagger UI and schemathesis).

The handlers write the documents themselves (exact amounts, see `exact_json`); these models
only describe them. `extra="forbid"` makes every field a promise: a field added to a document
without its description fails the schema tests.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from balance_tui.core.rows import ConsumerStatus, PartitionState

Money = Annotated[Decimal, WithJsonSchema({
    "type": "number",
    "description": "An exact decimal amount (e.g. 3800.00): written from the ledger's Decimal, never "
                   "through a float. Read it with a decimal type (Python: json.loads(parse_float=Decimal)).",
    "examples": [3800.00],
})]
Partitions = list[Annotated[int, Field(ge=0)]]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RestoreFigures(_Document):
    """One partition of a `Restored` entry (the entry says them together, once per assignment)."""

    partition: int
    customers: int
    records: int = Field(description="changelog records read")
    durationMs: float
    resumeOffset: int


class RebalancingEvent(_Document):
    """One timeline entry: the lab's RebalancingEvent plus what was measured."""

    timestamp: datetime
    eventType: str = Field(description="Assigned, Revoked, Lost (the lab's), Restored, StrategyChanged, "
                                        "Restarted, Paused, Resumed, Error, StrategyRequested, MemberLeft, MemberGone, "
                                        "LagAlert...")
    partitions: Partitions
    details: str
    assignment: Partitions = Field(description="this member's assignment after the event")
    joinMs: float | None = Field(default=None, description="time from the join (or revoke) to this assignment")
    kept: Partitions | None = None
    movedIn: Partitions | None = None
    downtimeMs: dict[str, float] | None = Field(
        default=None, description="per partition: revoked until assigned again here")
    generation: int | None = None
    restores: list[RestoreFigures] | None = Field(default=None, description="Restored: each partition's figures")


class CustomerBalance(_Document):
    """The lab's CustomerBalance. `balance` is in `currency`: the customer's only currency, else EUR,
    else the first by ISO code; every currency is in `balancesByCurrency`."""

    customerId: str
    balance: Money
    currency: str
    balancesByCurrency: dict[str, Money]
    transactionCount: int
    lastUpdated: datetime = Field(description="the last applied transaction's own timestamp")
    lastTransactionId: str
    partition: int | None


class BalanceList(_Document):
    count: int = Field(description="customers held by this member (those of its partitions)")
    balances: list[CustomerBalance] = Field(description="sorted by customerId (ordinal)")


class NotFound(_Document):
    error: str = Field(examples=["Customer CUST-999 not found"])


LagStatusName = Literal["OK", "WARN", "STOP", "STALL", "REWIND"]
DrainStateName = Literal["caught up", "draining", "not draining", "unknown"]


class AlertTransitionDoc(_Document):
    kind: Literal["raised", "cleared"]
    at: datetime
    since: datetime = Field(description="raised: when the lag went above the threshold; cleared: when it was raised")
    value: float = Field(description="the lag, in the threshold's unit, at the transition")


class LagAlertDoc(_Document):
    """The lab's alert rule on my partitions' lag: above `threshold` for longer than `forSeconds`."""

    state: Literal["ok", "pending", "firing"]
    threshold: str = Field(examples=["1,000 messages", "30s"])
    forSeconds: float
    aboveSince: datetime | None
    raisedAt: datetime | None
    raisedTotal: int = Field(description="alerts raised since the member started")
    transitions: list[AlertTransitionDoc] = Field(description="the last 100 raised/cleared, oldest first")


class ConsumerGroupMetrics(_Document):
    """The lab's ConsumerGroupMetrics, then what balance-tui measures."""

    consumerId: str
    groupId: str
    status: ConsumerStatus
    assignedPartitions: Partitions
    messagesConsumed: int
    balanceUpdates: int = Field(description="transactions applied to a balance")
    processingErrors: int = Field(description="processing and Kafka client errors")
    partitionOffsets: dict[str, int] = Field(description="per owned partition: the next offset to read")
    rebalancingHistory: list[RebalancingEvent] = Field(description="oldest first, the last 1000 entries")
    startedAt: datetime
    lastMessageAt: datetime | None
    topic: str
    strategy: str | None
    statusDetail: str
    paused: bool
    generation: int | None
    memberId: str | None
    rejectedMessages: int
    lastRejection: str | None
    skippedTransactions: int = Field(description="Failed and Rejected transactions: read, change nothing")
    lag: int | None = Field(description="total over my partitions; null while unknown")
    messagesPerSecond: float
    latencyP50Ms: float | None = Field(description="end-to-end: producer timestamp to applied")
    latencyP99Ms: float | None
    workMs: float | None
    customers: int
    totalRebalancingEvents: int
    lagSeconds: float | None = Field(description="age of the oldest unconsumed record over my partitions (docs/lag.md)")
    lagStatus: LagStatusName | None = Field(description="the worst of my partitions' Burrow-style statuses")
    lagStatusPartitions: Partitions = Field(description="the partitions with that status (none when OK)")
    drainState: DrainStateName | None
    timeToDrainSeconds: float | None = Field(description="at the last 10 s' rates, when draining")
    balanceDelaySeconds: float | None = Field(description="how far behind real time my balances are")
    lagAlert: LagAlertDoc | None = Field(description="null with lag_alert_threshold off, or before the first view")


class RebalancingHistory(_Document):
    consumerId: str
    currentPartitions: Partitions
    totalRebalancingEvents: int = Field(description="every timeline entry since start (history keeps the last 1000)")
    history: list[RebalancingEvent] = Field(description="newest first")


class Health(_Document):
    """Healthy (200) while consuming; Degraded (503) while connecting, joining, rebalancing, idle,
    paused, after partitions were lost, or stopped."""

    status: Literal["Healthy", "Degraded"]
    consumerId: str
    consumerStatus: ConsumerStatus
    assignedPartitions: Partitions
    messagesConsumed: int
    lastMessageAt: datetime | None
    uptime: str = Field(description="as .NET writes a TimeSpan: [d.]hh:mm:ss[.fffffff]", examples=["00:05:12.3456789"])
    statusDetail: str
    paused: bool
    uptimeSeconds: float


class Liveness(_Document):
    """Alive (200) while the consumer thread keeps reporting, whatever it is doing; 503 when it is
    stuck or gone. For Kubernetes liveness probes: never fails because a member is idle, paused or
    rebalancing."""

    alive: bool
    secondsSinceWorkerMessage: float
    thresholdSeconds: float
    stoppedReason: str | None


class GroupMember(_Document):
    consumerId: str
    host: str
    pid: int
    strategy: str
    status: str = Field(description="the member's own status, or Silent without a recent heartbeat")
    assignedPartitions: Partitions
    generation: int | None
    lag: int | None
    messagesPerSecond: float
    workMs: float
    heartbeatAgeSeconds: float
    silent: bool
    rebalanceExpectedInSeconds: float | None = Field(
        description="for a silent member: seconds until its session timeout runs out")
    lastSeen: datetime
    isSelf: bool
    lagSeconds: float | None = Field(default=None, description="from its heartbeats: its oldest unconsumed record's "
                                                              "age (null from a member that does not send it)")
    lagStatus: str | None = Field(default=None, description="its partitions' worst Burrow-style status",
                                  examples=["OK", "WARN"])
    lagAlert: str | None = Field(default=None, description="the lab's alert rule on its lag: ok, pending, firing "
                                                           "(null: no rule)")
    lagAlertSince: datetime | None = Field(default=None, description="while firing: when its alert was raised")


class PartitionLag(_Document):
    partition: int
    owner: str | None
    committed: int | None
    logEnd: int | None
    lag: int | None
    stale: bool = Field(description="no member heard from owns it: the last figures known")


class GroupLagDoc(_Document):
    """The group's lag from its members' heartbeats: the worst status, who is in alert and since when."""

    status: str = Field(description="the worst Burrow-style status among the members heard from", examples=["WARN"])
    worstMembers: list[str] = Field(description="the members with that status (none when OK)")
    alertingMembers: list[str] = Field(description="the members whose lag alert fires")
    alertSince: datetime | None = Field(description="the earliest of their alerts: the group is in alert since then")
    lagSeconds: float | None = Field(description="the largest of the members' lag in seconds")


class GroupView(_Document):
    """The group as this member sees it from the members' heartbeats (the dashboard's Group panel)."""

    consumerId: str
    groupId: str
    topic: str
    state: Literal["stable", "rebalancing", "unknown"]
    memberCount: int
    members: list[GroupMember]
    unownedPartitions: Partitions
    capacity: str | None = Field(examples=["8 members, 6 partitions: 2 idle"])
    partitionLag: list[PartitionLag]
    source: str | None
    crossCheck: list[str]
    problem: str | None
    lag: GroupLagDoc | None = Field(default=None, description="null while no member heard from sends its lag status")


class PartitionInfo(_Document):
    partition: int
    owner: str | None
    mine: bool
    state: PartitionState
    position: int | None = Field(description="mine: the next offset to read")
    highWatermark: int | None
    lag: int | None = Field(description="mine: high watermark - position; others: log end - committed, "
                                         "from their owner's heartbeat")
    messagesPerSecond: float
    committed: int | None
    restoredRecords: int | None = Field(description="while restoring from the changelog: records read")
    restoreTotal: int | None
    lagSeconds: float | None = Field(description="mine: the oldest unconsumed record's age")
    lagSecondsBasis: Literal["observed", "at most", "at least"] | None = Field(
        description="how lagSeconds was found, hence how far to trust it (docs/lag.md)")
    lagStatus: LagStatusName | None = Field(description="mine: Burrow-style status over lag_window")
    lagStatusReason: str | None
    drainState: DrainStateName | None
    timeToDrainSeconds: float | None
    balanceDelaySeconds: float | None


class PartitionList(_Document):
    consumerId: str
    topic: str
    partitions: list[PartitionInfo]


DOCUMENT_MODELS = (BalanceList, CustomerBalance, NotFound, ConsumerGroupMetrics, RebalancingHistory, Health,
                   Liveness, GroupView, PartitionList)

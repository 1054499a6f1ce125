"""The group as its members describe it: heartbeats, group commands, and the view built from them.

Every member publishes a `MemberHeartbeat` about once a second to `<group>.members`
and a goodbye when it quits cleanly; any member may publish a `GroupCommand` that
all members carry out. `GroupView` turns what was read into the Group panel's rows.
The broker's own view (DescribeGroups) is broken on the embedded broker, so the
heartbeats are the primary source (docs/group-view.md).

Pure: no Kafka, no Textual. Times are passed in. Ages are measured on the senders'
clocks (`sent_at`), so members are assumed to have synchronised clocks (NTP, or one
machine), as Kafka's own record timestamps are.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from balance_tui.core.assignment import format_partitions, iso_ms

#: Heartbeats are published about this often.
HEARTBEAT_SECONDS = 1.0
#: A member without a heartbeat for longer than this is flagged as silent.
SILENCE_SECONDS = 2.5
#: Heartbeats older than this are history: ignored when read, and a member silent this long
#: (or twice its session timeout, if longer) is forgotten even without proof it is gone.
HISTORY_SECONDS = 30.0

#: The assignment strategies a command may ask for (the same names as `config.STRATEGIES`;
#: repeated so this module stays free of the settings machinery).
STRATEGY_NAMES = ("range", "roundrobin", "cooperative-sticky", "consumer")

SWITCH_STRATEGY = "switch_strategy"
#: Sent by the member that deleted the emptied group during a switch: the others rejoin at once.
GROUP_RESET = "group_reset"
COMMAND_KINDS = (SWITCH_STRATEGY, GROUP_RESET)
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class MemberHeartbeat:
    """What one member says about itself; `goodbye` marks its last word before a clean quit.

    Per-partition maps cover the partitions it owns: its position (next offset to read),
    the high watermark from its fetch responses (right on the embedded broker, unlike
    ListOffsets), and what it last committed. The lag fields come from its lag view
    (docs/lag.md); a member older than them sends none.
    """

    consumer_id: str
    host: str
    pid: int
    strategy: str
    status: str
    assignment: tuple[int, ...]
    generation: int | None
    lag: int | None
    rate: float
    work_ms: float
    sent_at: datetime
    session_timeout_ms: int
    position_by_partition: dict[int, int] = field(default_factory=dict)
    high_watermark_by_partition: dict[int, int] = field(default_factory=dict)
    committed_by_partition: dict[int, int] | None = None
    goodbye: bool = False
    #: The age of its oldest unconsumed record, over its partitions (None: unknown).
    lag_seconds: float | None = None
    #: The worst Burrow-style status of its partitions (`OK`, `WARN`, `STALL`, `STOP`, `REWIND`).
    lag_status: str | None = None
    #: The lab's alert rule on its lag: `ok`, `pending` or `firing` (None: no rule, `lag_alert_threshold = off`).
    lag_alert: str | None = None
    #: While firing: when the alert was raised.
    lag_alert_since: datetime | None = None


@dataclass(frozen=True)
class GroupCommand:
    """A request to every member of the group (today: switch the assignment strategy together)."""

    strategy: str
    requested_by: str
    requested_at: datetime
    command_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    kind: str = SWITCH_STRATEGY

    def timeline_text(self) -> str:
        """The timeline line every member writes when it carries the command out."""
        if self.kind == GROUP_RESET:
            return (f"group emptied and reset for {self.strategy} by {self.requested_by} "
                    f"at {iso_ms(self.requested_at)}")
        return (f"strategy switch to {self.strategy} requested by {self.requested_by} "
                f"at {iso_ms(self.requested_at)}")


# -- the wire format: one JSON object per record --------------------------------------------


def encode(message: MemberHeartbeat | GroupCommand) -> bytes:
    """The record value: compact JSON, plain numbers (no Decimal), ISO 8601 UTC times in µs."""
    if isinstance(message, GroupCommand):
        document: dict[str, Any] = {
            "type": "command", "v": _FORMAT_VERSION, "kind": message.kind, "strategy": message.strategy,
            "requested_by": message.requested_by, "requested_at": _wire_time(message.requested_at),
            "command_id": message.command_id,
        }
    else:
        document = {
            "type": "heartbeat", "v": _FORMAT_VERSION, "consumer_id": message.consumer_id,
            "host": message.host, "pid": message.pid, "strategy": message.strategy,
            "status": message.status, "assignment": list(message.assignment),
            "generation": message.generation, "lag": message.lag, "rate": round(message.rate, 3),
            "work_ms": message.work_ms, "sent_at": _wire_time(message.sent_at),
            "session_timeout_ms": message.session_timeout_ms,
            "position_by_partition": _encode_map(message.position_by_partition),
            "high_watermark_by_partition": _encode_map(message.high_watermark_by_partition),
            "committed_by_partition": (None if message.committed_by_partition is None
                                       else _encode_map(message.committed_by_partition)),
            "goodbye": message.goodbye,
            "lag_seconds": None if message.lag_seconds is None else round(message.lag_seconds, 1),
            "lag_status": message.lag_status, "lag_alert": message.lag_alert,
            "lag_alert_since": None if message.lag_alert_since is None else _wire_time(message.lag_alert_since),
        }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def decode(value: bytes | str | None) -> MemberHeartbeat | GroupCommand:
    """Parse a record value; ValueError for anything that is not a well-formed message.

    Unknown keys are ignored, so a newer member may add fields without breaking older ones.
    """
    if value is None:
        raise ValueError("empty record")
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    kind = document.get("type")
    if kind == "heartbeat":
        return _decode_heartbeat(document)
    if kind == "command":
        return _decode_command(document)
    raise ValueError(f"unknown message type {kind!r}")


def _decode_heartbeat(document: dict[str, Any]) -> MemberHeartbeat:
    committed = document.get("committed_by_partition")
    return MemberHeartbeat(
        consumer_id=_text(document, "consumer_id"),
        host=_text(document, "host", allow_empty=True),
        pid=_integer(document, "pid"),
        strategy=_text(document, "strategy"),
        status=_text(document, "status"),
        assignment=_partitions(document, "assignment"),
        generation=_integer(document, "generation", optional=True),
        lag=_integer(document, "lag", optional=True),
        rate=_number(document, "rate"),
        work_ms=_number(document, "work_ms"),
        sent_at=_moment(document, "sent_at"),
        session_timeout_ms=_integer(document, "session_timeout_ms"),
        position_by_partition=_partition_map(document, "position_by_partition"),
        high_watermark_by_partition=_partition_map(document, "high_watermark_by_partition"),
        committed_by_partition=None if committed is None else _partition_map(document, "committed_by_partition"),
        goodbye=_flag(document, "goodbye"),
        lag_seconds=_optional_number(document, "lag_seconds"),
        lag_status=_optional_text(document, "lag_status"),
        lag_alert=_optional_text(document, "lag_alert"),
        lag_alert_since=_moment(document, "lag_alert_since") if document.get("lag_alert_since") is not None else None,
    )


def _decode_command(document: dict[str, Any]) -> GroupCommand:
    kind = _text(document, "kind")
    if kind not in COMMAND_KINDS:
        raise ValueError(f"unknown command {kind!r}")
    strategy = _text(document, "strategy")
    if strategy not in STRATEGY_NAMES:
        raise ValueError(f"unknown strategy {strategy!r}")
    return GroupCommand(
        kind=kind, strategy=strategy, requested_by=_text(document, "requested_by"),
        requested_at=_moment(document, "requested_at"), command_id=_text(document, "command_id"),
    )


def _wire_time(moment: datetime) -> str:
    # Microseconds, so times survive the round trip exactly (a command is compared with a start time).
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _encode_map(values: dict[int, int]) -> dict[str, int]:
    return {str(partition): value for partition, value in sorted(values.items())}


def _require(document: dict[str, Any], key: str) -> Any:
    if key not in document:
        raise ValueError(f"missing {key!r}")
    return document[key]


def _text(document: dict[str, Any], key: str, allow_empty: bool = False) -> str:
    value = _require(document, key)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ValueError(f"{key!r} must be a non-empty string")
    return value


def _integer(document: dict[str, Any], key: str, optional: bool = False) -> Any:
    value = document.get(key) if optional else _require(document, key)
    if value is None and optional:
        return None
    # bool is an int in Python, but `true` is no pid.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key!r} must be an integer")
    return value


def _number(document: dict[str, Any], key: str) -> float:
    value = _require(document, key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{key!r} must be a finite number")
    return float(value)


def _optional_number(document: dict[str, Any], key: str) -> float | None:
    """A field newer members send: absent or null is None; a non-negative finite number otherwise."""
    if document.get(key) is None:
        return None
    value = _number(document, key)
    if value < 0:
        raise ValueError(f"{key!r} must not be negative")
    return value


def _optional_text(document: dict[str, Any], key: str) -> str | None:
    """A field newer members send: absent or null is None; a non-empty string otherwise (shown through `visible`)."""
    if document.get(key) is None:
        return None
    return _text(document, key)


def _flag(document: dict[str, Any], key: str) -> bool:
    value = document.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key!r} must be true or false")
    return value


def _partition_number(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key!r} must hold partition numbers")
    return value


def _partitions(document: dict[str, Any], key: str) -> tuple[int, ...]:
    value = _require(document, key)
    if not isinstance(value, list):
        raise ValueError(f"{key!r} must be a list")
    return tuple(sorted(_partition_number(item, key) for item in value))


def _partition_map(document: dict[str, Any], key: str) -> dict[int, int]:
    value = document.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be an object")
    result = {}
    for partition, offset in value.items():
        try:
            number = int(partition)
        except ValueError:
            raise ValueError(f"{key!r} has a key that is no partition: {partition!r}") from None
        result[_partition_number(number, key)] = _integer({key: offset}, key)
    return result


def _moment(document: dict[str, Any], key: str) -> datetime:
    value = _text(document, key)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{key!r} is not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{key!r} has no time zone: {value!r}")
    return moment.astimezone(UTC)


# -- the view ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    """One line of the Group panel."""

    consumer_id: str
    host: str
    pid: int
    strategy: str
    status: str
    partitions: tuple[int, ...]
    generation: int | None
    rate: float
    lag: int | None
    work_ms: float
    heartbeat_age: float
    silent: bool
    #: Seconds until the broker's session timeout runs out for a silent member (0 once
    #: passed: the rebalance is due); None while the member is heard from.
    rebalance_expected_in: float | None
    last_seen: datetime
    is_self: bool = False
    #: Where the row comes from: "heartbeats", or "broker" for a member only DescribeGroups lists
    #: (a plain Kafka consumer that is not balance-tui, for instance).
    source: str = "heartbeats"
    #: What the broker's DescribeGroups says this member owns; None where the broker does not tell.
    broker_partitions: tuple[int, ...] | None = None
    #: From its heartbeats (None from a member that does not send them): the age of its oldest
    #: unconsumed record, its partitions' worst Burrow-style status, its alert state and since when it fires.
    lag_seconds: float | None = None
    lag_status: str | None = None
    lag_alert: str | None = None
    lag_alert_since: datetime | None = None


@dataclass(frozen=True)
class Departure:
    """A member left the view: `reason` is "left" (goodbye), "gone (crashed)" or "gone (no heartbeat)"."""

    consumer_id: str
    reason: str
    at: datetime
    partitions: tuple[int, ...]

    def timeline_text(self) -> str:
        owned = f", owned {format_partitions(self.partitions)}" if self.partitions else ""
        return f"member {self.consumer_id} {self.reason}{owned}"


@dataclass(frozen=True)
class PartitionLag:
    """Group-wide lag of one partition: log end minus committed offset, as its owner last reported.

    `stale` when no heard-from member owns it now: the numbers are the last ones known, and
    the log may have grown since (nobody fetches it, so nobody sees its end).
    """

    partition: int
    owner: str | None
    committed: int | None
    log_end: int | None
    lag: int | None
    stale: bool


@dataclass(frozen=True)
class BrokerMember:
    """A group member as the broker's DescribeGroups answer lists it (assignment on our topic)."""

    client_id: str
    member_id: str
    host: str
    partitions: tuple[int, ...]
    group_instance_id: str | None = None


@dataclass(frozen=True)
class BrokerGroup:
    """The broker's DescribeGroups answer: state (Stable, PreparingRebalance, Empty, ...), protocol
    type (classic or consumer), assignor (range, roundrobin, cooperative-sticky, uniform), members."""

    state: str
    group_type: str
    assignor: str
    members: tuple[BrokerMember, ...]

    def summary(self) -> str:
        """`Stable, consumer protocol, assignor uniform`."""
        parts = [self.state]
        if self.group_type:
            parts.append(f"{self.group_type} protocol")
        if self.assignor:
            parts.append(f"assignor {self.assignor}")
        return ", ".join(parts)


@dataclass
class _Known:
    heartbeat: MemberHeartbeat
    #: Order of arrival in this view: "after" comparisons between members never use clocks.
    sequence: int


class GroupView:
    """The group as this terminal sees it from heartbeats; feed it with `observe`, read `rows`."""

    def __init__(self, own_consumer_id: str | None = None) -> None:
        self.own_consumer_id = own_consumer_id
        self._members: dict[str, _Known] = {}
        #: Newest `sent_at` per member, goodbyes included, so a late or replayed heartbeat
        #: never brings back a member that said goodbye.
        self._newest_sent: dict[str, datetime] = {}
        self._sequence = 0
        self._departures: list[Departure] = []
        #: Last partition figures reported by any owner: (committed, log end).
        self._last_partition_figures: dict[int, tuple[int | None, int | None]] = {}
        #: None: unknown or unsupported; else the broker's latest DescribeGroups answer.
        self.broker_group: BrokerGroup | None = None
        #: False once this broker's DescribeGroups proved broken (it lists no members, even us).
        self.broker_describes: bool | None = None

    @property
    def broker_members(self) -> list[BrokerMember] | None:
        """The members of the broker's answer, None where the broker does not tell."""
        if self.broker_group is None or not self.broker_group.members:
            return None
        return list(self.broker_group.members)

    @broker_members.setter
    def broker_members(self, members: list[BrokerMember] | None) -> None:
        self.broker_group = None if members is None else BrokerGroup("", "", "", tuple(members))

    # -- feeding ----------------------------------------------------------------------------

    def observe(self, heartbeat: MemberHeartbeat, now: datetime) -> bool:
        """Take in a heartbeat; False if ignored (history, or not newer than one already seen)."""
        member = heartbeat.consumer_id
        if is_history(heartbeat, now):
            return False
        newest = self._newest_sent.get(member)
        if newest is not None and heartbeat.sent_at <= newest:
            return False
        self._newest_sent[member] = heartbeat.sent_at
        if heartbeat.goodbye:
            known = self._members.pop(member, None)
            if known is not None:
                self._departures.append(Departure(member, "left", now, known.heartbeat.assignment))
            return True
        self._sequence += 1
        self._members[member] = _Known(heartbeat, self._sequence)
        self._remember_partition_figures(heartbeat)
        return True

    def take_departures(self) -> list[Departure]:
        """Departures since the last call (for timeline lines); `rows` and `observe` record them."""
        departures, self._departures = self._departures, []
        return departures

    # -- reading ----------------------------------------------------------------------------

    def rows(self, now: datetime) -> list[MemberRow]:
        """One row per member, sorted by consumer id; drops silent members proven or presumed gone.

        Where the broker describes the group, each row carries what the broker says the member
        owns, and members the broker lists that send no heartbeats get rows of their own.
        """
        self._drop_gone(now)
        listed = {member.client_id: member for member in self.broker_members or ()}
        # Mid-rebalance the broker's assignment is not final: only a settled group's is shown beside ours.
        settled = self.broker_group is None or self.broker_group.state in ("", "Stable")
        rows = []
        for member, known in sorted(self._members.items()):
            heartbeat = known.heartbeat
            age = _age(heartbeat, now)
            silent = age > SILENCE_SECONDS
            rows.append(MemberRow(
                consumer_id=member, host=heartbeat.host, pid=heartbeat.pid, strategy=heartbeat.strategy,
                status=heartbeat.status, partitions=heartbeat.assignment, generation=heartbeat.generation,
                rate=heartbeat.rate, lag=heartbeat.lag, work_ms=heartbeat.work_ms, heartbeat_age=age,
                silent=silent,
                rebalance_expected_in=(max(0.0, heartbeat.session_timeout_ms / 1000.0 - age)
                                       if silent else None),
                last_seen=heartbeat.sent_at, is_self=member == self.own_consumer_id,
                broker_partitions=listed[member].partitions if member in listed and settled else None,
                lag_seconds=heartbeat.lag_seconds, lag_status=heartbeat.lag_status, lag_alert=heartbeat.lag_alert,
                lag_alert_since=heartbeat.lag_alert_since,
            ))
        for client_id, broker_member in sorted(listed.items()):
            if client_id in self._members:
                continue
            rows.append(MemberRow(
                consumer_id=client_id, host=broker_member.host.lstrip("/"), pid=0,
                strategy=self.broker_group.assignor if self.broker_group else "", status="not balance-tui",
                partitions=broker_member.partitions, generation=None, rate=0.0, lag=None, work_ms=0.0,
                heartbeat_age=0.0, silent=False, rebalance_expected_in=None, last_seen=now, source="broker",
                broker_partitions=broker_member.partitions,
            ))
        return rows

    def formed_on(self, strategy: str, since: datetime) -> str | None:
        """Another member already assigned on `strategy` by a heartbeat sent after `since`, if any.

        Read after a group-wide switch: the group re-formed on the new strategy without this member
        (it was frozen, or read the command late), so resetting it now would only hurt the members in it.
        """
        for member, known in sorted(self._members.items()):
            heartbeat = known.heartbeat
            if (member != self.own_consumer_id and heartbeat.strategy == strategy and heartbeat.assignment
                    and heartbeat.sent_at > since):
                return member
        return None

    def members(self) -> list[MemberHeartbeat]:
        """The latest heartbeat of every member in the view (as of the last `rows`)."""
        return [known.heartbeat for _, known in sorted(self._members.items())]

    def owners(self) -> dict[int, str]:
        """partition -> consumer id claiming it; if two claim one (mid-rebalance), the latest heard."""
        owners: dict[int, tuple[int, str]] = {}
        for member, known in self._members.items():
            for partition in known.heartbeat.assignment:
                if partition not in owners or owners[partition][0] < known.sequence:
                    owners[partition] = (known.sequence, member)
        return {partition: member for partition, (_, member) in owners.items()}

    def unowned_partitions(self, partitions: int) -> list[int]:
        """Partitions of a `partitions`-partition topic that no member claims (a silent one still does).

        A member only the broker lists (no heartbeats: not balance-tui) claims what the broker assigns it.
        """
        owned = set(self.owners())
        owned.update(p for member in self._broker_only() for p in member.partitions)
        return [p for p in range(partitions) if p not in owned]

    def _broker_only(self) -> list[BrokerMember]:
        return [member for member in self.broker_members or () if member.client_id not in self._members]

    def capacity_text(self, partitions: int) -> str:
        """`8 members, 6 partitions: 2 idle`; the idle part only when members outnumber partitions."""
        count = len(self._members) + len(self._broker_only())
        text = f"{_plural(count, 'member')}, {_plural(partitions, 'partition')}"
        if count > partitions:
            text += f": {count - partitions} idle"
        return text

    def partition_lag(self, partitions: int, now: datetime) -> list[PartitionLag]:
        """Group-wide lag for every partition: committed offset against the log end.

        The owner reports both (its commits, and the high watermark of its fetches); when it
        did not report commits, its position stands in (at most one commit interval ahead).
        """
        owners = self.owners()
        result = []
        for partition in range(partitions):
            owner = owners.get(partition)
            heard = owner is not None and _age(self._members[owner].heartbeat, now) <= SILENCE_SECONDS
            committed, log_end = self._last_partition_figures.get(partition, (None, None))
            lag = max(0, log_end - committed) if committed is not None and log_end is not None else None
            result.append(PartitionLag(partition, owner, committed, log_end, lag, stale=not heard))
        return result

    def log_end(self, partition: int) -> int | None:
        """The log end of `partition` as its owner last reported it (None if nobody did)."""
        return self._last_partition_figures.get(partition, (None, None))[1]

    # -- the broker's view, where it has one ---------------------------------------------------

    def source_text(self) -> str:
        """Which source the panel shows, in its own words."""
        if self.broker_members is None:
            if self.broker_describes is False:
                return "source: member heartbeats (this broker's DescribeGroups lists no members)"
            return "source: member heartbeats (broker has no DescribeGroups)"
        state = self.broker_group.summary() if self.broker_group is not None else ""
        return ("source: member heartbeats, cross-checked with the broker's DescribeGroups"
                + (f" (group {state})" if state else ""))

    def cross_check(self) -> list[str]:
        """Disagreements between the heartbeats and DescribeGroups (empty when none or unsupported).

        Only a settled group is compared: in the middle of a rebalance the broker's assignment is
        not final, and members disagree with it for a moment by design.
        """
        if self.broker_members is None:
            return []
        if self.broker_group is not None and self.broker_group.state not in ("", "Stable"):
            return [f"the broker says the group is {self.broker_group.state}: assignments are being handed out"]
        notes = []
        broker = {member.client_id: member for member in self.broker_members}
        for member, known in sorted(self._members.items()):
            listed = broker.get(member)
            if listed is None:
                notes.append(f"{member} sends heartbeats but the broker does not list it")
            elif listed.partitions != known.heartbeat.assignment:
                notes.append(f"{member}: broker says {format_partitions(listed.partitions)}, "
                             f"member says {format_partitions(known.heartbeat.assignment)}")
        for client_id in sorted(set(broker) - set(self._members)):
            notes.append(f"{client_id} is listed by the broker but sends no heartbeats")
        return notes

    # -- internals ----------------------------------------------------------------------------

    def _remember_partition_figures(self, heartbeat: MemberHeartbeat) -> None:
        committed = heartbeat.committed_by_partition
        for partition in heartbeat.assignment:
            done = (committed.get(partition) if committed is not None
                    else heartbeat.position_by_partition.get(partition))
            end = heartbeat.high_watermark_by_partition.get(partition)
            known_done, known_end = self._last_partition_figures.get(partition, (None, None))
            self._last_partition_figures[partition] = (
                done if done is not None else known_done,
                end if end is not None else known_end,
            )

    def _drop_gone(self, now: datetime) -> None:
        """Drop silent members whose partitions others now own, or who are silent too long.

        Evidence must come from heartbeats that arrived after the silent member's last one:
        a partition claimed by two members is normal in the middle of a rebalance.
        """
        for member, known in list(self._members.items()):
            heartbeat = known.heartbeat
            age = _age(heartbeat, now)
            if age <= SILENCE_SECONDS:
                continue
            later = [other.heartbeat for name, other in self._members.items()
                     if name != member and other.sequence > known.sequence]
            reason = None
            if heartbeat.assignment:
                claimed = {p for other in later for p in other.assignment}
                if claimed.issuperset(heartbeat.assignment):
                    reason = "gone (crashed)"
            elif heartbeat.generation is not None and any(
                    other.generation is not None and other.generation > heartbeat.generation for other in later):
                # An idle member has no partitions to hand over: a newer generation without it says it.
                reason = "gone (crashed)"
            if reason is None and age > forget_after_seconds(heartbeat):
                reason = "gone (no heartbeat)"
            if reason is not None:
                del self._members[member]
                self._departures.append(Departure(member, reason, now, heartbeat.assignment))


def export_members(view: GroupView, now: datetime) -> list[dict[str, Any]]:
    """The export's `group`: `{consumerId, status, assignedPartitions, lag, lastSeen}` per member, and
    `lagSeconds`, `lagStatus`, `lagAlert`, `lagAlertSince` (null from a member that does not send them)."""
    return [{
        "consumerId": row.consumer_id,
        "status": "Silent" if row.silent else row.status,
        "assignedPartitions": list(row.partitions),
        "lag": row.lag,
        "lastSeen": iso_ms(row.last_seen),
        "lagSeconds": row.lag_seconds,
        "lagStatus": row.lag_status,
        "lagAlert": row.lag_alert,
        "lagAlertSince": iso_ms(row.lag_alert_since) if row.lag_alert_since is not None else None,
    } for row in view.rows(now)]


def export_partitions(view: GroupView, partitions: int, now: datetime) -> list[dict[str, Any]]:
    """The export's `groupPartitions`: per partition its owner, committed offset, log end and lag."""
    return [{"partition": lag.partition, "owner": lag.owner, "committed": lag.committed, "logEnd": lag.log_end,
             "lag": lag.lag, "stale": lag.stale} for lag in view.partition_lag(partitions, now)]


def silence_text(row: MemberRow) -> str:
    """`silent 3 s, rebalance expected in 4 s` for a silent member; empty for the others."""
    if not row.silent or row.rebalance_expected_in is None:
        return ""
    silent_for = f"silent {row.heartbeat_age:.0f} s"
    if row.rebalance_expected_in > 0:
        return f"{silent_for}, rebalance expected in {math.ceil(row.rebalance_expected_in):.0f} s"
    return f"{silent_for}, rebalance due (session timeout passed)"


@dataclass(frozen=True)
class GroupLag:
    """The group's lag as its members' heartbeats tell it: the worst Burrow-style status and who has it,
    the members whose lag alert fires and since when the group is in alert (the earliest of them)."""

    status: str | None
    """None when no heard member sends a status (members older than the lag view, or none read yet)."""
    worst: tuple[str, ...]
    """The members with that status (none when it is OK)."""
    alerting: tuple[str, ...]
    alert_since: datetime | None
    lag_seconds: float | None
    """The largest of the members' lag in seconds: the group is as late as its latest member."""


#: Burrow's order of severity (`core.lag.LagStatus`), repeated so the names from the wire are compared as sent.
_STATUS_SEVERITY = {"OK": 1, "WARN": 2, "STOP": 4, "STALL": 5, "REWIND": 6}


def group_lag(rows: list[MemberRow] | tuple[MemberRow, ...]) -> GroupLag:
    """`GroupLag` over the members heard from (a silent member's last word is no longer its state)."""
    heard = [row for row in rows if row.source == "heartbeats" and not row.silent]
    rated = [row for row in heard if row.lag_status in _STATUS_SEVERITY]
    status = max((row.lag_status for row in rated), key=lambda name: _STATUS_SEVERITY.get(name or "", 0),
                 default=None)
    worst = tuple(row.consumer_id for row in rated if row.lag_status == status and status != "OK")
    alerting = [row for row in heard if row.lag_alert == "firing"]
    since = min((row.lag_alert_since for row in alerting if row.lag_alert_since is not None), default=None)
    ages = [row.lag_seconds for row in heard if row.lag_seconds is not None]
    return GroupLag(status=status, worst=worst, alerting=tuple(row.consumer_id for row in alerting),
                    alert_since=since, lag_seconds=max(ages) if ages else None)


def _age(heartbeat: MemberHeartbeat, now: datetime) -> float:
    # A heartbeat "from the future" (a sender's clock slightly ahead) counts as just sent.
    return max(0.0, (now - heartbeat.sent_at).total_seconds())


def forget_after_seconds(heartbeat: MemberHeartbeat) -> float:
    """How long after it was sent a heartbeat stops counting: 30 s, or twice the session timeout."""
    return max(HISTORY_SECONDS, 2 * heartbeat.session_timeout_ms / 1000.0)


def is_history(heartbeat: MemberHeartbeat, now: datetime) -> bool:
    """True for a heartbeat too old to say anything about the group now."""
    return (now - heartbeat.sent_at).total_seconds() > forget_after_seconds(heartbeat)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"

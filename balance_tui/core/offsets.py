"""Provides where each partition stands for one member: positions, log ends, commits, rates and lag.

The consumer worker feeds it from three places: the records it reads (positions), librdkafka's
statistics (the high watermark of fetch responses, and the fetch position of partitions with
nothing read yet), and its commits. Everything derived (lag, rates, where reading goes on) is
computed here. Pure: no Kafka, no Textual; times are passed in.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: librdkafka's "no offset" (`OFFSET_INVALID`): the committed offset decides.
OFFSET_INVALID = -1001
#: Position samples kept for the per-partition rate: the window it is measured over.
RATE_WINDOW_SECONDS = 5.0


@dataclass(frozen=True)
class Statistics:
    """What balance-tui reads of one librdkafka statistics document."""

    #: Per partition of the source topic: librdkafka's per-partition statistics.
    partitions: dict[int, dict[str, Any]]
    #: True when every broker the client knows (node id >= 0) is UP; False if one is not; None: none known.
    all_brokers_up: bool | None
    #: Some connection is UP, the group coordinator's (a logical broker) included.
    any_broker_up: bool


def parse_statistics(stats_json: str, topic: str) -> Statistics | None:
    """The parts of a statistics document balance-tui uses; None if it is not JSON."""
    try:
        stats = json.loads(stats_json)
    except ValueError:
        return None
    raw = stats.get("topics", {}).get(topic, {}).get("partitions", {})
    partitions = {int(key): values for key, values in raw.items() if int(key) >= 0}
    connections = stats.get("brokers", {}).values()
    states = [broker.get("state") == "UP" for broker in connections if broker.get("nodeid", -1) >= 0]
    # The group coordinator's connection is a logical broker (node id -1), and a broker answering on it is up.
    any_up = any(broker.get("state") == "UP" for broker in connections)
    return Statistics(partitions=partitions, all_brokers_up=all(states) if states else None, any_broker_up=any_up)


class PartitionOffsets:
    """Positions, high watermarks and commits of the partitions this member reads."""

    def __init__(self) -> None:
        #: Next offset to read, per partition: the offset after the last record read.
        self.position: dict[int, int] = {}
        #: Log end per partition: the high watermark of fetch responses, or ListOffsets while paused.
        self.high_watermark: dict[int, int] = {}
        #: What this member last committed, per owned partition.
        self.committed: dict[int, int] = {}
        #: librdkafka's fetch position of partitions with nothing read yet (statistics `next_offset`).
        self.fetch_start: dict[int, int] = {}
        #: Where a restore sent each partition (its resume offset, or the first offset), until it is forgotten.
        self.start_offset: dict[int, int] = {}
        #: The producer's timestamp (epoch seconds) of the last record read per partition, for lag in seconds.
        self.last_record_timestamp: dict[int, float] = {}
        self._samples: deque[tuple[float, dict[int, int]]] = deque()

    # -- feeding ---------------------------------------------------------------------------

    def apply_statistics(self, statistics: Statistics, not_fetching: set[int], restoring: set[int]) -> None:
        """Take in the high watermark and fetch position of each partition from the statistics.

        The high watermark carried in fetch responses is right on every broker (ListOffsets is
        not on Tansu). For a partition that is not fetched (paused, restoring) it is stale, so only
        a higher figure is taken; a fetched one is right even when it went down (a restarted broker).
        """
        for partition, values in statistics.partitions.items():
            high = values.get("hi_offset", -1)
            if high is not None and high >= 0:
                if partition in not_fetching or partition in restoring:
                    self.raise_high_watermark(partition, high)
                else:
                    self.high_watermark[partition] = high
            # Where fetching starts, for lag before the first record is read (a partition already
            # at its end never delivers one). Display only: commits use positions of records read.
            next_offset = values.get("next_offset", -1)
            if values.get("fetch_state") == "active" and next_offset is not None and next_offset >= 0 \
                    and values.get("fetchq_cnt", 1) == 0 and partition not in restoring:
                self.fetch_start[partition] = next_offset

    def raise_high_watermark(self, partition: int, high: int) -> None:
        """Keep the larger of what is known and `high` (a ListOffsets answer, a stale fetch figure)."""
        self.high_watermark[partition] = max(high, self.high_watermark.get(partition, 0))

    def restored_to(self, partition: int, start: int, resume: int | None) -> None:
        """A restore sent `partition` to `start` (`resume`: the offset, None for the beginning)."""
        self.start_offset[partition] = start
        self.fetch_start.pop(partition, None)  # what the statistics said was before the seek
        if resume is not None:
            self.position[partition] = resume

    def commits_acknowledged(self, offsets: Iterable[tuple[int, int]], owned: set[int]) -> None:
        for partition, offset in offsets:
            if offset >= 0 and partition in owned:
                self.committed[partition] = offset

    def forget(self, partition: int) -> None:
        """The partition left this member: nothing about it is known any more."""
        for figures in (self.position, self.fetch_start, self.start_offset, self.committed,
                        self.last_record_timestamp):
            figures.pop(partition, None)

    # -- reading ---------------------------------------------------------------------------

    def next_offset(self, partition: int) -> int:
        """Where reading `partition` goes on: after the last record read, else where its restore
        sent it, else the committed offset (`OFFSET_INVALID`; a partition still restoring is held at
        a real offset by its caller instead, see `rebalance.FIRST_OFFSET`)."""
        return self.position.get(partition, self.start_offset.get(partition, OFFSET_INVALID))

    def known_high(self, partition: int) -> int | None:
        """The log end; what was read is part of the log too (statistics come once a second)."""
        high = self.high_watermark.get(partition)
        position = self.position.get(partition)
        if position is None or (high is not None and high >= position):
            return high
        return position

    def shown_position(self, partition: int, restoring: set[int]) -> int | None:
        """The next offset to read; before the first record, librdkafka's fetch position (display only)."""
        position = self.position.get(partition)
        if position is None and partition not in restoring:
            position = self.fetch_start.get(partition)
        return position

    def lag_by_partition(self, owned: Iterable[int], restoring: set[int]) -> dict[int, int]:
        """Log end minus position, for every owned partition whose both figures are known."""
        lags = {}
        for partition in owned:
            high = self.high_watermark.get(partition)
            position = self.shown_position(partition, restoring)
            if high is not None and position is not None:
                lags[partition] = max(0, high - position)
        return lags

    def rates(self, now: float) -> dict[int, float]:
        """Records a second per partition over the last few seconds (offsets advance one per record)."""
        samples = self._samples
        samples.append((now, dict(self.position)))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW_SECONDS:
            samples.popleft()
        if len(samples) < 2:
            return {}
        then, old = samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return {}
        return {p: (position - old[p]) / elapsed for p, position in self.position.items()
                if p in old and position >= old[p]}

    def owned_figures(self, owned: Iterable[int], restoring: set[int]) -> tuple[dict[int, int], dict[int, int],
                                                                               dict[int, int]]:
        """(positions, high watermarks, commits) of the owned partitions, for a heartbeat."""
        owned = sorted(owned)
        positions = {p: pos for p in owned if (pos := self.shown_position(p, restoring)) is not None}
        highs = {p: high for p in owned if (high := self.known_high(p)) is not None}
        commits = {p: self.committed[p] for p in owned if p in self.committed}
        return positions, highs, commits


def total_lag(lags: Mapping[int, int], owned: Iterable[int]) -> int | None:
    """Lag over my partitions: 0 when I own none, None while any owned partition's lag is unknown.

    A sum over the known ones only would read 0 for a member that just took partitions whose
    ends no fetch has told it yet: "caught up" while it has everything still to read.
    """
    if all(partition in lags for partition in owned):
        return sum(lags.values())
    return None

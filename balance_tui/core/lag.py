"""Provides consumer lag over time: bounded per-partition series, lag in messages and in seconds,
time to drain, Burrow's evaluation (OK, WARN, STALL, STOP, REWIND), the lab's alert rule, and
a text chart.

Pure: no Kafka, no Textual. Every time is a float of seconds on one clock chosen by the caller;
use epoch seconds (`time.time()`, a record's timestamp in ms / 1000) wherever record timestamps
are involved, so that "now minus the producer's timestamp" means something. The definitions,
their limits and how the evaluation maps to Burrow's rules are in docs/lag.md.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from itertools import pairwise

#: Defaults: ten minutes of history at one kept sample per second (601 samples per partition).
DEFAULT_RETENTION_SECONDS = 600.0
DEFAULT_RESOLUTION_SECONDS = 1.0
#: Rebalance markers kept (also pruned by the retention).
MAX_MARKERS = 256
#: Burrow-style evaluation window, and how much of it the samples must cover for WARN/STALL.
DEFAULT_EVALUATION_WINDOW_SECONDS = 60.0
MIN_COMPLETE = 0.5
#: Rates (arrivals, consumption) are measured over this much recent history.
DEFAULT_RATE_SECONDS = 10.0


# -- readings and samples ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionReading:
    """What the worker knows about one partition at one moment."""

    log_end: int
    """The log end offset (high watermark): the offset the next produced record will get."""
    position: int | None = None
    """The next offset this consumer will read; None when it does not consume the partition."""
    committed: int | None = None
    """The group's committed offset (the next offset to read after a restart); None if none yet."""
    last_commit_time: float | None = None
    """When a commit for this partition was last acknowledged, whatever its offset."""
    last_record_timestamp: float | None = None
    """The producer's timestamp of the last record consumed from this partition."""


class TimeLagBasis(str, Enum):
    """How a lag in seconds was obtained, hence how far to trust it (docs/lag.md)."""

    OBSERVED = "observed"
    """From the sample at which the log end first passed the oldest unconsumed offset:
    the record was there by then, so the value is low by at most one sample interval."""
    AT_MOST = "at most"
    """From the producer timestamp of the last consumed record: the oldest unconsumed record
    was produced after it, so its age is at most this."""
    AT_LEAST = "at least"
    """The oldest unconsumed record arrived before the retained history began."""


@dataclass(frozen=True, slots=True)
class LagSample:
    """One kept reading of a partition, with its lags."""

    time: float
    log_end: int
    position: int | None
    committed: int | None
    lag: int | None
    """Messages behind: log end minus the position (minus the committed offset without a position)."""
    committed_lag: int | None
    """Log end minus the committed offset: the lag Burrow evaluates."""
    lag_seconds: float | None
    """Age of the oldest unconsumed record (0 when caught up); None when unknown."""
    lag_seconds_basis: TimeLagBasis | None
    last_commit_time: float | None
    last_record_timestamp: float | None

    @property
    def consumer_offset(self) -> int | None:
        """Where the consumer is: its position, else the committed offset."""
        return self.position if self.position is not None else self.committed


@dataclass(frozen=True, slots=True)
class GroupSample:
    """The partitions of one `LagTracker.record()` call together."""

    time: float
    lag: int
    """Sum of the partitions' known lags (messages)."""
    committed_lag: int
    lag_seconds: float | None
    """The largest known lag in seconds: the group is as late as its latest partition."""
    partitions: int
    unknown: int
    """Partitions whose lag is unknown (no position and no commit yet)."""


@dataclass(frozen=True, slots=True)
class Marker:
    """Something to show on a lag chart's time axis: a rebalance, a strategy change, a restore."""

    time: float
    kind: str
    """"assigned", "revoked", "lost", "restored", "strategy", or anything else (drawn as *)."""
    detail: str = ""


def _lag(log_end: int, offset: int | None) -> int | None:
    return None if offset is None else max(0, log_end - offset)


def time_lag(history: Sequence[LagSample], offset: int | None, log_end: int, now: float,
             last_record_timestamp: float | None) -> tuple[float, TimeLagBasis] | None:
    """Age in seconds of the record at `offset` (the oldest unconsumed one), and how it was found.

    `history` is the partition's samples, oldest first, log ends non-decreasing. None when
    nothing is known (no offset, or the record predates the history and no timestamp helps).
    """
    if offset is None:
        return None
    if offset >= log_end:
        return 0.0, TimeLagBasis.OBSERVED
    first_with_it = bisect_right(history, offset, key=lambda sample: sample.log_end) if history else 0
    if 0 < first_with_it < len(history):
        return max(0.0, now - history[first_with_it].time), TimeLagBasis.OBSERVED
    if history and first_with_it == len(history):
        return 0.0, TimeLagBasis.OBSERVED  # it arrived after the newest sample: only this reading shows it
    if last_record_timestamp is not None:
        return max(0.0, now - last_record_timestamp), TimeLagBasis.AT_MOST
    if history:
        return max(0.0, now - history[0].time), TimeLagBasis.AT_LEAST
    return None


def balance_delay(now: float, lag: int | None, last_applied_timestamp: float | None) -> float | None:
    """How far behind real time the balances of a partition's customers are, in seconds.

    0 when the partition is caught up (a balance is current however long ago its customer's
    last transaction was); else now minus the producer timestamp of the last transaction
    applied from the partition: every transaction up to that moment is in the balances, none
    after. The same value holds for each customer of the partition. None when unknown.
    """
    if lag == 0:
        return 0.0
    if lag is None or last_applied_timestamp is None:
        return None
    return max(0.0, now - last_applied_timestamp)


# -- one partition's series -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rates:
    """Messages per second over a stretch of recent history."""

    arrival: float
    """Growth of the log end."""
    consumption: float | None
    """Advance of the consumer's offset; None when unknown or when it went back (a rewind)."""
    seconds: float
    """The stretch the rates were measured over."""


class DrainState(str, Enum):
    CAUGHT_UP = "caught up"
    DRAINING = "draining"
    NOT_DRAINING = "not draining"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Drain:
    """Time to drain a lag at the current rates."""

    state: DrainState
    seconds: float | None
    """Seconds until the lag is gone (0 when caught up); None unless draining or caught up."""
    lag: int | None
    arrival_rate: float | None
    consumption_rate: float | None


def drain_estimate(lag: int | None, arrival_rate: float | None, consumption_rate: float | None) -> Drain:
    """Time to drain `lag` when messages arrive at `arrival_rate` and are consumed at `consumption_rate`.

    The backlog shrinks at consumption minus arrivals; when arrivals keep up with or outpace
    consumption (the lab's one saturated worker at Black Friday) it never drains.
    """
    if lag == 0:
        return Drain(DrainState.CAUGHT_UP, 0.0, 0, arrival_rate, consumption_rate)
    if lag is None or arrival_rate is None or consumption_rate is None:
        return Drain(DrainState.UNKNOWN, None, lag, arrival_rate, consumption_rate)
    shrinking = consumption_rate - arrival_rate
    if shrinking <= 0:
        return Drain(DrainState.NOT_DRAINING, None, lag, arrival_rate, consumption_rate)
    return Drain(DrainState.DRAINING, lag / shrinking, lag, arrival_rate, consumption_rate)


class PartitionSeries:
    """A partition's lag samples over the last `retention` seconds, at most one per `resolution`.

    Appending is O(1). The newest sample always is the latest reading, and stays only if it
    is at least `resolution` after the one before it (else the next reading replaces it), so
    older samples are at least `resolution` apart and memory stays within
    retention / resolution + 2 samples.
    """

    def __init__(self, retention: float = DEFAULT_RETENTION_SECONDS,
                 resolution: float = DEFAULT_RESOLUTION_SECONDS) -> None:
        if retention <= 0 or resolution <= 0:
            raise ValueError("retention and resolution must be positive")
        self.retention = retention
        self.resolution = resolution
        self._samples: deque[LagSample] = deque(maxlen=math.ceil(retention / resolution) + 2)

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def latest(self) -> LagSample | None:
        return self._samples[-1] if self._samples else None

    def append(self, time: float, reading: PartitionReading) -> LagSample:
        """Add a reading taken at `time` (not before the latest one) and return its sample."""
        samples = self._samples
        if samples and time < samples[-1].time:
            raise ValueError(f"samples must come in time order: {time} is before {samples[-1].time}")
        if samples and reading.log_end < samples[-1].log_end:
            samples.clear()  # the log end went back: a recreated topic (restarted broker), a new history
        if len(samples) >= 2 and samples[-1].time - samples[-2].time < self.resolution:
            samples.pop()  # the newest was provisional: too close to the one before it
        horizon = time - self.retention
        while samples and samples[0].time < horizon:
            samples.popleft()
        offset = reading.position if reading.position is not None else reading.committed
        found = time_lag(samples, offset, reading.log_end, time, reading.last_record_timestamp)
        sample = LagSample(
            time=time, log_end=reading.log_end, position=reading.position, committed=reading.committed,
            lag=_lag(reading.log_end, offset), committed_lag=_lag(reading.log_end, reading.committed),
            lag_seconds=found[0] if found else None, lag_seconds_basis=found[1] if found else None,
            last_commit_time=reading.last_commit_time, last_record_timestamp=reading.last_record_timestamp,
        )
        samples.append(sample)
        return sample

    def window(self, since: float, until: float | None = None) -> list[LagSample]:
        """The samples with since <= time <= until (until: the newest), oldest first."""
        samples = list(self._samples)
        start = bisect_left(samples, since, key=lambda sample: sample.time)
        end = len(samples) if until is None else bisect_right(samples, until, key=lambda sample: sample.time)
        return samples[start:end]

    def rates(self, now: float, over: float = DEFAULT_RATE_SECONDS) -> Rates | None:
        """Arrival and consumption rates from the newest sample back to `over` seconds before `now`."""
        samples = self._samples
        if len(samples) < 2:
            return None
        last = samples[-1]
        first = samples[0]
        for sample in reversed(samples):
            if sample.time <= now - over:
                first = sample
                break
        seconds = last.time - first.time
        if seconds <= 0:
            return None
        consumption = None
        if first.consumer_offset is not None and last.consumer_offset is not None:
            advanced = last.consumer_offset - first.consumer_offset
            consumption = advanced / seconds if advanced >= 0 else None
        return Rates(arrival=(last.log_end - first.log_end) / seconds, consumption=consumption, seconds=seconds)

    def drain(self, now: float, over: float = DEFAULT_RATE_SECONDS) -> Drain:
        """Time to drain the current lag at the rates of the last `over` seconds."""
        latest = self.latest
        if latest is None:
            return drain_estimate(None, None, None)
        rates = self.rates(now, over)
        if rates is None:
            return drain_estimate(latest.lag, None, None)
        return drain_estimate(latest.lag, rates.arrival, rates.consumption)

    def evaluate(self, now: float, window: float = DEFAULT_EVALUATION_WINDOW_SECONDS,
                 allowed_lag: int = 0) -> Evaluation:
        """Burrow's status of this partition over the last `window` seconds (see `evaluate`)."""
        return evaluate(self.window(now - window), now, window, allowed_lag)


# -- Burrow's evaluation ----------------------------------------------------------------------


class LagStatus(IntEnum):
    """Burrow's partition statuses, in its order of severity (Burrow's numbers; it has no 0 or 3 here)."""

    OK = 1
    WARN = 2
    STOP = 4
    STALL = 5
    REWIND = 6

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A status with the reason, in words, and how much of the window the samples covered."""

    status: LagStatus
    reason: str
    complete: float
    """Share of the window the samples with a committed offset span (0..1)."""
    committed_lag: int | None


def evaluate(samples: Sequence[LagSample], now: float, window: float = DEFAULT_EVALUATION_WINDOW_SECONDS,
             allowed_lag: int = 0) -> Evaluation:
    """Burrow's rules on one partition's samples of the last `window` seconds (docs/lag.md).

    Burrow evaluates one stored entry per commit; here every sample with a committed offset
    is such an entry (the worker commits every second). In Burrow's order:
    no lag (<= `allowed_lag`) now: OK; no commit acknowledged for longer than the window, and
    the consumer was not caught up anywhere in it: STOP; the committed offset went back and
    has not come back since: REWIND; the lag was above `allowed_lag` in every sample, and the
    committed offset never moved: STALL, the lag never fell: WARN; else OK. STALL and WARN
    need the samples to cover MIN_COMPLETE of the window.
    """
    if window <= 0:
        raise ValueError("the evaluation window must be positive")
    entries = [sample for sample in samples if sample.committed is not None and sample.time >= now - window]
    if not entries:
        return Evaluation(LagStatus.OK, "no committed offset in the window", 0.0, None)
    complete = min(1.0, (entries[-1].time - entries[0].time) / window)
    last = entries[-1]
    lag = last.committed_lag
    assert lag is not None and last.committed is not None
    if lag <= allowed_lag:
        return Evaluation(LagStatus.OK, f"lag {lag:,}", complete, lag)

    if last.last_commit_time is not None and now - last.last_commit_time > window:
        caught_up_lately = any(sample.log_end <= last.committed for sample in samples)
        if not caught_up_lately:
            return Evaluation(LagStatus.STOP, f"no commit for {now - last.last_commit_time:.0f}s "
                              f"(window {window:g}s), lag {lag:,}", complete, lag)

    for index in range(1, len(entries)):
        before, after = entries[index - 1].committed, entries[index].committed
        assert before is not None and after is not None
        if after < before:
            recovered = any(later.committed >= before for later in entries[index:])  # type: ignore[operator]
            if not recovered:
                return Evaluation(LagStatus.REWIND, f"committed offset went back from {before:,} to {after:,}",
                                  complete, lag)
            break  # Burrow looks at the first rewind only

    lags = [sample.committed_lag for sample in entries]
    if complete >= MIN_COMPLETE and all(value > allowed_lag for value in lags):  # type: ignore[operator]
        if all(sample.committed == last.committed for sample in entries):
            return Evaluation(LagStatus.STALL, f"committed offset stuck at {last.committed:,} for "
                              f"{last.time - entries[0].time:.0f}s, lag {lag:,}", complete, lag)
        if all(later >= earlier for earlier, later in pairwise(lags)):  # type: ignore[operator]
            return Evaluation(LagStatus.WARN, f"lag grew from {lags[0]:,} to {lag:,} in "
                              f"{last.time - entries[0].time:.0f}s without ever falling", complete, lag)
    return Evaluation(LagStatus.OK, f"lag {lag:,}, falling at times", complete, lag)


@dataclass(frozen=True, slots=True)
class GroupEvaluation:
    """The group's status is its worst partition's."""

    status: LagStatus
    partitions: dict[int, Evaluation]

    @property
    def worst(self) -> list[int]:
        """The partitions with the group's status, sorted."""
        return sorted(p for p, evaluation in self.partitions.items() if evaluation.status == self.status)


@dataclass(frozen=True, slots=True)
class GroupDrain:
    """Time to drain the group: until its slowest partition has drained."""

    state: DrainState
    seconds: float | None
    lag: int
    arrival_rate: float
    consumption_rate: float
    partitions: dict[int, Drain]

    @property
    def not_draining(self) -> list[int]:
        return sorted(p for p, drain in self.partitions.items() if drain.state is DrainState.NOT_DRAINING)


# -- the tracker: every partition, the group aggregate, markers -------------------------------


class LagTracker:
    """Per-partition series, the group aggregate series and rebalance markers, all bounded."""

    def __init__(self, retention: float = DEFAULT_RETENTION_SECONDS,
                 resolution: float = DEFAULT_RESOLUTION_SECONDS) -> None:
        if retention <= 0 or resolution <= 0:
            raise ValueError("retention and resolution must be positive")
        self.retention = retention
        self.resolution = resolution
        self._partitions: dict[int, PartitionSeries] = {}
        self._group: deque[GroupSample] = deque(maxlen=math.ceil(retention / resolution) + 2)
        self._markers: deque[Marker] = deque(maxlen=MAX_MARKERS)

    @property
    def partitions(self) -> dict[int, PartitionSeries]:
        return dict(self._partitions)

    def series(self, partition: int) -> PartitionSeries | None:
        return self._partitions.get(partition)

    def record(self, time: float, readings: Mapping[int, PartitionReading]) -> GroupSample:
        """Add one reading per partition, all taken at `time`; the group sample covers exactly these."""
        samples = []
        for partition, reading in readings.items():
            series = self._partitions.get(partition)
            if series is None:
                series = self._partitions[partition] = PartitionSeries(self.retention, self.resolution)
            samples.append(series.append(time, reading))
        known = [sample for sample in samples if sample.lag is not None]
        seconds = [sample.lag_seconds for sample in samples if sample.lag_seconds is not None]
        group = GroupSample(
            time=time, lag=sum(sample.lag for sample in known),  # type: ignore[misc]
            committed_lag=sum(sample.committed_lag or 0 for sample in samples),
            lag_seconds=max(seconds) if seconds else None, partitions=len(samples),
            unknown=len(samples) - len(known),
        )
        history = self._group
        if len(history) >= 2 and history[-1].time - history[-2].time < self.resolution:
            history.pop()
        history.append(group)
        while history[0].time < time - self.retention:
            history.popleft()
        while self._markers and self._markers[0].time < time - self.retention:
            self._markers.popleft()
        return group

    def mark(self, time: float, kind: str, detail: str = "") -> Marker:
        """Note a rebalance (or another event) to draw on the charts' time axis."""
        marker = Marker(time, kind, detail)
        self._markers.append(marker)
        return marker

    def forget(self, partition: int) -> None:
        """Drop a partition's history (it moved to another member, and is not shown any more)."""
        self._partitions.pop(partition, None)

    def reset(self) -> None:
        """Forget everything (the topic was recreated)."""
        self._partitions.clear()
        self._group.clear()
        self._markers.clear()

    def group_window(self, since: float, until: float | None = None) -> list[GroupSample]:
        return [sample for sample in self._group
                if sample.time >= since and (until is None or sample.time <= until)]

    def markers(self, since: float | None = None, until: float | None = None) -> list[Marker]:
        return [marker for marker in self._markers
                if (since is None or marker.time >= since) and (until is None or marker.time <= until)]

    def evaluate(self, now: float, window: float = DEFAULT_EVALUATION_WINDOW_SECONDS,
                 allowed_lag: int = 0) -> GroupEvaluation:
        """Every partition's Burrow status; the group's is the worst (OK with no partitions)."""
        evaluations = {partition: series.evaluate(now, window, allowed_lag)
                       for partition, series in sorted(self._partitions.items())}
        status = max((evaluation.status for evaluation in evaluations.values()), default=LagStatus.OK)
        return GroupEvaluation(status, evaluations)

    def drain(self, now: float, over: float = DEFAULT_RATE_SECONDS) -> GroupDrain:
        """Per-partition time to drain, and the group's: not draining if any lagging partition is not."""
        drains = {partition: series.drain(now, over) for partition, series in sorted(self._partitions.items())}
        states = {drain.state for drain in drains.values()}
        if DrainState.NOT_DRAINING in states:
            state, seconds = DrainState.NOT_DRAINING, None
        elif DrainState.UNKNOWN in states:
            state, seconds = DrainState.UNKNOWN, None
        elif DrainState.DRAINING in states:
            state = DrainState.DRAINING
            seconds = max(drain.seconds for drain in drains.values() if drain.seconds is not None)
        else:
            state, seconds = DrainState.CAUGHT_UP, 0.0
        return GroupDrain(
            state=state, seconds=seconds, lag=sum(drain.lag or 0 for drain in drains.values()),
            arrival_rate=sum(drain.arrival_rate or 0.0 for drain in drains.values()),
            consumption_rate=sum(drain.consumption_rate or 0.0 for drain in drains.values()),
            partitions=drains,
        )


# -- the lab's alert rule ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LagThreshold:
    """Alert above this many messages, or above this many seconds of lag."""

    messages: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.seconds is None):
            raise ValueError("a lag threshold is either in messages or in seconds")

    def value(self, lag: int | None, lag_seconds: float | None) -> float | None:
        """The measure this threshold compares (messages or seconds), None when unknown."""
        return lag if self.messages is not None else lag_seconds

    def exceeded_by(self, value: float) -> bool:
        limit = self.messages if self.messages is not None else self.seconds
        return value > limit  # type: ignore[operator]

    def __str__(self) -> str:
        return f"{self.messages:,} messages" if self.messages is not None else f"{self.seconds:g}s"


class AlertState(str, Enum):
    OK = "ok"
    PENDING = "pending"
    """Above the threshold, not yet for long enough."""
    FIRING = "firing"


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """The alert was raised or cleared at `time`."""

    kind: str
    """"raised" or "cleared"."""
    time: float
    since: float
    """Raised: when the lag went above the threshold. Cleared: when the alert was raised."""
    value: float
    """The lag (messages or seconds, as the threshold) in the sample that caused the transition."""


class LagAlert:
    """The lab's rule: "alert if consumer lag stays above a threshold for more than 5 minutes".

    Fed with samples in time order. Raised at the first sample at least `for_seconds` after
    the lag went above the threshold without coming back to it; cleared at the first sample
    at or below the threshold. A sample whose measure is unknown changes nothing.
    """

    def __init__(self, threshold: LagThreshold, for_seconds: float) -> None:
        if for_seconds < 0:
            raise ValueError("the alert's duration must not be negative")
        self.threshold = threshold
        self.for_seconds = for_seconds
        self.state = AlertState.OK
        self.above_since: float | None = None
        self.raised_at: float | None = None
        self._last_time: float | None = None

    def feed(self, time: float, lag: int | None = None, lag_seconds: float | None = None) -> AlertTransition | None:
        """Take one sample; the transition it causes, if any."""
        if self._last_time is not None and time < self._last_time:
            raise ValueError(f"samples must come in time order: {time} is before {self._last_time}")
        self._last_time = time
        value = self.threshold.value(lag, lag_seconds)
        if value is None:
            return None
        if not self.threshold.exceeded_by(value):
            self.above_since = None
            if self.state is AlertState.FIRING:
                raised_at, self.raised_at = self.raised_at, None
                self.state = AlertState.OK
                return AlertTransition("cleared", time, raised_at, value)  # type: ignore[arg-type]
            self.state = AlertState.OK
            return None
        if self.above_since is None:
            self.above_since = time
            self.state = AlertState.PENDING
        if self.state is AlertState.PENDING and time - self.above_since >= self.for_seconds:
            self.state = AlertState.FIRING
            self.raised_at = time
            return AlertTransition("raised", time, self.above_since, value)
        return None


_WHOLE = re.compile(r"\d+")
_SECONDS = re.compile(r"(\d+(?:\.\d+)?)s")
_DURATION = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?")


def parse_lag_threshold(text: str | int, setting: str = "lag_alert_threshold") -> LagThreshold:
    """"1000" (messages) or "30s" (seconds of lag); ValueError in one line otherwise."""
    if isinstance(text, bool):
        raise ValueError(f"{setting} must be a number of messages (\"1000\") or seconds (\"30s\"), got {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"{setting} must not be negative, got {text}")
        return LagThreshold(messages=text)
    cleaned = str(text).strip().replace("_", "")
    if _WHOLE.fullmatch(cleaned):
        return LagThreshold(messages=int(cleaned))
    seconds = _SECONDS.fullmatch(cleaned)
    if seconds:
        return LagThreshold(seconds=float(seconds.group(1)))
    raise ValueError(f"{setting} must be a whole number of messages (\"1000\") or seconds of lag (\"30s\"), "
                     f"got {str(text)!r}")


def parse_duration(text: str | int | float, setting: str = "lag_alert_for") -> float:
    """"5m", "300s", "1h", "1h30m" in seconds; a bare number is seconds only when not a string."""
    if isinstance(text, bool):
        raise ValueError(f"{setting} must be a duration like \"300s\", \"5m\" or \"1h\", got {text!r}")
    if isinstance(text, int | float):
        if text < 0 or not math.isfinite(text):
            raise ValueError(f"{setting} must be a duration of 0 seconds or more, got {text}")
        return float(text)
    cleaned = str(text).strip().lower()
    found = _DURATION.fullmatch(cleaned) if cleaned else None
    if found is None or not any(found.groupdict().values()):
        hint = " (add a unit: \"300s\", \"5m\" or \"1h\")" if _WHOLE.fullmatch(cleaned) else ""
        raise ValueError(f"{setting} must be a duration like \"300s\", \"5m\" or \"1h\", got {str(text)!r}{hint}")
    parts = found.groupdict()
    return sum(float(parts[unit] or 0) * factor for unit, factor in (("h", 3600), ("m", 60), ("s", 1)))


# -- a text chart -----------------------------------------------------------------------------

_EIGHTHS = " ▁▂▃▄▅▆▇█"
MARKER_GLYPHS: dict[str, str] = {"assigned": "A", "revoked": "R", "lost": "L", "restored": "↻", "strategy": "S",
                                 "paused": "‖", "resumed": "▸"}


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k that is >= value (value > 0)."""
    exponent = math.floor(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        candidate = step * 10 ** exponent
        if candidate >= value * (1 - 1e-12):
            return candidate
    return 10 ** (exponent + 1)


_ROUND_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _nice_seconds(value: float) -> float:
    """The smallest round duration (1s, 2s, 5s, ... 1m, 2m, 5m, ... 1h, ...) that is >= value (value > 0)."""
    for candidate in _ROUND_SECONDS:
        if candidate >= value:
            return float(candidate)
    return _nice_ceiling(value)


def format_count(value: float) -> str:
    """950, 4.3k, 12k, 1.2M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return f"{scaled:.1f}".rstrip("0").rstrip(".") + suffix if scaled < 10 else f"{scaled:.0f}{suffix}"
    return f"{value:.0f}" if value == int(value) or abs(value) >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def format_seconds(value: float) -> str:
    """45s, 2.5m, 1h, 90m -> 1.5h."""
    if value < 60:
        return f"{value:.0f}s" if value >= 10 or value == int(value) else f"{value:.1f}s"
    for size, suffix in ((3600, "h"), (60, "m")):
        if value >= size:
            scaled = value / size
            return f"{scaled:.1f}".rstrip("0").rstrip(".") + suffix
    raise AssertionError("unreachable")


def render_chart(points: Iterable[tuple[float, float]], *, start: float, end: float, width: int, height: int,
                 markers: Iterable[Marker] = (), seconds: bool = False,
                 time_labels: tuple[str, str] | None = None,
                 glyphs: Mapping[str, str] = MARKER_GLYPHS) -> list[str]:
    """A lag chart as `height` + 2 lines of exactly `width` characters (block elements, monospace).

    Columns cover equal stretches of [start, end]; each shows the largest value of its
    stretch, in eighths of a row. The y axis goes from 0 to a round maximum (labelled;
    `seconds` formats it as a duration). Under the plot, the time axis: ─ where there are
    samples, ╌ where there are none, and one glyph per marker (`glyphs`, default MARKER_GLYPHS; * for
    other kinds, + when several share a column); then the time labels (default "-<span>" and "now").
    """
    if end <= start:
        raise ValueError("the chart's end must be after its start")
    if height < 1:
        raise ValueError("the chart needs at least one row")
    values = [(time, value) for time, value in points if start <= time <= end]
    top = max((value for _, value in values), default=0.0)
    scale = (_nice_seconds(top) if seconds else _nice_ceiling(top)) if top > 0 else 1.0
    label = format_seconds(scale) if seconds else format_count(scale)
    gutter = max(len(label), 1)
    columns = width - gutter - 2
    if columns < 2:
        raise ValueError(f"a chart {width} characters wide leaves no room for the plot")

    span = end - start
    peaks: list[float | None] = [None] * columns
    for time, value in values:
        column = min(columns - 1, int((time - start) / span * columns))
        current = peaks[column]
        peaks[column] = value if current is None or value > current else current

    rows = []
    for row in range(height):
        floor = (height - 1 - row) * 8  # eighths below this row
        cells = []
        for peak in peaks:
            eighths = 0 if peak is None else round(max(0.0, peak) / scale * height * 8)
            cells.append(_EIGHTHS[min(8, max(0, eighths - floor))])
        axis = " ┤" if row == 0 else " │"
        rows.append((label if row == 0 else "").rjust(gutter) + axis + "".join(cells))

    axis_cells = ["─" if peak is not None else "╌" for peak in peaks]
    placed: dict[int, str] = {}
    for marker in markers:
        if not start <= marker.time <= end:
            continue
        column = min(columns - 1, int((marker.time - start) / span * columns))
        glyph = glyphs.get(marker.kind, "*")
        placed[column] = glyph if placed.get(column, glyph) == glyph else "+"
    for column, glyph in placed.items():
        axis_cells[column] = glyph
    rows.append("0".rjust(gutter) + " └" + "".join(axis_cells))

    left, right = time_labels if time_labels is not None else (f"-{format_seconds(span)}", "now")
    room = columns - len(left)
    rows.append(" " * (gutter + 2) + left + right.rjust(room) if room >= len(right) + 1
                else (" " * (gutter + 2) + left)[:width].ljust(width))
    return rows

"""Provides what happens when the group moves partitions: the rebalance callbacks, and restored
partitions handed over to consumption.

librdkafka calls `on_assign`, `on_revoke` and `on_lost` from inside `consume()`, on the worker's
thread. Each only coordinates: the changelog coordinator decides what is restored and what a
commit may cover, the tracker keeps the history, the ledger and the offsets forget what left,
the publisher and the reporter tell the UI. docs/consistency.md has the rules.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from balance_tui.core.assignment import utc_now
from balance_tui.core.rows import ConsumerStatus, PartitionRestore, TimelineEntry
from balance_tui.kafka.changelog_coordinator import plan_assignment
from balance_tui.kafka.membership import GroupMembership
from balance_tui.kafka.worker.commits import Committer
from balance_tui.kafka.worker.consumer_setup import membership_of
from balance_tui.kafka.worker.publishing import BalancePublisher, rebalance_log_fields
from balance_tui.kafka.worker.restore_summary import RestoreSummary, partition_runs
from balance_tui.kafka.worker.state import MemberState, Reporter
from balance_tui.messages import PartitionsAssigned, PartitionsLost, PartitionsRevoked
from balance_tui.session_log import Event
from balance_tui.static_member import StaticMembership

#: How long a revoke's changelog flush may take; what does not commit by then is restored from the flush before.
REVOKE_FLUSH_SECONDS = 5.0
#: How long a partition that left waits for its transaction still committing, to say whether it was fenced.
FORGET_SETTLE_SECONDS = 2.0

#: A partition's first offset as a real offset: where a partition is held while it restores (paused, it reads
#: nothing until sent to its resume offset), and where one with nothing in the changelog resumes (below the log
#: start, the first fetch is out of range and auto.offset.reset=earliest starts at the log start). Never a
#: logical offset: librdkafka looks one up (committed, then ListOffsets), and a lookup in flight when our seek
#: or resume lands restarts itself and then wins over the seek (librdkafka's debug log: "outdated offset
#: response: (re)starting offset query timer", then "start fetching at offset 0"; CI: five partitions read
#: again from the beginning) or, for a seek to the beginning, starts reading a back-off later.
FIRST_OFFSET = 0


class RebalanceHandler:
    """The rebalance callbacks of one consumer, and the commits and restores they depend on."""

    def __init__(self, state: MemberState, reporter: Reporter, balances: BalancePublisher,
                 membership: GroupMembership, static: StaticMembership | None) -> None:
        self.state = state
        self.reporter = reporter
        self.balances = balances
        self.membership = membership
        self.static = static
        #: True while the consumer closes: its revoke is a goodbye, not the first half of a rebalance.
        self.closing = False
        #: Set where a rejoin is the only way out (a re-assignment refused); the loop carries it out.
        self.rejoin_requested = False
        #: When the last join attempt (or rebalance) began, for the seconds shown beside Joining.
        self.join_started: float | None = time.monotonic()
        #: The generation an eager revoke happened in: its partitions' state is kept only into the next one.
        self._revoked_generation: int | None = None
        #: Restores finished and not yet said: one timeline line per assignment.
        self.restores = RestoreSummary()
        self.commits = Committer(state, reporter, on_fenced=self._fenced)

    # -- the callbacks ---------------------------------------------------------------------------

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        state = self.state
        state.health.answered()  # the group coordinator did
        to_restore = self._take_assignment(consumer, partitions)
        if to_restore and state.changelog is not None:
            # Not kept, even if they were ours before the revoke: their state is read back.
            state.tracker.pending_revoked.difference_update(to_restore)
            self.forget(to_restore, announce=False)  # their rows come back with the restore
            state.changelog.start_restores(to_restore)
        generation, member_id = membership_of(consumer)
        entry = state.tracker.assigned(sorted(tp.partition for tp in partitions), state.incremental, utc_now(),
                                       generation, member_id)
        self.forget(sorted(state.tracker.last_dropped))
        self.join_started = None
        # The static record first: whoever reads `assigned` in the session log may kill us right after.
        verdict = self._remember_static(entry) if self.static is not None else None
        self._said(Event.ASSIGNED, entry, PartitionsAssigned)
        if verdict is not None:
            self._say_static(entry, verdict)
        self.reporter.status_from_assignment()

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        state = self.state
        numbers = sorted(tp.partition for tp in partitions)
        self.balances.flush(state.ledger)
        # The partitions' new owner restores from the changelog: write what changed first (unless
        # the broker is away: a flush would only wait its timeout out). What does not commit is
        # restored by the new owner from the previous flush, and read again from there.
        self.commits.flush_and_commit(consumer, set(numbers), commit_offsets=False,
                                      timeout=REVOKE_FLUSH_SECONDS if self._broker_reachable() else 0.0)
        if state.changelog is not None:
            state.changelog.cancel_restores(numbers)
        # Eager protocols revoke everything and may give some back: keep their state until then.
        incremental = state.incremental and not self.closing
        generation, member_id = membership_of(consumer)
        self._revoked_generation = generation
        entry = state.tracker.revoked(numbers, incremental, utc_now(), generation, member_id)
        if incremental:
            self.forget(numbers)
        state.paused_partitions -= set(numbers)
        self.join_started = time.monotonic()
        self._said(Event.REVOKED, entry, PartitionsRevoked)
        if not self.closing:
            self.reporter.status.set(ConsumerStatus.REBALANCING)

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        state = self.state
        numbers = sorted(tp.partition for tp in partitions)
        self.balances.flush(state.ledger)
        entry = state.tracker.lost(numbers, utc_now(), *membership_of(consumer))
        if state.changelog is not None:
            state.changelog.cancel_restores(numbers)
        # Nothing is written: the group moved on, and the new owners' writers have fenced ours.
        self.forget(sorted(set(numbers) | state.tracker.last_dropped))
        state.paused_partitions -= set(numbers)
        self.join_started = time.monotonic()
        self._said(Event.LOST, entry, PartitionsLost)
        self.reporter.status.set(ConsumerStatus.PARTITIONS_LOST)

    # -- what they share ---------------------------------------------------------------------------

    def _take_assignment(self, consumer: Consumer, partitions: list[TopicPartition]) -> list[int]:
        """Assign the partitions ourselves (explicit offsets, paused at once) where needed; those to restore."""
        state = self.state
        to_restore: list[int] = []
        if state.changelog is not None:
            generation = membership_of(consumer)[0]
            # Only if no other generation came between: then nobody else owned the partition meanwhile.
            uninterrupted = (generation is not None and self._revoked_generation is not None
                             and generation == self._revoked_generation + 1)
            plan = plan_assignment([tp.partition for tp in partitions], uninterrupted,
                                   state.tracker.pending_revoked, state.offsets.position)
            for tp in partitions:
                # An eager rebalance gave back a partition whose state never left this process:
                # continue exactly where we were, whatever was committed.
                tp.offset = plan.kept_at.get(tp.partition, FIRST_OFFSET)
            to_restore = plan.to_restore
        if partitions and (state.paused or state.changelog is not None):
            (consumer.incremental_assign if state.incremental else consumer.assign)(partitions)
            hold = [tp for tp in partitions if state.paused or tp.partition in to_restore]
            if hold:
                consumer.pause(hold)
            if state.paused:
                state.paused_partitions |= {tp.partition for tp in partitions}
        return to_restore

    def forget(self, partitions: list[int], announce: bool = True) -> None:
        """Partitions that left: their balances go from the ledger (and the screen, if `announce`), their
        figures from the offsets, their unflushed changes and writers from the changelog. Forgotten before
        the batch that removes their rows: one re-adding them would undo the removal."""
        for partition in partitions:
            self.balances.forget(self.state.ledger.drop_partition(partition))
            self.state.offsets.forget(partition)
        fenced: dict[int, str] = {}
        if self.state.changelog is not None:
            # A transaction still committing (the loop's flushes do not wait) may say the partition was fenced.
            fenced = self.state.changelog.forget(partitions, FORGET_SETTLE_SECONDS if self._broker_reachable() else 0.0)
        self.state.lag.forget(partitions)
        if fenced:
            self._say_fenced(sorted(fenced), next(iter(fenced.values())))
        if partitions and announce:
            self.balances.flush(self.state.ledger, removed_partitions=tuple(partitions))

    def _broker_reachable(self) -> bool:
        """False while the broker is known away: a flush or a wait for a commit would only wait its timeout out."""
        return self.reporter.status.status is not ConsumerStatus.BROKER_UNREACHABLE

    def _said(self, event: Event, entry: TimelineEntry, message: type) -> None:
        self.reporter.session.write(event, at=entry.at, **rebalance_log_fields(event, entry))
        self.state.lag.mark(event.value, partition_runs(entry.partitions))
        self.membership.describe_soon()
        self.reporter.post(message(partitions=entry.partitions, assignment=entry.assignment, entry=entry))

    def _remember_static(self, entry: TimelineEntry) -> tuple[bool, str] | None:
        """Save what this static member owns now; for its first assignment, whether it came without a rebalance."""
        assert self.static is not None
        return self.static.assigned(entry.generation, entry.assignment, self.state.consumer_id, utc_now().isoformat())

    def _say_static(self, entry: TimelineEntry, verdict: tuple[bool, str]) -> None:
        """Say whether this static member got its partitions back without a rebalance."""
        assert self.static is not None
        assignment = entry.assignment
        no_rebalance, text = verdict
        before = self.static.before
        self.reporter.write(Event.STATIC_REJOIN, no_rebalance=no_rebalance, generation=entry.generation,
                            assignment=list(assignment), previous_generation=before.generation if before else None)
        self.reporter.timeline("static_rejoin", text, assignment)

    def _fenced(self, fenced: dict[int, str]) -> None:
        """These partitions' writers were fenced (another member owns them now) or are stuck in a transaction
        that could be neither committed nor aborted: drop the partitions and rejoin, the group decides."""
        numbers = sorted(fenced)
        self.forget(numbers)
        self._say_fenced(numbers, next(iter(fenced.values())))
        self.rejoin_requested = True

    def _say_fenced(self, numbers: list[int], reason: str) -> None:
        self.reporter.write(Event.FENCED, partitions=numbers, reason=reason)
        self.reporter.timeline("fenced", f"P{', P'.join(map(str, numbers))} given up: {reason}. Another member may own "
                                         "them now; nothing more is written to their changelog, rejoining",
                               tuple(numbers))

    # -- restores handed over to consumption ------------------------------------------------------

    def restore_step(self, consumer: Consumer) -> None:
        """Read more of the changelog; hand each partition that reached its end over to consumption."""
        state = self.state
        assert state.changelog is not None
        finished, errors = state.changelog.step()
        for error in errors:
            self.reporter.kafka_error(error)
        sources = {}
        # Every finished partition's start first: a seek refused for one re-assigns the others too, and
        # one finished in the same step but not yet given its start would be assigned without an offset
        # (read again from the committed one, or the beginning: seen in CI, 1,829 transactions replayed).
        for restore, _ in finished:
            partition, resume = restore.partition, restore.consume_from
            state.ledger.restore(restore.states.values())
            sources[partition] = TopicPartition(state.settings.topic, partition,
                                                FIRST_OFFSET if resume is None else resume)
            state.offsets.restored_to(partition, sources[partition].offset, resume)
        for restore, seconds in finished:
            partition, resume = restore.partition, restore.consume_from
            if not self._seek(consumer, sources[partition]):
                self._say_restored()
                return
            if state.paused:
                state.paused_partitions.add(partition)
            else:
                consumer.resume([TopicPartition(state.settings.topic, partition)])
            self.balances.changed(restore.states)
            self.reporter.write(Event.RESTORED, partition=partition, customers=len(restore.states),
                                records=restore.records, duration_ms=round(seconds * 1000, 1),
                                resume_offset=resume if resume is not None else 0)
            self.restores.add(PartitionRestore(partition, len(restore.states), restore.records,
                                               round(seconds * 1000, 1), resume if resume is not None else 0))
        if finished and not state.restoring:  # the assignment's last restores: one line for them all
            self._say_restored()
            self.reporter.status_from_assignment()

    def _say_restored(self) -> None:
        """The restores done since the last line, in one timeline line (the session log has one per partition)."""
        said = self.restores.take()
        if said is not None:
            text, partitions, restores = said
            self.state.lag.mark("restored", partition_runs(partitions))
            self.reporter.timeline("restored", text, partitions, restores)

    def _seek(self, consumer: Consumer, source: TopicPartition) -> bool:
        """Send a restored partition to where it resumes; False when only a new join can (one is requested)."""
        try:
            consumer.seek(source)
            return True
        except KafkaException:
            pass
        try:
            self._reassign_at(consumer, source)
            return True
        except KafkaException as error:
            self.reporter.kafka_error(error.args[0])
            self.rejoin_requested = True  # a fresh join restores everything again
            return False

    def _reassign_at(self, consumer: Consumer, source: TopicPartition) -> None:
        """Not fetching yet, so `seek` refused: give the partition its starting offset by re-assigning it."""
        state = self.state
        topic = state.settings.topic
        if state.incremental:
            consumer.incremental_unassign([TopicPartition(topic, source.partition)])
            consumer.incremental_assign([source])
            return
        # Eager protocols only take whole assignments: keep every other partition where it is.
        owned = sorted(state.tracker.assignment)
        consumer.assign([source if p == source.partition else TopicPartition(
            topic, p, FIRST_OFFSET if p in state.restoring else state.offsets.next_offset(p)) for p in owned])
        hold = [p for p in owned if p in state.restoring or p in state.paused_partitions
                or (state.paused and p == source.partition)]
        if hold:
            consumer.pause([TopicPartition(topic, p) for p in hold])

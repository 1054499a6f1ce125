"""Provides the consumer worker: one thread that owns the Kafka consumer and the ledger.

`ConsumerWorker` is what the UI holds (`WorkerControl`: every method only queues a request)
and the thread's life: start, one `ConsumptionLoop` per join until a stop, the export, the
goodbye. Its parts own their state (docs/architecture.md): `MemberState` and `Reporter`
(`state.py`), `RebalanceHandler` (`rebalance.py`), `Commands` (`commands.py`), `GroupSide`
(`group_side.py`), `ChangelogCoordinator`, `GroupMembership`, `BalancePublisher`.
Everything reaches the UI as messages from `balance_tui.messages`.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
from pathlib import Path
from typing import Any

from balance_tui.config import Settings
from balance_tui.control import (
    AskGroupStrategy,
    ChangeWorkMs,
    ExportNow,
    MessageSink,
    Restart,
    SetStrategy,
    Stop,
    TogglePause,
    WorkerCommand,
)
from balance_tui.core.assignment import AssignmentTracker, utc_now
from balance_tui.core.export import export_document, export_markdown
from balance_tui.core.rows import ConsumerStatus
from balance_tui.errors import UserError
from balance_tui.kafka.admin import describe_broker_of, ensure_topic
from balance_tui.kafka.changelog_coordinator import ChangelogCoordinator
from balance_tui.kafka.membership import GroupMembership
from balance_tui.kafka.worker.commands import (
    Commands,
    LoopOutcome,
    Quit,
    Rejoin,
    StartOver,
)
from balance_tui.kafka.worker.consumer_setup import make_consumer_id
from balance_tui.kafka.worker.group_side import GroupSide
from balance_tui.kafka.worker.loop import ConsumptionLoop
from balance_tui.kafka.worker.publishing import BalancePublisher
from balance_tui.kafka.worker.rebalance import RebalanceHandler
from balance_tui.kafka.worker.state import MemberState, Reporter
from balance_tui.kafka.worker.views import export_state, stats_line
from balance_tui.messages import (
    BrokerDescribed,
    Exported,
    KafkaErrorReported,
    SessionStarted,
    WorkerStopped,
)
from balance_tui.session_log import Event, SessionLog, default_log_path, export_paths
from balance_tui.static_member import StaticMembership

__all__ = ["ConsumerWorker", "LoopOutcome", "Quit", "Rejoin", "StartOver"]

_LOG = logging.getLogger(__name__)


class ConsumerWorker:
    """Implements `WorkerControl` around a thread running one consumer loop per join."""

    def __init__(self, settings: Settings, consumer_id: str | None = None, publish_balances: bool = True) -> None:
        self.settings = settings
        self.consumer_id = consumer_id or make_consumer_id()
        self.log_path: Path = settings.session_log or default_log_path(self.consumer_id)
        self.started_at = utc_now()
        self.final_export: tuple[Path, ...] = ()
        self._commands: queue.SimpleQueue[WorkerCommand] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._sink: MessageSink = lambda message: None
        self._room_until = 0.0
        self._loop: ConsumptionLoop | None = None
        self._last_export_paths: tuple[Path, ...] = ()
        # Opened here, in the caller's thread, so a path that cannot be written is a one-line error.
        try:
            session = SessionLog(self.log_path, self.consumer_id, settings.group, settings.topic, settings.strategy)
        except OSError as error:
            raise UserError(f"cannot write the session log {self.log_path}: {error.strerror or error}") from None
        self.session = session
        self.state = MemberState(settings, self.consumer_id, settings.strategy, settings.work_ms, settings.partitions)
        self.membership = GroupMembership(settings, self.consumer_id)
        self.reporter = Reporter(session, lambda: self._sink, self.state, self.membership)
        self.balances = BalancePublisher(self.reporter.post, enabled=publish_balances)
        self.commands = Commands(self.state, self.reporter, self.membership, export=self._flush_and_export)
        self.group = GroupSide(self.state, self.reporter, self.membership, self.commands.change_strategy,
                               lambda: _write_stats(self))
        self.static = (StaticMembership(settings.group, settings.group_instance_id)
                       if settings.group_instance_id else None)

    # -- figures others read --------------------------------------------------------------------------

    @property
    def tracker(self) -> AssignmentTracker:
        return self.state.tracker

    @property
    def consumed(self) -> int:
        return self.state.throughput.consumed

    @property
    def restoring(self) -> set[int]:
        return self.state.restoring

    @property
    def strategy(self) -> str:
        return self.state.strategy

    # -- WorkerControl: every method only queues a request --------------------------------------------

    def start(self, sink: MessageSink) -> None:
        self._sink = sink
        self._thread = threading.Thread(target=self._run, name=f"consumer-{self.consumer_id}", daemon=True)
        self._thread.start()

    def set_strategy(self, strategy: str) -> None:
        self._commands.put(SetStrategy(strategy))

    def request_group_strategy(self, strategy: str) -> None:
        self._commands.put(AskGroupStrategy(strategy))

    def restart(self) -> None:
        self._commands.put(Restart())

    def toggle_pause(self) -> None:
        self._commands.put(TogglePause())

    def change_work_ms(self, delta: float) -> None:
        self._commands.put(ChangeWorkMs(delta))

    def export(self) -> None:
        self._commands.put(ExportNow())

    def stop(self, reason: str) -> None:
        self._commands.put(Stop(reason))

    def make_room(self, seconds: float) -> None:
        self._room_until = time.monotonic() + seconds if seconds > 0 else 0.0

    @property
    def native_id(self) -> int | None:
        """The operating system's id of the worker thread, once started (benchmarks read its CPU time)."""
        return self._thread.native_id if self._thread is not None else None

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def abandon(self, reason: str) -> tuple[Path, ...]:
        """From the caller's thread, when the worker did not stop in time (stuck inside librdkafka):
        make sure the export and the session log's `stopped` line exist anyway; the export's paths.

        The worker is blocked in a Kafka call then, not applying anything, so reading its state
        from this thread is safe enough for a last export; a copy that fails is simply not written.
        """
        paths = self.final_export or self._last_export_paths
        if not paths:
            try:
                paths = self._write_export()
            except RuntimeError:  # the worker woke up and changed the state under us
                paths = ()
        self.session.stop(reason, abandoned=True)
        return paths

    def _next_command(self) -> WorkerCommand | None:
        try:
            return self._commands.get_nowait()
        except queue.Empty:
            return None

    # -- the thread -------------------------------------------------------------------------------------

    def _run(self) -> None:
        reason = "stopped"
        paths: tuple[Path, ...] = ()
        try:
            self._start_session()
            while True:
                outcome = self._one_join()
                if isinstance(outcome, Quit):
                    reason, paths = outcome.reason, self._leave()
                    break
                self._close()
                if isinstance(outcome, StartOver):
                    self._start_over(outcome)
                elif self.membership.switch is not None:
                    self.group.wait_for_reset()
        except Exception as error:  # noqa: BLE001 - the worker must report, never die silently
            reason = f"worker crashed: {error!r}"
            self.state.throughput.processing_errors += 1
            self.session.write(Event.ERROR, code="WORKER_CRASH", reason=repr(error), fatal=True)
            self.reporter.post(KafkaErrorReported(code="WORKER_CRASH", reason=repr(error), fatal=True))
            paths = self._write_export()
            try:
                self._close()
            except Exception:  # noqa: BLE001 - already failing: report the first cause
                _LOG.debug("closing after the crash failed too", exc_info=True)
        self._finish(reason, paths)

    def _one_join(self) -> LoopOutcome:
        handler = RebalanceHandler(self.state, self.reporter, self.balances, self.membership, self.static)
        self._loop = ConsumptionLoop(self.state, self.reporter, self.balances, self.group, self.commands, handler,
                                     self._next_command, lambda: self._room_until)
        return self._loop.run()

    def _close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def _leave(self) -> tuple[Path, ...]:
        """Export while still a member (so it shows what this member owned), then leave and say goodbye."""
        self.balances.flush(self.state.ledger)
        paths = self._flush_and_export()
        self._close()
        self.membership.goodbye(self.group.heartbeat())
        return paths

    def _start_session(self) -> None:
        settings = self.settings
        self.session.write(Event.STARTED, config=settings.redacted(), consumer_id_full=self.consumer_id,
                           pid=os.getpid(), host=socket.gethostname())
        self.reporter.post(SessionStarted(consumer_id=self.consumer_id, group=settings.group, topic=settings.topic,
                                          strategy=self.state.strategy, bootstrap_servers=settings.bootstrap_servers,
                                          log_path=self.log_path, work_ms=self.state.work_ms))
        self.state.broker = describe_broker_of(settings.client_config())
        self.session.write(Event.BROKER, **self.state.broker.as_log_fields())
        self.reporter.post(BrokerDescribed(label=self.state.broker.label,
                                           consumer_protocol=self.state.broker.consumer_protocol))
        self._open_collaborators()

    def _open_collaborators(self) -> None:
        """The members topic and the changelog: opened at start, and again on a new cluster."""
        problem = self.membership.open()
        if problem is not None:
            self.reporter.problem("MEMBERS_TOPIC", problem, hint="The Group panel shows this terminal only.",
                                  log=False)
        if not self.settings.changelog:
            return
        state = self.state
        state.changelog, state.partition_count, problem = ChangelogCoordinator.open(
            self.settings, self.consumer_id, state.partition_count)
        if problem is not None:
            self.session.write(Event.ERROR, code="CHANGELOG_PARTITIONS", fatal=False,
                               reason=f"{problem}: changelog off")
            self.reporter.problem("CHANGELOG_PARTITIONS", problem, log=False,
                                  hint="Balances will not follow moved partitions (changelog off). Delete the "
                                       "changelog topic or set changelog_topic to a new name.")

    def _start_over(self, outcome: StartOver) -> None:
        """After a broker restart that lost everything: drop every balance, reopen the members topic and
        the changelog on the new cluster, and join its group from scratch."""
        state = self.state
        lost = state.health.owned_at_outage
        self.session.write(Event.BROKER_RESTARTED, old_cluster_id=outcome.old_cluster,
                           new_cluster_id=outcome.new_cluster, partitions_lost=lost)
        text = (f"broker restarted: the topic starts empty, {lost} partition{'s' if lost != 1 else ''}' state was lost "
                f"(cluster {outcome.old_cluster} → {outcome.new_cluster}); rejoining the new cluster")
        self.reporter.problem("BROKER_RESTARTED", text, log=False,
                              hint="Balances start again from the new topic's first transaction.")
        state.tracker.note("broker_restarted", utc_now(), text)
        if state.changelog is not None:
            state.changelog.close()
            state.changelog = None
        self.membership.close()
        self.membership.forget_group()
        state.start_over()
        state.health.new_cluster(outcome.new_cluster)
        try:
            ensure_topic(self.settings.client_config(), self.settings.topic, self.settings.partitions)
        except UserError as error:
            self.reporter.problem("TOPIC", str(error), log=False)
        self._open_collaborators()

    def _finish(self, reason: str, paths: tuple[Path, ...]) -> None:
        if self.state.changelog is not None:
            self.state.changelog.close()
        self.membership.close()
        self.final_export = paths
        self.reporter.status.set(ConsumerStatus.STOPPED, reason)
        self.session.stop(reason)
        self.reporter.post(WorkerStopped(reason=reason, export_paths=paths))

    # -- the export -------------------------------------------------------------------------------------

    def _flush_and_export(self) -> tuple[Path, ...]:
        """The export, after the changelog's pending changes are written: both then hold the same balances."""
        if self._loop is not None and self.state.changelog is not None:
            self._loop.flush()
        return self._write_export()

    def _write_export(self) -> tuple[Path, ...]:
        json_path, markdown_path = export_paths(self.log_path)
        try:
            state = export_state(self.state, self.reporter.status.status, self.membership, self.started_at)
            json_path.write_text(json.dumps(export_document(state), indent=2) + "\n", encoding="utf-8")
            markdown_path.write_text(export_markdown(state), encoding="utf-8")
        except Exception as error:  # noqa: BLE001 - an export must never take the worker down (OSError, a bug)
            self.reporter.problem("EXPORT_FAILED", str(error))
            return ()
        paths = (json_path, markdown_path)
        self._last_export_paths = paths
        self.session.write(Event.EXPORTED, paths=[str(p) for p in paths])
        self.reporter.post(Exported(paths=paths))
        return paths


def _write_stats(worker: ConsumerWorker) -> None:
    """The session log's periodic `stats` line (GroupSide says when)."""
    fields: dict[str, Any] = stats_line(worker.state, worker.reporter.status.status, time.monotonic())
    worker.session.write(Event.STATS, **fields)

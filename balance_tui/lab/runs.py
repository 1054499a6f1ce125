"""Provides a lab run (`LabRun`: the broker, its groups, the results written even on failure) and a
group run (`GroupRun`: a topic, its traffic, its members and the steps done to them).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from balance_tui import __version__
from balance_tui.config import SECRET_SETTINGS
from balance_tui.core.assignment import iso_ms, utc_now
from balance_tui.core.formatting import jsonable
from balance_tui.core.report import (
    Report,
    ReportError,
    build_report,
    parse_ts,
    render_json,
    render_markdown,
)
from balance_tui.lab.measure import (
    LabStep,
    StaticMeasure,
    StepMeasure,
    balanced_sizes,
    measure_step,
    render_crash_table,
    render_scale_table,
    render_static_table,
    render_strategies_table,
    size_summary,
    static_measure,
)
from balance_tui.lab.options import PARTITIONS, POLL_S, STATS_INTERVAL_S, LabOptions, LabStepFailed
from balance_tui.lab.processes import MemberProcess, python_command, stop_processes, tail
from balance_tui.session_log import Event, read_session_log


class GroupRun:
    """One consumer group on its own topic: a traffic generator, members, and the steps done to them."""

    def __init__(self, lab: LabRun, label: str, strategy: str, directory: Path, static: bool = False,
                 commands: bool = False) -> None:
        self.lab = lab
        self.label = label
        self.static = static
        #: Members read commands on a pipe (`group-strategy range`, ...) instead of an empty stdin.
        self.commands = commands
        #: Set by a scenario that records members exiting by themselves instead of failing at once (chaos).
        self.tolerate_member_exits = False
        self.strategy = strategy
        self.directory = directory
        self.topic = f"{lab.prefix}{label}.transactions"
        self.group = f"{lab.prefix}{label}"
        self.members: list[MemberProcess] = []
        self.steps: list[LabStep] = []
        self.producer: subprocess.Popen[bytes] | None = None
        self.report: Report | None = None
        self.report_path: Path | None = None
        self.closed = False
        self.warnings: list[str] = []
        directory.mkdir(parents=True, exist_ok=True)

    # -- processes ------------------------------------------------------------------------------------

    def _command(self, *args: str) -> list[str]:
        # The embedded broker dies with the lab: members could not leave cleanly (their close
        # would wait for a coordinator that is gone), so they go the same way. A cluster stays:
        # there a SIGTERM lets them leave the group.
        death = signal.SIGKILL if self.lab.options.cluster is None else signal.SIGTERM
        return python_command(*args, death_signal=death)

    def _spawn(self, argv: list[str], output: Path, commands: bool = False) -> subprocess.Popen[bytes]:
        with output.open("wb") as out:
            # A session of its own: Ctrl+C in the terminal reaches the lab only, which stops
            # everything in order (members leave cleanly, then the generator, then the broker).
            return subprocess.Popen(argv, stdin=subprocess.PIPE if commands else subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=self.lab.child_environment(),
                                    start_new_session=True)

    def start_producer(self) -> None:
        from balance_tui.kafka.admin import ensure_topic

        ensure_topic(self.lab.client_config, self.topic, PARTITIONS)
        self.producer = self._spawn(self._command(
            "produce", "--bootstrap-servers", self.lab.bootstrap, "--topic", self.topic,
            "--profile", self.lab.options.profile, "--seed", "7", "--connect-timeout", "30"),
            self.directory / "producer.log")

    def start_members(self, count: int, instance_ids: list[str | None] | None = None,
                      strategy: str | None = None) -> list[MemberProcess]:
        """Start `count` members; `instance_ids` gives each a static id (None: dynamic, or the lab's --static);
        `strategy` replaces the group's starting one."""
        options = self.lab.options
        started = []
        for index in range(count):
            name = f"w{len(self.members) + 1}"
            consumer_id = f"balance-worker-lab-{name}"
            instance = (instance_ids[index] if instance_ids is not None
                        else f"lab-{self.label}-{name}" if (options.static or self.static) else None)
            log_path = self.directory / f"{name}.jsonl"
            output_path = self.directory / f"{name}.out"
            argv = self._command(
                "--headless", "--bootstrap-servers", self.lab.bootstrap, "--topic", self.topic,
                "--group", self.group, "--partitions", str(PARTITIONS), "--strategy", strategy or self.strategy,
                "--session-timeout-ms", str(options.session_timeout_ms),
                "--heartbeat-interval-ms", str(options.heartbeat_interval_ms),
                "--work-ms", f"{options.work_ms:g}", "--session-log", str(log_path), "--consumer-id", consumer_id,
                "--connect-timeout", "30", *(["--instance-id", instance] if instance else []), *options.member_flags)
            member = MemberProcess(name, consumer_id, log_path, output_path,
                                   self._spawn(argv, output_path, commands=self.commands), instance_id=instance)
            self.members.append(member)
            started.append(member)
            # One `started` line after the other: the report names members W1, W2... in the order
            # of their first line, and the tables must call them what the lab calls them.
            self._wait_until_started(member)
        return started

    def _wait_until_started(self, member: MemberProcess) -> None:
        self.lab.wait_for(lambda: self._has_started(member), 60.0,
                          lambda: f"{member.name} wrote no `started` line: {tail(member.output_path)}")

    def _has_started(self, member: MemberProcess) -> bool:
        self._check_processes()
        member.refresh()
        return member.started

    def live(self) -> list[MemberProcess]:
        return [m for m in self.members if m.live]

    # -- steps ---------------------------------------------------------------------------------------

    def join(self, key: str, count: int, label: str = "") -> LabStep:
        """Start `count` members and wait until the group is balanced over all live members."""
        at = utc_now()
        new = self.start_members(count)
        action = "start" if len(new) == len(self.members) else "join"
        return self._settle(LabStep(key, action, tuple(m.consumer_id for m in new), at,
                                    balanced_sizes(PARTITIONS, len(self.live())), label or f"+{count}"))

    def leave(self, key: str, members: list[MemberProcess], label: str = "") -> LabStep:
        """SIGTERM `members` (a clean LeaveGroup) and wait for the survivors' new assignment."""
        at = utc_now()
        for member in members:
            member.leaving = True
            member.process.send_signal(signal.SIGTERM)
        step = self._settle(LabStep(key, "leave", tuple(m.consumer_id for m in members), at,
                                    balanced_sizes(PARTITIONS, len(self.live())), label or f"−{len(members)}"))
        for member in members:
            try:
                code = member.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                member.process.kill()
                member.process.wait(timeout=10)
                code = None
            if code != 0:
                self.warnings.append(f"{member.name} did not stop cleanly (exit code {code})")
        return step

    def kill(self, key: str, member: MemberProcess, label: str = "kill -9") -> LabStep:
        """SIGKILL `member` (no LeaveGroup: the coordinator notices after the session timeout)."""
        member.leaving = True
        at = utc_now()
        member.process.send_signal(signal.SIGKILL)
        member.process.wait(timeout=10)
        return self._settle(LabStep(key, "crash", (member.consumer_id,), at,
                                    balanced_sizes(PARTITIONS, len(self.live())), label))

    def restart(self, key: str, member: MemberProcess, label: str = "kill -9 and restart") -> LabStep:
        """SIGKILL `member`, start its replacement at once (the same static id, if it had one), and wait
        until the replacement owns partitions and the group is balanced again."""
        member.leaving = True
        at = utc_now()
        member.process.send_signal(signal.SIGKILL)
        member.process.wait(timeout=10)
        (replacement,) = self.start_members(1, instance_ids=[member.instance_id])
        return self._settle(LabStep(key, "restart", (member.consumer_id, replacement.consumer_id), at,
                                    balanced_sizes(PARTITIONS, len(self.live())), label),
                            must_reassign=(replacement,))

    def _settle(self, step: LabStep, must_reassign: tuple[MemberProcess, ...] | None = None) -> LabStep:
        self.steps.append(step)
        what = f"{self.label}: {step.label} ({step.action} {', '.join(step.members)}) → {size_summary(step.expected)}"
        self.lab.say(what + " ...")
        self.lab.wait_for(lambda: self._reached(step, must_reassign), self.lab.options.step_timeout_s,
                          lambda: f"{what} not reached: " + " ".join(m.describe() for m in self.live()))
        assert step.reached_at is not None
        self.lab.say(f"{self.label}: {size_summary(step.expected)} after "
                     f"{(step.reached_at - step.at).total_seconds():.1f} s")
        self.hold(step)
        return step

    def _reached(self, step: LabStep, must_reassign: tuple[MemberProcess, ...] | None = None) -> bool:
        """The expected sizes, every partition owned once, and every live member assigned since the step.

        The last condition keeps a stale assignment from passing: when idle members leave, the
        survivors already hold the expected sizes before the group has even rebalanced. A static
        member's restart is the exception (`must_reassign`): nobody else is told anything, and
        the point of the step is to see that.
        """
        self._check_processes()
        live = self.live()
        for member in live:
            member.refresh()
        fresh = live if must_reassign is None else list(must_reassign)
        if any(m.assignment is None for m in live) or any(
                m.last_assigned_at is None or m.last_assigned_at < step.at for m in fresh):
            return False
        sizes = tuple(sorted((len(m.assignment or ()) for m in live), reverse=True))
        owned = sorted(p for m in live for p in (m.assignment or ()))
        if sizes != step.expected or owned != list(range(PARTITIONS)):
            return False
        step.reached_at = max(m.last_assigned_at for m in fresh if m.last_assigned_at is not None)
        step.assignment = {m.consumer_id: m.assignment or () for m in live}
        return True

    def hold(self, step: LabStep) -> None:
        """Keep the group under load until every live member logged `hold` more `stats` lines."""
        lines = self.lab.options.hold
        live = self.live()
        if lines <= 0 or not live or step.reached_at is None:
            return
        since = step.reached_at

        def enough() -> bool:
            self._check_processes()
            for member in live:
                member.refresh()
            return all(m.stats_since(since) >= lines for m in live)

        self.lab.wait_for(enough, lines * STATS_INTERVAL_S + 20.0,
                          lambda: f"{self.label}: members stopped logging stats")
        latest = [m.stats[-1] for m in live]
        step.group_rate = sum(rate for _, rate, _ in latest)
        lags = [lag for _, _, lag in latest if isinstance(lag, int)]
        step.group_lag = sum(lags) if lags else None

    def _check_processes(self) -> None:
        for member in self.members:
            if not member.leaving and not member.alive and not self.tolerate_member_exits:
                raise LabStepFailed(f"member {member.name} exited by itself (code {member.process.returncode}): "
                                    f"{tail(member.output_path)}")
        if self.producer is not None and self.producer.poll() is not None:
            raise LabStepFailed(f"the traffic generator exited (code {self.producer.returncode}): "
                                f"{tail(self.directory / 'producer.log')}")

    # -- the end ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every member still running (a clean leave), then the generator."""
        if self.closed:
            return
        self.closed = True
        running = [m for m in self.members if m.alive]
        for member in running:
            member.leaving = True
            if member.frozen:  # a stopped process would keep SIGTERM pending until it is killed
                member.process.send_signal(signal.SIGCONT)
                member.frozen = False
        for pid in stop_processes([m.process for m in running]):
            self.warnings.append(f"member pid {pid} ignored SIGTERM for 30 s and was killed")
        if self.producer is not None:
            stop_processes([self.producer])

    def write_report(self) -> Report | None:
        """report.md and report.json from every member's session log (None if no log holds events)."""
        from balance_tui.core.report import valid_events
        logs = [valid_events(read_session_log(m.log_path)) for m in self.members if m.log_path.exists()]
        logs = [log for log in logs if log]
        if not logs:
            return None
        try:
            report = build_report(logs, partitions=PARTITIONS)
        except ReportError as error:
            self.warnings.append(f"no report: {error}")
            return None
        self.report_path = self.directory / "report.md"
        self.report_path.write_text(render_markdown(report), encoding="utf-8")
        (self.directory / "report.json").write_text(render_json(report), encoding="utf-8")
        self.report = report
        return report

    def measures(self) -> dict[str, StepMeasure]:
        if self.report is None:
            return {}
        alias = {m.consumer_id: m.name.upper() for m in self.members}
        return {step.key: measure_step(self.report, step, alias) for step in self.steps
                if step.reached_at is not None}


# -- the run -------------------------------------------------------------------------------------------


class LabRun:
    """Everything one `balance-tui lab SCENARIO` starts, and the files it leaves."""

    def __init__(self, options: LabOptions, say: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.output = options.output
        self.run_id = uuid.uuid4().hex[:6]
        #: Every topic and group of this run starts with it, so the run never touches anything else.
        self.prefix = f"balance-tui-lab-{self.run_id}-"
        self.groups: list[GroupRun] = []
        self.broker: Any = None
        self.bootstrap = options.cluster.bootstrap_servers if options.cluster is not None else ""
        self.client_config: dict[str, str] = options.cluster.client_config() if options.cluster is not None else {}
        self._say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self._started_mono = time.monotonic()
        self.started_at = utc_now()
        self.tables = ""
        self.error: str | None = None
        self.broker_label = "cluster" if options.cluster is not None else ""
        #: The engine the lab's broker runs, and how it was started, so that it can be started again.
        self.engine_choice: Any = None
        self._broker_options: dict[str, Any] = {}
        self._broker_starts = 0
        #: chaos: the run's faults and verdict (balance_tui.lab.chaos.ChaosRun).
        self.chaos: Any = None
        #: Set when the scenario ran to its end but its verdict is not clean (exit code 1).
        self.failure: str | None = None

    def say(self, text: str) -> None:
        self._say(f"[{time.monotonic() - self._started_mono:6.1f}s] {text}")

    def wait_for(self, condition: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
        """Poll `condition` until true; LabStepFailed(describe()) at the deadline."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= deadline:
                raise LabStepFailed(f"{describe()} (waited {timeout:g} s)")
            time.sleep(POLL_S)  # poll period only: every wait ends on a condition or its deadline

    def child_environment(self) -> dict[str, str]:
        """The lab's children see none of the user's balance-tui settings, only what the lab passes.

        Their flags name broker, topic, group and timings; an explicit cluster's security
        settings (secrets included) travel in the environment, never on a command line or on disk.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BALANCE_TUI_", "Kafka__"))}
        env["PYTHONUNBUFFERED"] = "1"
        env["BALANCE_TUI_CONFIG"] = str(self._empty_config())
        cluster = self.options.cluster
        if cluster is not None:
            env["BALANCE_TUI_SECURITY_PROTOCOL"] = cluster.security_protocol
            for name in ("sasl_mechanism", "sasl_username", "ssl_ca_location", "ssl_certificate_location",
                         "ssl_key_location"):
                if getattr(cluster, name) is not None:
                    env[f"BALANCE_TUI_{name.upper()}"] = str(getattr(cluster, name))
            for name in SECRET_SETTINGS:
                if getattr(cluster, name) is not None:
                    env[f"BALANCE_TUI_{name.upper()}"] = getattr(cluster, name).get_secret_value()
            if cluster.librdkafka:
                env["BALANCE_TUI_LIBRDKAFKA"] = json.dumps(cluster.librdkafka)
        return env

    def _empty_config(self) -> Path:
        path = self.output / "member-config.toml"
        if not path.exists():
            path.write_text("# Empty on purpose: lab members ignore the user's config file; their settings are\n"
                            "# on their command lines (see each member's `started` line).\n", encoding="utf-8")
        return path

    def group(self, label: str, strategy: str, directory: Path | None = None, static: bool = False,
              commands: bool = False) -> GroupRun:
        group = GroupRun(self, label, strategy, directory or self.output / label, static=static, commands=commands)
        self.groups.append(group)
        group.start_producer()
        return group

    # -- start and finish --------------------------------------------------------------------------

    def _start_broker(self) -> None:
        if self.options.cluster is not None:
            from balance_tui.kafka.admin import describe_broker_of, wait_for_broker

            self.say(f"using the cluster at {self.bootstrap} (topic and group unique to this run)")
            wait_for_broker(self.client_config, timeout=15)
            self.broker_label = f"cluster ({describe_broker_of(self.client_config).label})"
            return
        from balance_tui.kafka.brokers import choose_engine, make_broker
        from balance_tui.kafka.brokers.distribution import progress_printer

        options = self.options
        choice = choose_engine(options.engine, options.kafka_version, options.kafka_home, progress=progress_printer())
        # Kafka's own group.initial.rebalance.delay.ms (3 s): part of what the lab measures.
        extra: dict[str, Any] = {}
        if choice.engine == "kafka":
            extra = {"data_dir": self.output / "kafka-data", "fresh": True}
        self.engine_choice, self._broker_options = choice, extra
        self.broker = make_broker(choice, 0, log_path=self.output / "broker.log", **extra).start(timeout=90)
        self._broker_starts = 1
        self.bootstrap = self.broker.bootstrap
        self.client_config = self.broker.client_config()
        self.broker_label = self.broker.label
        self.say(f"{self.broker.label} on {self.bootstrap} ({choice.reason})")

    def kill_broker(self) -> None:
        """SIGKILL the lab's broker, as a crash would."""
        assert self.broker is not None, "only the lab's own broker can be restarted"
        self.broker.kill()

    def start_broker_again(self) -> None:
        """A new broker on the same port: Apache Kafka on the same data directory, Tansu a new, empty cluster."""
        from balance_tui.kafka.brokers import make_broker

        assert self.broker is not None and self.engine_choice is not None
        self._broker_starts += 1
        options = {**self._broker_options, "fresh": False} if self.engine_choice.engine == "kafka" else {}
        log = self.output / f"broker-{self._broker_starts}.log"
        self.broker = make_broker(self.engine_choice, self.broker.port, log_path=log, **options).start(timeout=90)

    def run(self, scenario: Callable[[LabRun], None]) -> str:
        """Run `scenario` (one of `lab.scenarios.SCENARIO_STEPS`); returns the tables.

        Reports, tables and lab.json are written even on failure.
        """
        self.output.mkdir(parents=True, exist_ok=True)
        try:
            self._start_broker()
            scenario(self)
        except BaseException as error:
            self.error = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
            raise
        finally:
            try:
                self._stop_everything()
            finally:
                self._write_results()
        return self.tables

    def _stop_everything(self) -> None:
        try:
            for group in self.groups:
                group.close()
        except KeyboardInterrupt:
            # A second Ctrl+C while members leave: no more waiting.
            for group in self.groups:
                for process in [m.process for m in group.members] + ([group.producer] if group.producer else []):
                    if process.poll() is None:
                        process.kill()
            raise
        finally:
            if self.broker is not None:
                self.broker.stop()
            elif self.options.cluster is not None and self.groups:
                self._delete_cluster_leftovers()

    def _delete_cluster_leftovers(self) -> None:
        """On a real cluster, remove the topics and groups this run created (their names are unique to it)."""
        from confluent_kafka import KafkaException

        from balance_tui.kafka.admin import COORDINATOR_REQUEST_TIMEOUT_SECONDS, admin_client

        client = admin_client(self.client_config)
        try:
            # Members create topics of their own (the changelog, ...): every name with this run's prefix.
            topics = sorted(name for name in client.list_topics(timeout=10).topics if name.startswith(self.prefix))
            groups = [g.group for g in self.groups]
            deleting_groups = client.delete_consumer_groups(
                groups, request_timeout=COORDINATOR_REQUEST_TIMEOUT_SECONDS) if groups else {}
            futures = {**(client.delete_topics(topics, operation_timeout=15) if topics else {}), **deleting_groups}
            for name, future in futures.items():
                try:
                    future.result(timeout=20)
                except KafkaException as error:
                    self.say(f"could not delete {name}: {error}")
            self.say(f"deleted this run's {len(topics)} topic(s) and {len(groups)} group(s) from the cluster")
        except Exception as error:  # noqa: BLE001 - cleanup must not hide the run's own outcome
            self.say(f"cleanup on the cluster failed: {error}")

    def _write_results(self) -> None:
        for group in self.groups:
            group.write_report()
        self.tables = render_tables(self)
        summary = [f"# balance-tui lab {self.options.scenario}", "", *describe_run(self), "", self.tables, ""]
        reports = [g for g in self.groups if g.report_path is not None]
        if reports:
            summary += ["Reports (every rebalance, assignment histories, sequence diagrams):", ""]
            summary += [f"- {g.label}: {g.report_path.relative_to(self.output)}" for g in reports
                        if g.report_path is not None]
            summary.append("")
        (self.output / "summary.md").write_text("\n".join(summary), encoding="utf-8")
        (self.output / "lab.json").write_text(json.dumps(self.as_json(), indent=2, ensure_ascii=False) + "\n",
                                              encoding="utf-8")

    def as_json(self) -> dict[str, Any]:
        options = self.options
        return {
            "version": 1,
            "scenario": options.scenario,
            "command": list(options.argv),
            "started_at": iso_ms(self.started_at),
            "ended_at": iso_ms(utc_now()),
            "error": self.error,
            "broker": self.broker_label,
            "bootstrap_servers": self.bootstrap,
            "session_timeout_ms": options.session_timeout_ms,
            "heartbeat_interval_ms": options.heartbeat_interval_ms,
            "profile": options.profile,
            "produce_rate": options.produce_rate,
            "work_ms": options.work_ms,
            "member_flags": list(options.member_flags),
            "hold_stats_lines": options.hold,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "balance_tui": __version__},
            "groups": [{
                "label": g.label, "strategy": g.strategy, "topic": g.topic, "group": g.group,
                "directory": str(g.directory), "report": str(g.report_path) if g.report_path else None,
                "warnings": g.warnings + (g.report.warnings if g.report else []),
                "steps": jsonable(g.steps), "measured": jsonable(g.measures()),
            } for g in self.groups],
            **({"chaos": self.chaos.as_json()} if self.chaos is not None else {}),
        }


def survivor_revocations(group: GroupRun, key: str) -> int | None:
    """Partitions revoked from (or lost by) members that lived through step `key`, from their logs."""
    step = next((s for s in group.steps if s.key == key), None)
    if step is None or step.reached_at is None:
        return None
    total = 0
    for member in group.members:
        if member.consumer_id in step.members or not member.log_path.exists():
            continue
        for event in read_session_log(member.log_path):
            moved = event.get("event") in (Event.REVOKED, Event.LOST)
            if moved and step.at <= parse_ts(event["ts"]) <= step.reached_at:
                total += len(event.get("partitions") or ())
    return total



def describe_run(lab: LabRun) -> list[str]:
    options = lab.options
    broker = (f"{lab.broker_label} started by the lab" if options.cluster is None
              else f"{lab.broker_label} at {lab.bootstrap}")
    lines = [
        f"Run {iso_ms(lab.started_at)[:10]} on {broker}, {os.cpu_count()} CPU(s): "
        f"session.timeout.ms={options.session_timeout_ms}, heartbeat.interval.ms={options.heartbeat_interval_ms}, "
        f"traffic {options.profile} ({options.produce_rate:g} tx/s), {options.work_ms:g} ms of work per transaction"
        + (f" ({1000 / options.work_ms:,.0f} tx/s per member at most)" if options.work_ms > 0 else "")
        + (f", {options.hold} `stats` line(s) per member held after each step" if options.scenario != "chaos"
           else f", {options.members} members, {options.duration_s:g} s of faults ({','.join(options.faults)}), "
                f"seed {options.seed} (replay: `--seed {options.seed}`)")
        + (f", members also get `{' '.join(options.member_flags)}`" if options.member_flags else "") + ".",
        "",
        f"Command: `{' '.join(options.argv) or 'balance-tui lab ' + options.scenario}`. "
        "How each number is measured: docs/lab.md.",
    ]
    if lab.error:
        lines += ["", f"> **The run did not complete:** {lab.error}"]
    elif lab.failure:
        lines += ["", f"> **Not clean:** {lab.failure}"]
    for group in lab.groups:
        for warning in group.warnings:
            lines += ["", f"> **Warning ({group.label}):** {warning}"]
    return lines


def render_tables(lab: LabRun) -> str:
    scenario = lab.options.scenario
    rate = lab.options.produce_rate
    if scenario == "chaos":
        return lab.chaos.render() if lab.chaos is not None else "The chaos run did not start: no measurement."
    if scenario == "strategies":
        measures = {g.strategy: g.measures() for g in lab.groups if g.report is not None}
        return "## Tableau Comparatif des Stratégies: the lab's claims and this run\n\n" + \
            render_strategies_table(measures)
    if scenario == "static":
        static_measures: dict[str, StaticMeasure] = {}
        for g in lab.groups:
            if len(g.members) >= 3:
                static_measures[g.label] = static_measure(
                    g.steps, (g.members[1].consumer_id, g.members[2].consumer_id), g.static,
                    survivor_revocations(g, "restart"), alias={m.consumer_id: m.name.upper() for m in g.members})
        return (f"## Static membership (KIP-345), {lab.options.strategy}: kill -9 W2 and restart it at once\n\n"
                + render_static_table(static_measures))
    group = lab.groups[0] if lab.groups else None
    measures_by_key = group.measures() if group is not None else {}
    strategy = lab.options.strategy
    if scenario == "scale":
        rows = [measures_by_key[s.key] for s in (group.steps if group else []) if s.key in measures_by_key]
        return (f"## Scaling 1 → 2 → 3 → 6 → 8 → 1 ({strategy}): the lab's scenarios and this run\n\n"
                + render_scale_table(rows, rate))
    return (f"## Crash of one of three members ({strategy}): the lab's sequence and this run\n\n"
            + render_crash_table(measures_by_key.get("crash"), rate))



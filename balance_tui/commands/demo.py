"""Start a local broker and a traffic generator if nothing answers, then open the dashboard.

The broker is Apache Kafka (KRaft) where Java 17+ is present and its jars are cached or
can be fetched once with Maven, else Tansu (`--engine` decides; one line says which and why).

Broker and generator run detached from this terminal (their own session, output in
the state directory), so closing or killing the terminal leaves them running for the
other terminals. Open more terminals with `balance-tui`; stop everything with
`balance-tui down`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from balance_tui import locations
from balance_tui.commands import dashboard
from balance_tui.commands.produce import number_arg
from balance_tui.config import Settings
from balance_tui.errors import UserError

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="normal", choices=["normal", "peak", "black-friday"],
                        help="traffic profile of the generator (default normal: 100 tx/s)")
    parser.add_argument("--customers", type=number_arg(int, 1, maximum=1_000_000), default=50,
                        help="customers in the generated traffic (default 50)")
    parser.add_argument("--no-traffic", action="store_true", help="start the broker only")
    dashboard.add_arguments(parser)


def _cli() -> list[str]:
    return [sys.executable, "-m", "balance_tui"]


def _spawn_detached(name: str, argv: list[str], port: int) -> subprocess.Popen[bytes]:
    log_path = locations.run_dir() / f"{name}-{port}.log"
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)


def _split_bootstrap(settings: Settings) -> tuple[str, int]:
    first = settings.bootstrap_servers.split(",")[0]
    host, _, port = first.rpartition(":")
    return host, int(port)


def start_background_services(settings: Settings, profile: str, customers: int, traffic: bool) -> list[str]:
    """Start what is missing; return one line per thing started, for the user."""
    from balance_tui.kafka.admin import broker_answers, ensure_topic, wait_for_broker
    from balance_tui.kafka.brokers.process import (
        is_our_process,
        pid_file,
        read_pid_file,
        write_pid_file,
    )

    started: list[str] = []
    config = settings.client_config()
    host, port = _split_bootstrap(settings)
    if not broker_answers(config, timeout=2.0):
        if host not in LOCAL_HOSTS:
            raise UserError(f"no Kafka broker answers at {settings.bootstrap_servers}, and a local broker "
                            "can only be started on this machine (use localhost:<port>)")
        from balance_tui.kafka.brokers import choose_engine
        from balance_tui.kafka.brokers.distribution import progress_printer

        # Decided here, in the foreground, so fetching Kafka's jars the first time shows its progress.
        choice = choose_engine(settings.broker_engine, settings.kafka_version, settings.kafka_home,
                               progress=progress_printer())
        engine_args = ["--engine", choice.engine]
        if choice.engine == "kafka":
            engine_args += ["--kafka-version", choice.distribution.version]  # type: ignore[union-attr]
            if choice.distribution is not None and choice.distribution.home is not None:
                engine_args += ["--kafka-home", str(choice.distribution.home)]
        broker = _spawn_detached("broker", [*_cli(), "broker", "--port", str(port), "--topic", settings.topic,
                                            "--partitions", str(settings.partitions), *engine_args], port)
        deadline = time.monotonic() + 60
        while not broker_answers(config, timeout=1.0):
            if broker.poll() is not None:
                log = (locations.run_dir() / f"broker-{port}.log").read_text(errors="replace").strip()
                last = log.splitlines()[-1] if log else f"exit code {broker.returncode}"
                raise UserError(f"the {choice.label} broker did not start: {last}")
            if time.monotonic() > deadline:
                raise UserError(f"the {choice.label} broker did not answer on port {port} within 60 s")
            time.sleep(0.2)
        started.append(f"{choice.label} broker on 127.0.0.1:{port} (pid {broker.pid}): {choice.reason}")
    else:
        wait_for_broker(config, timeout=5)
    ensure_topic(config, settings.topic, settings.partitions)
    record = read_pid_file(pid_file("producer", port))
    if traffic and not (record and is_our_process(int(record.get("pid", 0)))):
        producer = _spawn_detached("producer", [*_cli(), "produce", "--bootstrap-servers", settings.bootstrap_servers,
                                                "--topic", settings.topic, "--profile", profile,
                                                "--customers", str(customers)], port)
        write_pid_file("producer", port, pid=producer.pid)
        started.append(f"traffic generator, profile {profile} (pid {producer.pid})")
    return started


def run(args: argparse.Namespace, settings: Settings) -> int:
    for line in start_background_services(settings, args.profile, args.customers, not args.no_traffic):
        print(f"started {line}", file=sys.stderr)
    if os.environ.get("BALANCE_TUI_DEMO_NO_DASHBOARD"):
        return 0
    code = dashboard.run(args, settings)
    print("the broker and the traffic keep running for the other terminals; stop them with: "
          "balance-tui down", file=sys.stderr)
    return code

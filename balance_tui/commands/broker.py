"""Run a local broker in the foreground: Apache Kafka in KRaft mode, or Tansu (`--engine`).

`--engine auto` (the default) runs Apache Kafka where Java 17+ is present and its jars
are cached or can be fetched once with Maven, else Tansu, and says which and why on
stderr. Creates the transactions topic if missing, prints one line
`bootstrap: 127.0.0.1:PORT` on stdout once the broker answers Kafka requests, and runs
until Ctrl-C or SIGTERM. Apache Kafka keeps its data in `--data-dir` (default under the
state directory) across restarts, `--fresh` starts empty; Tansu keeps everything in
memory. Broker output goes to a log file, not to the terminal.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from balance_tui.config import Settings
from balance_tui.errors import UserError
from balance_tui.kafka import admin
from balance_tui.kafka.brokers import EngineChoice, choose_engine, make_broker
from balance_tui.kafka.brokers.distribution import progress_printer
from balance_tui.kafka.brokers.process import (
    BrokerProcess,
    clear_stale_broker,
    live_owner,
    port_is_free,
    remove_own_pid_file,
    write_pid_file,
)

HOST = "127.0.0.1"
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return port


def _milliseconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=_port, default=9092,
                        help="port on 127.0.0.1 to listen on (default 9092; 0 picks a free port)")
    parser.add_argument("--reuse", action="store_true",
                        help="if a Kafka broker already answers on the port, create the topic there if "
                             "missing, print its bootstrap line and exit 0 instead of failing")
    parser.add_argument("--log", type=Path, default=None, metavar="PATH",
                        help="broker log file (default: Kafka: <data dir>/server.log; "
                             "Tansu: <state dir>/logs/tansu-PORT.log)")
    parser.add_argument("--ready-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="how long to wait for the broker to answer (default 60)")
    parser.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                        help="Apache Kafka only: where its data lives and survives restarts "
                             "(default <state dir>/kafka/PORT)")
    parser.add_argument("--fresh", action="store_true",
                        help="Apache Kafka only: delete the data directory first and start empty")
    parser.add_argument("--initial-rebalance-delay-ms", type=_milliseconds, default=None, metavar="MS",
                        help="Apache Kafka only: group.initial.rebalance.delay.ms (Kafka's default: 3000, "
                             "what a new group waits for more members before its first assignment)")
    parser.add_argument("--prepare", action="store_true",
                        help="decide the engine (fetching Apache Kafka's jars if needed), say it, and exit: "
                             "0 if that engine can run")


def run(args: argparse.Namespace, settings: Settings) -> int:
    say = progress_printer()
    choice = choose_engine(settings.broker_engine, settings.kafka_version, settings.kafka_home, progress=say)
    if args.prepare:
        print(f"{choice.engine}: {choice.label}: {choice.reason}")
        return 0
    port: int = args.port
    if port:
        stale = clear_stale_broker(port)
        if stale:
            print(f"balance-tui: {stale}", file=sys.stderr)
        if not port_is_free(port, HOST):
            return _port_taken(port, args, settings)
    print(f"balance-tui: starting {choice.label}: {choice.reason}", file=sys.stderr, flush=True)

    # SIGINT, SIGTERM and SIGHUP all unwind, stop the broker and exit 0. SIGINT is set
    # explicitly: a background job of a non-interactive shell starts with it ignored.
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    for signum in _SIGNALS:
        signal.signal(signum, _interrupt)
    broker = _make(choice, port, args)
    record = None
    try:
        broker.start(timeout=args.ready_timeout)
        assert broker.process is not None
        record = write_pid_file("broker", broker.port, **{f"{broker.engine}_pid": broker.process.pid},
                                engine=broker.engine, engine_name=broker.display_name, version=broker.version,
                                bootstrap=broker.bootstrap, log=str(_log_of(broker)),
                                **_data_fields(broker))
        admin.ensure_topic(broker.client_config(), settings.topic, settings.partitions)
        print(f"bootstrap: {broker.bootstrap}", flush=True)
        print(f"balance-tui: {broker.label} running (pid {broker.process.pid}, log {_log_of(broker)}"
              f"{_data_text(broker)}); Ctrl-C to stop", file=sys.stderr, flush=True)
        code = broker.process.wait()  # a signal interrupts this with KeyboardInterrupt
        raise UserError(f"the {broker.display_name} broker exited unexpectedly with code {code} "
                        f"(log {_log_of(broker)}): {broker.log_tail() or 'no output'}")
    except KeyboardInterrupt:
        return 0
    finally:
        # A second Ctrl-C must not abort the orderly stop.
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        try:
            broker.stop()
            if record is not None:
                remove_own_pid_file(record)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _make(choice: EngineChoice, port: int, args: argparse.Namespace) -> BrokerProcess:
    if choice.engine == "kafka":
        return make_broker(choice, port, HOST, args.log, data_dir=args.data_dir, fresh=args.fresh,
                           initial_rebalance_delay_ms=args.initial_rebalance_delay_ms)
    if args.data_dir is not None or args.fresh or args.initial_rebalance_delay_ms is not None:
        print("balance-tui: --data-dir, --fresh and --initial-rebalance-delay-ms apply to Apache Kafka only; "
              "Tansu keeps everything in memory", file=sys.stderr)
    return make_broker(choice, port, HOST, args.log)


def _log_of(broker: BrokerProcess) -> Path | None:
    return getattr(broker, "server_log_path", None) or broker.log_path


def _data_fields(broker: BrokerProcess) -> dict[str, str]:
    data_dir = getattr(broker, "data_dir", None)
    return {"data_dir": str(data_dir)} if data_dir is not None else {}


def _data_text(broker: BrokerProcess) -> str:
    data_dir = getattr(broker, "data_dir", None)
    return f", data {data_dir}" if data_dir is not None else ", memory storage"


def _port_taken(port: int, args: argparse.Namespace, settings: Settings) -> int:
    bootstrap = f"{HOST}:{port}"
    config = {"bootstrap.servers": bootstrap}
    if not admin.broker_answers(config, timeout=2.0):
        raise UserError(f"port {port} on {HOST} is in use by something that is not a Kafka broker; "
                        f"choose another --port (0 picks a free one)")
    if not args.reuse:
        owner = live_owner(port)
        by = f" (balance-tui broker pid {owner})" if owner else ""
        raise UserError(f"port {port} is already served by a Kafka broker{by}; "
                        f"use --reuse to use it, or --port 0 for a free port")
    if not admin.ensure_topic(config, settings.topic, settings.partitions):
        count = admin.topic_partition_count(config, settings.topic)
        if count != settings.partitions:
            print(f"balance-tui: topic {settings.topic!r} already exists with {count} partitions "
                  f"(not {settings.partitions}); left as it is", file=sys.stderr)
    print(f"bootstrap: {bootstrap}", flush=True)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
